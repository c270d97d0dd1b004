"""The run document as the writer keeps it, and the heartbeat that keeps it fresh.

Readers call a ``running`` run whose heartbeat is older than four intervals ``killed``. The
heartbeat therefore has a timer apart from the writer thread (the store's timer thread,
``_beats``): the writer may spend seconds hashing or uploading a checkpoint, and a live run must
not read ``killed`` meanwhile. Both write the whole document (``update_run`` replaces it), so
they take turns under one lock, and the timer only ever rewrites the last document the writer
settled, with a new time: it never sees a half-updated one, and never writes after the final one.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from autotrack import _beats
from autotrack._summary import Summary

__all__ = ["RunDocument"]


class RunDocument:
    def __init__(self, backend: Any, doc: dict[str, Any], interval: float,
                 on_error: Callable[[str, BaseException], None]) -> None:
        self.backend = backend
        self.doc = doc  # changed by the writer thread only
        self.run_id = doc["id"]
        self.summary = Summary(doc.get("summary"))  # a reopened run goes on from its figures
        self.interval = interval
        self.dirty = False
        self._on_error = on_error
        self._lock = threading.Lock()
        self._settled = dict(doc)
        self._final = False
        self._stop = threading.Event()
        self._scheduled = False
        self._failing = False

    def update(self, fields: dict[str, Any]) -> None:
        self.doc.update(fields)
        self.dirty = True

    def current(self) -> dict[str, Any]:
        """The document with the latest summary (for writing, or for the spool)."""
        if self.summary.changed:
            self.doc["summary"] = self.summary.to_doc()
        return dict(self.doc, heartbeat=time.time())

    def settle(self) -> None:
        """The timer writes the latest summary with its next heartbeat (no store call here)."""
        self._settled = self.current()

    def write(self, call: Callable[..., Any], *, final: bool = False) -> None:
        """Write the document now (through ``call``, the writer's way of making store calls)."""
        call(self._store, self.current(), final)  # waits for the timer's write inside the call
        self.dirty = False

    def _store(self, doc: dict[str, Any], final: bool) -> None:
        with self._lock:
            if self._final:
                return
            self._settled = doc
            self.backend.update_run(self.run_id, doc)
            self._final = final

    # -- the timer -------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        if not self._scheduled and self.interval > 0:
            self._scheduled = True
            _beats.schedule(self.backend, self)

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._scheduled:
            _beats.cancel(self.backend, self)

    def beat(self) -> bool:
        """One heartbeat, from the store's timer thread; False once there are no more to make.
        While the writer writes the document (with a fresh heartbeat of its own) it is skipped,
        not waited for: the timer serves the store's other runs too."""
        if self._final or self._stop.is_set():
            return False
        if not self._lock.acquire(blocking=False):
            return True
        try:
            if self._final or self._stop.is_set():
                return False
            doc = dict(self._settled, heartbeat=time.time())
            try:
                self.backend.update_run(self.run_id, doc)
                self._settled, self._failing = doc, False
            except Exception as exc:  # noqa: BLE001 - the writer retries the document itself
                if not self._failing:
                    self._on_error("keeping the heartbeat", exc)
                self._failing = True
        finally:
            self._lock.release()
        return True
