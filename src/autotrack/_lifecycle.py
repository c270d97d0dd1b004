"""How runs end when the program does: at exit, on SIGTERM, or with an unhandled exception.

Installed once, when the first run starts. A SIGTERM (a scheduler's kill, ``docker stop``)
marks the running runs ``killed``, writes what they hold, then lets the signal do what it
would have done without us (the previous handler, or the default: die by SIGTERM). At
interpreter exit, runs still open are finished: ``failed`` with the traceback if the program
died of an exception, ``killed`` for Ctrl-C, else ``finished``. SIGKILL cannot be caught:
readers see the stale heartbeat instead.

A forked child (a ``multiprocessing`` worker) gets back the SIGTERM handling it had without us:
it records nothing of its parent's runs, and a Python-level handler is what made
``Pool.terminate()`` hang now and then (see ``_after_fork_in_child``). A child that starts a run
of its own installs ours again.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Any, Callable

from autotrack._config import env_flag

__all__ = ["Terminated", "install", "disabled"]

_installed = False  # the exit hook: once per process, inherited by a forked child
_sigterm_installed = False  # our SIGTERM handler: given back in a forked child (see below)
_previous_sigterm: Any = None
_get_runs: Callable[[], list[Any]] | None = None


class Terminated(BaseException):
    """Stands for the SIGTERM that ended a run (used only to classify it as killed)."""


def disabled() -> bool:
    return env_flag("AUTOTRACK_DISABLE")


def _finish_all(status: str, error: str | None) -> None:
    for run in reversed(_get_runs() if _get_runs else []):
        try:
            fit = getattr(run, "open_fit", None)
            if status == "finished" and fit is not None:
                # an adapter began a fit in it and never saw its end: the fit raised (and the
                # program went on), or the program ended inside it. Not "finished".
                run.finish("failed", f"the {fit} fit did not complete: it raised an exception the program "
                                     "handled, or the program ended during it")
            else:
                run.finish(status, error)
        except Exception:  # noqa: BLE001 - ending the program; nothing else to do
            pass
    try:  # and the runs that ended earlier, still being delivered in the background
        from autotrack._pending import wait_all

        wait_all()
    except Exception:  # noqa: BLE001
        pass


def _at_exit() -> None:
    from autotrack._run import status_for

    exc = getattr(sys, "last_value", None) if hasattr(sys, "last_type") else None
    status, error = status_for(exc)
    _finish_all(status, error)


def _on_sigterm(signum: int, frame: Any) -> None:
    _finish_all("killed", "terminated by SIGTERM")
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def install(get_runs: Callable[[], list[Any]]) -> None:
    global _installed, _get_runs
    _get_runs = get_runs
    if not _installed:
        _installed = True
        atexit.register(_at_exit)
    _install_sigterm()


def _install_sigterm() -> None:
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed:
        return
    _sigterm_installed = True
    if threading.current_thread() is threading.main_thread():
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:
                _previous_sigterm = previous
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # embedded interpreters, restricted platforms
            pass


def _after_fork_in_child() -> None:
    """``Pool.terminate()`` (and so ``with Pool() as pool:``) SIGTERMs the workers still waiting
    for a task, blocked in a semaphore. A Python handler runs only if the signal interrupts that
    wait; one that lands between the semaphore's non-blocking try and the blocking wait is noted
    and never run, the worker sleeps on and the parent's ``join`` hangs (CPython issue 78178;
    ~2 in 100 pools under load). The default disposition kills at once, whenever it lands. So
    the child gets back what it had before us (unless someone installed a handler after ours),
    and our handler only if it starts a run of its own."""
    global _sigterm_installed
    if not _sigterm_installed:
        return
    _sigterm_installed = False
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            previous = _previous_sigterm if _previous_sigterm is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)
    except (ValueError, OSError):  # forked from a thread CPython does not count as main here
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
