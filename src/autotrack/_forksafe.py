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

__all__ = ["lock"]

_every: list = []  # never shrinks: one per process-wide lock


def lock():  # -> _thread.RLock
    """A reentrant lock for state that outlives runs (made at import time, kept for the process's
    life): a real ``_thread.RLock``, so a ``with`` costs what it always did. Reentrant, so that
    the forking thread's own hold can be told apart from another thread's."""
    made = _thread.RLock()
    _every.append(made)
    return made


def _after_fork_in_child() -> None:
    for each in _every:
        if not each._is_owned():
            each._at_fork_reinit()  # what CPython does for threading's own locks after a fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
