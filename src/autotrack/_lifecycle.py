"""How runs end when the program does: at exit, on SIGTERM, or with an unhandled exception.

Installed once, when the first run starts. A SIGTERM (a scheduler's kill, ``docker stop``)
marks the running runs ``killed``, writes what they hold, then lets the signal do what it
would have done without us (the previous handler, or the default: die by SIGTERM). At
interpreter exit, runs still open are finished: ``failed`` with the traceback if the program
died of an exception, ``killed`` for Ctrl-C, else ``finished``. SIGKILL cannot be caught:
readers see the stale heartbeat instead.
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

_installed = False
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
    global _installed, _previous_sigterm, _get_runs
    if _installed:
        return
    _installed = True
    _get_runs = get_runs
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:
                _previous_sigterm = previous
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # embedded interpreters, restricted platforms
            pass
