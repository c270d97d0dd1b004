"""The run's one-off start capture (environment: git, packages, hardware) on a thread of its own.

The capture does many small blocking calls (git subprocesses, a hundred metadata files), and each
one hands the GIL back; while the training thread runs pure Python, getting it back takes up to
the interpreter's switch interval (5 ms) every time, so the capture can take seconds. Had the
writer thread done it, metric calls would pile up in its queue all that while (memory growing
~300 bytes a point); on its own thread the writer keeps draining and the environment joins the
segment being gathered when it is ready (readers take the last ``environment`` of a run).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

__all__ = ["StartCapture", "IMPORTS"]

# Held by every thread of ours while it imports (the first import of a module, that is: the
# environment capture's, the system metrics probe's). ``os.fork`` waits for it: a child forked
# in the middle of an import finds that module's import lock held forever by a thread it does
# not have, and hangs as soon as it imports that module (a run of its own, a DataLoader worker's
# code). Reentrant, so a guarded section may call another; the test suite fails any import on
# one of our threads made without it (tests/conftest.py).
IMPORTS = threading.RLock()
_held_for_fork = False


def _before_fork() -> None:
    global _held_for_fork
    _held_for_fork = IMPORTS.acquire(timeout=2.0)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        IMPORTS.release()


def _after_fork_in_child() -> None:
    global IMPORTS, _held_for_fork
    IMPORTS, _held_for_fork = threading.RLock(), False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class StartCapture:
    def __init__(self, capture: Callable[[], dict[str, Any]], run_id: str) -> None:
        self._result: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(capture,), name=f"autotrack-start-{run_id[:8]}",
                                        daemon=True)
        self._thread.start()

    def _run(self, capture: Callable[[], dict[str, Any]]) -> None:
        try:
            self._result = capture()
        except BaseException as exc:  # noqa: BLE001 - handed to the writer, which reports it
            self._error = exc

    def take(self, wait: float = 0.0) -> tuple[dict[str, Any], BaseException | None] | None:
        """``(fields, error)`` once done (waiting up to ``wait`` seconds), else None."""
        if wait > 0:
            self._thread.join(wait)
        if self._thread.is_alive():
            return None
        return self._result or {}, self._error
