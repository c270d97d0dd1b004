"""Process-wide locks that a forked child gets back unlocked.

A child forked (a ``multiprocessing`` worker, a DataLoader worker, ``os.fork``) while one of our
threads holds a lock inherits it held, by a thread the child does not have: the child's first use
of it hangs for good (its own run's environment capture waited on the package-scan lock of its
parent's, for ever). Every lock that lives as long as the process (caches, registries, the
warn-once table) comes from here and is made anew in the child, unless the thread that forked
holds it itself (that thread goes on in the child, and will release it). Locks of a run's own
objects need none of this: a child records nothing into its parent's runs.
"""

from __future__ import annotations

import os
import _thread  # not threading: ``autolog()``'s modules use these, and import nothing heavier

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["lock"]


class _Lock:
    """Reentrant, so that the forking thread's own hold can be told apart from another's."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = _thread.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def _renew(self) -> None:
        if not self._lock._is_owned():
            self._lock = _thread.RLock()


_every: list[_Lock] = []  # never shrinks: one per module-level lock


def lock() -> _Lock:
    """A lock for state that outlives runs (made at import time, kept for the process's life)."""
    made = _Lock()
    _every.append(made)
    return made


def _after_fork_in_child() -> None:
    for each in _every:
        each._renew()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
