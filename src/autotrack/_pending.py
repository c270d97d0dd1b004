"""Runs that have ended but whose writer is still delivering them to the store.

``Run.finish()`` does not wait for the store (a loop of short fits would otherwise pay a flush
per fit, and the next fit's start would wait on it): the writer delivers in the background.
What makes that safe is said in docs/api.md ("How runs end"):

- a read in the same process (``autotrack.runs``, ``get_run``, the model registry) first waits
  for every pending writer (``wait``): a process always reads its own writes, whatever spelling
  of the store's URI (a path, ``file://``, a symlink, a wrapper) the read uses. Waiting for all
  rather than for "the same store" is cheap: there are a few of them at most;
- process exit, an unhandled exception and SIGTERM wait for every pending writer (``wait_all``,
  from ``_lifecycle``), with the same ``AUTOTRACK_EXIT_TIMEOUT`` as before, spooling the rest;
- at most ``MAX_HOLDING`` ended runs still hold their metrics in memory, besides the one just
  ended: the next ``finish`` waits until the oldest wrote them (a process that makes thousands
  of runs holds about one run's buffers); at most ``MAX_PENDING`` ended runs are still being
  closed (waiting for their environment capture or the store), each on a thread of its own.
"""

from __future__ import annotations

import os
from typing import Any

from autotrack import _forksafe

__all__ = ["add", "starting", "created", "done", "wait", "wait_all", "pending", "MAX_HOLDING", "MAX_PENDING"]

MAX_HOLDING = 1  # ended runs whose metrics are not yet out of memory, besides the one ending
MAX_PENDING = 16  # ended runs not yet closed (most wait for their environment capture only)
_lock = _forksafe.lock()
_writers: dict[Any, None] = {}  # insertion-ordered: the oldest first
_starting: dict[Any, None] = {}  # writers that have not created their run in the store yet


def add(writer: Any) -> None:
    """A writer closing in the background. Past ``MAX_HOLDING`` ended runs still holding their
    metrics (queue, segment), the oldest is waited for until it holds none; past ``MAX_PENDING``
    ended runs in all (each a thread: a hung store), until it is closed."""
    with _lock:
        _writers[writer] = None
        holding = [w for w in _writers if w.holding()]
        keep = MAX_HOLDING + 1  # and this one
        over_buffers = holding[:-keep] if len(holding) > keep else []
        over = list(_writers)[:-MAX_PENDING] if len(_writers) > MAX_PENDING else []
    for old in over_buffers:
        old.wait_freed()
    for old in over:
        old.wait_closed()


def starting(writer: Any) -> None:
    """A new run's writer, until it has written the run's first document (``created``)."""
    with _lock:
        _starting[writer] = None


def created(writer: Any) -> None:
    with _lock:
        _starting.pop(writer, None)


def done(writer: Any) -> None:
    with _lock:
        _writers.pop(writer, None)


def pending() -> list[Any]:
    with _lock:
        return list(_writers)


def wait() -> None:
    """Before a read of a store: the runs ended in this process are all in it, and the runs
    started in it are there too (their writer thread may not have run yet: ``_launch``). Every
    writer is waited for, not only the writers of the store about to be read: two URIs can name
    one store."""
    with _lock:
        new = list(_starting)
    for writer in new:
        writer.wait_created(10.0)
    for writer in pending():
        writer.wait_closed()


def wait_all() -> None:
    """At exit or on SIGTERM: deliver (or spool) every run that ended in the background."""
    for writer in pending():
        try:
            writer.wait_closed()
        except Exception:  # noqa: BLE001 - ending the program; the next writer still gets its turn
            pass


def _after_fork_in_child() -> None:
    _writers.clear()  # the parent's writer threads are not in the child: the parent delivers them
    _starting.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
