"""The heartbeats of a store's live runs, kept by one timer thread per store.

Readers call a ``running`` run whose heartbeat is older than four intervals ``killed``, so the
heartbeat has a timer apart from the writer thread (which may spend minutes uploading a
checkpoint). One timer thread per store serves every live run of it in the process: a run that
ends before its first beat costs no thread (a loop of 1,000 short fits started and ended 1,000
timer threads, ~0.3 ms of CPU each, each start a wait for the new thread: issue 20), and a store
that hangs in a call delays only its own runs' beats, as before.

A beat never waits for its run's writer: when the writer is writing the document (which carries
a fresh heartbeat itself), the beat is skipped (``RunDocument.beat``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from typing import Any

from autotrack import _forksafe
from autotrack._launch import launch

__all__ = ["schedule", "cancel", "timer_of", "IDLE_SECONDS"]

IDLE_SECONDS = 30.0  # a timer thread with no run to beat for this long ends (the next run starts one)
_lock = _forksafe.lock()
_timers: dict[int, "_Timer"] = {}  # id(backend) -> its timer
_serial = itertools.count()


class _Timer:
    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Any]] = []  # (due, tie-break, RunDocument)
        self._numbers = itertools.count()
        self._started = False
        self.thread: Any = None  # the Launched thread (_launch), while one runs

    def add(self, doc: Any, due: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._numbers), doc))
            if not self._started:
                self._started = True
                self.thread = launch(self._run, self._name)  # the launcher's signal mask (see _launch)
            self._cond.notify()

    def remove(self, doc: Any) -> None:
        with self._cond:
            kept = [entry for entry in self._heap if entry[2] is not doc]
            if len(kept) != len(self._heap):
                heapq.heapify(kept)
                self._heap = kept

    def _next(self) -> tuple[float, Any] | None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait(IDLE_SECONDS)
                    if not self._heap:
                        self._started = False  # the next add() starts a thread again
                        return None
                    continue
                due = self._heap[0][0]
                delay = due - time.monotonic()
                if delay <= 0:
                    _, _, doc = heapq.heappop(self._heap)
                    return due, doc
                self._cond.wait(delay)

    def _run(self) -> None:
        while True:
            found = self._next()
            if found is None:
                return
            due, doc = found
            try:
                again = doc.beat()
            except Exception:  # noqa: BLE001 - a beat reports its own failures; the others go on
                again = True
            if again:
                self.add(doc, max(due + doc.interval, time.monotonic()))


def schedule(backend: Any, doc: Any) -> None:
    """Beat ``doc`` (a ``RunDocument``) every ``doc.interval`` seconds from now until ``cancel``
    or until its ``beat`` says it is over."""
    with _lock:
        timer = _timers.get(id(backend))
        if timer is None:
            timer = _timers[id(backend)] = _Timer(f"autotrack-heartbeat-{next(_serial)}")
    timer.add(doc, time.monotonic() + doc.interval)


def cancel(backend: Any, doc: Any) -> None:
    with _lock:
        timer = _timers.get(id(backend))
    if timer is not None:
        timer.remove(doc)


def timer_of(backend: Any) -> _Timer | None:
    with _lock:
        return _timers.get(id(backend))


def _after_fork_in_child() -> None:
    _timers.clear()  # the parent's timer threads are not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
