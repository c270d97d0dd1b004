"""The background writer: everything a run records leaves the training thread through here.

The training thread only appends tuples to a deque (atomic under the GIL, no lock, no I/O).
This thread drains it every ``_TICK`` seconds into a columnar segment in memory (``_segment``),
and writes the segment to the backend every ``flush_interval`` seconds, when it grows large, or
when asked (``flush``/``close``). It also stores artifacts and captures the environment once;
the run document's heartbeat has a timer of its own (``_rundoc``).

Retry and spool live here (with ``_outbox`` for segments and ``_uploads`` for artifacts), once,
for every backend: a segment, an artifact or the run document the store refuses is kept and
retried; whatever is still undelivered when the run ends is
spooled to a local folder (``_spool``, delivered by ``autotrack sync``), and said once, with the
true numbers. That holds even when the store hangs in a call past the exit timeout: the thread
that ends the run then takes over this thread's state (every store call is made through
``_call``, which lets go of ``_busy`` for its duration) and spools it itself.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any, Callable

from autotrack import _pending as _ended_runs
from autotrack._launch import launch
from autotrack._rundoc import RunDocument
from autotrack._safety import report
from autotrack._outbox import Outbox
from autotrack._segment import Segment, count_points
from autotrack._spool import RunSpool, spool_dir
from autotrack._spool import write_atomic as _write_atomic  # noqa: F401 - kept importable from here
from autotrack._starter import StartCapture
from autotrack._uploads import Uploads
from autotrack._values import numbers

__all__ = ["Writer", "spool_dir"]

_TICK = 0.1
_MAX_CALLS_PER_SEGMENT = 100_000  # a segment is written once this many metric calls are in it
_BATCH = 2_000  # metric calls turned into columns at a time while draining (compact at once)
_EARLY_WRITE_CALLS = 1_000  # an ended run holding this many metric calls writes them before the capture


# store calls whose failures share one warning per cause (see _failed)
_STORE_CALLS = frozenset({"creating the run in the store", "writing to the store", "updating the run document",
                          "storing an artifact", "releasing a superseded artifact", "keeping the heartbeat"})


class _Abandoned(BaseException):
    """Raised in the writer thread when the run's end took over its work (see ``close``)."""


class _Flush:
    __slots__ = ("event", "ok")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.ok = False


class Writer:
    """One per run. ``put`` is the only method the training thread calls on the hot path."""

    def __init__(self, backend: Any, run_doc: dict[str, Any], *, flush_interval: float, heartbeat_interval: float,
                 on_start: Callable[[], dict[str, Any]] | None = None, first_seq: int = 0) -> None:
        self.backend = backend
        self.run_id = run_doc["id"]
        self.flush_interval = flush_interval
        self._rundoc = RunDocument(backend, run_doc, heartbeat_interval, self._failed)
        self._on_start = on_start
        self._start: StartCapture | None = None
        self.queue: deque[tuple[Any, ...]] = deque()
        self.put = self.queue.append
        self._wake = threading.Event()
        self._busy = threading.Lock()  # the writer thread's, but while it waits on the store
        self._closing = False
        self._closing_lock = threading.Lock()
        self.before_end: Callable[[], None] | None = None  # run by this thread once the run ended
        self._abandoned = False
        self._closed = False
        self._delivered = False
        self._deadline = math.inf  # set by close(): past it, nothing more is sent, the rest is spooled
        self._seq = first_seq  # > 0 when a finished run is reopened: continue its numbering
        self._segment = Segment()
        out_of_time = lambda: time.monotonic() > self._deadline  # noqa: E731
        self._uploads = Uploads(backend, self.run_id, self._call, self._failed, out_of_time)
        self._spool = RunSpool(self.run_id, backend.uri)
        self._outbox = Outbox(backend, self.run_id, self._spool, self._rundoc.current, self._call, self._failed,
                              out_of_time)
        self._last_write = time.monotonic()
        self.error: BaseException | None = None
        self._created = threading.Event()  # the run's first document went to the store (or failed to)
        self.freed = threading.Event()  # ended, and its metrics are out of the queue and the segment
        _ended_runs.starting(self)
        # started by the launcher thread: the training thread does not wait for the hand-over (_launch)
        self._thread = launch(self._main, f"autotrack-writer-{self.run_id[:8]}")

    @property
    def doc(self) -> dict[str, Any]:
        return self._rundoc.doc

    @property
    def next_seq(self) -> int:
        return self._seq

    # -- called from user threads ---------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """True once everything put so far is in the store; False if the store refused some of
        it, or did not take it within ``timeout`` (it stays queued and is retried)."""
        if self._closed:
            return self._delivered
        if self._closing:  # ended in the background: flushing is waiting for that
            return self.wait_closed() if not self._thread.is_current() else self._delivered
        item = _Flush()
        self.queue.append(("flush", item))
        self._wake.set()
        return item.event.wait(timeout) and item.ok

    def update_doc(self, **fields: Any) -> None:
        self.queue.append(("doc", fields))

    def close(self, timeout: float | None = 60.0, wait: bool = True) -> bool:
        """Deliver everything within ``timeout`` seconds; what is left then is spooled. With
        ``wait=False`` the writer thread does it in the background (``_pending``: reads of this
        store and the process's exit wait for it) and this returns False at once."""
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        if not wait:
            self._closing = True
            self._wake.set()
            _ended_runs.add(self)
            return False
        self.flush(timeout)
        self._closing = True
        self._wake.set()
        return self.wait_closed()

    def wait_created(self, timeout: float) -> None:
        """Until the run's first document was written (a read in this process then finds the run)."""
        end = time.monotonic() + timeout
        while not self._created.wait(0.05):
            if not self._thread.alive() or time.monotonic() > end:
                return

    def holding(self) -> bool:
        """Ended, and still holding many metric calls in memory (queued or in the segment)."""
        return not self.freed.is_set() and len(self.queue) + self._segment.calls >= _EARLY_WRITE_CALLS

    def wait_freed(self) -> None:
        """Until this ended run holds no metric buffers (at worst: until it is closed)."""
        left = None if self._deadline == math.inf else max(0.0, self._deadline - time.monotonic()) + 0.5
        if not self.freed.wait(left):
            self.wait_closed()

    def _mark_created(self) -> None:
        self._created.set()
        _ended_runs.created(self)

    def wait_closed(self) -> bool:
        """Wait for the writer thread to end (up to the close's deadline); True if all was delivered."""
        with self._closing_lock:
            if not self._closed:
                left = None if self._deadline == math.inf else max(0.0, self._deadline - time.monotonic())
                self._thread.join(None if left is None else left + 0.5)
                if self._thread.alive() or self._thread.error is not None:  # stuck, or never started
                    self._abandon()  # the store is stuck in a call: spool from here (a daemon thread dies with the process)
                self._closed = True
                self._mark_created()
                self._release()
                self.freed.set()
        _ended_runs.done(self)
        return self._delivered

    def _release(self) -> None:
        """Let go of what a delivered run no longer needs, so that an ended run holds no buffers."""
        self.queue = deque()
        self._segment = Segment()
        self._start = self._on_start = None
        self.freed.set()

    # -- the writer thread ----------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Every store call (and every long wait) of the writer thread goes through here."""
        if not self._thread.is_current():
            return fn(*args)  # the run's end, spooling in this thread's place
        self._busy.release()
        try:
            return fn(*args)
        finally:
            self._busy.acquire()
            if self._abandoned:
                raise _Abandoned

    def _main(self) -> None:
        self._busy.acquire()
        try:
            self._loop()
        except _Abandoned:
            return
        finally:
            self._mark_created()  # (a thread that ended early: nobody waits for it any more)
            if self._busy.locked():
                self._busy.release()
            if self._closing and not self._abandoned:  # delivered (or spooled): nothing left to wait for
                self._release()
                _ended_runs.done(self)

    def _loop(self) -> None:
        try:
            if self._seq == 0:
                self._call(self.backend.create_run, dict(self.doc))
            else:
                self._call(self.backend.update_run, self.run_id, dict(self.doc))
        except Exception as exc:  # noqa: BLE001
            self._failed("creating the run in the store", exc)
            self._rundoc.dirty = True
        self._mark_created()
        self._rundoc.start_heartbeat()
        if self._on_start is not None:
            self._start = StartCapture(self._on_start, self.run_id)
        while True:
            self._call(self._wake.wait, _TICK)
            self._wake.clear()
            closing = self._closing
            try:
                self._drain()
                self._collect_start()
                now = time.monotonic()
                if self._segment.pending() and now - self._last_write >= self.flush_interval:
                    self._write_segment()
                if (self._outbox.pending or self._uploads.pending) and now - self._last_write >= self.flush_interval:
                    self._last_write = now
                    self._retry()
                if self._rundoc.dirty and not (closing and not self.queue):  # else _finish writes it, final
                    self._write_doc()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one failure
                self._failed("the background writer", exc)
            if closing and not self.queue:
                if self.before_end is not None:  # the sampler's last sample, before the last write
                    end, self.before_end = self.before_end, None
                    self._call(end)
                    self._wake.set()
                    continue
                self._finish()
                return

    def _drain(self) -> None:
        popleft = self.queue.popleft
        batch: list[tuple[Any, ...]] = []
        append = batch.append
        while True:
            try:
                item = popleft()
            except IndexError:
                break
            kind = item[0]
            if kind == "mt":  # values still tensors (see Run.log_metrics)
                item = self._converted(item)
                kind = item[0]
            if kind == "m":
                append(item)
                if len(batch) >= _BATCH:
                    self._add_calls(batch)
                    batch = []
                    append = batch.append
                continue
            if batch:  # keep the order of metric calls and the events between them
                self._add_calls(batch)
                batch = []
                append = batch.append
            if kind == "flush":
                self._collect_start(wait=min(10.0, max(0.0, self._deadline - time.monotonic())))
                self._write_segment()
                self._retry()
                if self._rundoc.dirty:
                    self._write_doc()
                item[1].ok = self._clean()
                item[1].event.set()
            elif kind == "doc":
                self._rundoc.update(item[1])
            elif kind == "artifact":
                self._uploads.take(item[1], self._segment)
            elif kind == "release":
                self._uploads.release(self._segment, *item[1:])
            else:
                self._add_other(self._segment, kind, item)
        if batch:
            self._add_calls(batch)

    def _converted(self, item: tuple[Any, ...]) -> tuple[Any, ...]:
        values, refused = numbers(item[4])
        for exc in refused:
            self._failed("reading a metric value", exc)
        return ("m" if values else "skip", item[1], item[2], item[3], values)

    def _clean(self) -> bool:
        return not (self._outbox.pending or self._uploads.pending or self._rundoc.dirty or self._segment.pending())

    def _add_calls(self, batch: list[tuple[Any, ...]]) -> None:
        segment = self._segment
        segment.add_calls(batch)
        if segment.calls >= _MAX_CALLS_PER_SEGMENT:
            self._write_segment()

    def _add_other(self, segment: Segment, kind: str, item: tuple[Any, ...]) -> None:
        if kind == "skip":  # a metric call whose tensors could not be read: nothing left of it
            return
        if kind == "params":
            segment.params.extend([k, v, item[1]] for k, v in item[2].items())
        elif kind == "tags":
            segment.tags.extend([k, v, item[1]] for k, v in item[2].items())
        elif kind == "seeds":
            segment.seeds.extend([k, v, item[1]] for k, v in item[2].items())
        elif kind == "data":
            segment.data.append([item[2], item[3], item[1]])
        elif kind == "artifact_update":
            segment.artifact_updates.append(item[1])
        elif kind == "status":
            segment.other["status"] = item[1]
        segment.events += 1

    # -- segments -------------------------------------------------------------------------
    def _write_segment(self) -> None:
        segment = self._segment
        if not segment.pending():
            return
        self._segment = Segment()
        seq, self._seq = self._seq, self._seq + 1
        summary = self._rundoc.summary
        summary.add_metrics(segment.metrics)
        summary.add_values("params", segment.params)
        summary.add_values("tags", segment.tags)
        doc = segment.to_doc(seq, self.run_id)
        self._rundoc.settle()
        self._last_write = time.monotonic()
        self._outbox.send(seq, doc)

    def _retry(self) -> None:
        self._uploads.retry()  # first: segments refer to them
        self._outbox.retry()

    def _write_doc(self, final: bool = False) -> None:
        if time.monotonic() > self._deadline:
            return  # out of time: the document goes to the spool
        try:
            self._rundoc.write(self._call, final=final)
        except Exception as exc:  # noqa: BLE001
            self._failed("updating the run document", exc)

    def _collect_start(self, wait: float = 0.0) -> None:
        """The start capture's fields go into the segment being gathered, once it is done."""
        if self._start is None:
            return
        got = self._call(self._start.take, wait) if wait > 0 else self._start.take()
        if got is None:
            return
        self._start = None
        fields, exc = got
        if exc is not None:
            self._failed("capturing the environment", exc)
        else:  # an event of its own: a segment holding only it is still written (the capture can end last)
            self._segment.other.update(fields)
            self._segment.events += 1

    # -- the end ----------------------------------------------------------------------------
    def _finish(self) -> None:
        self._drain()
        self._collect_start()
        if self._start is not None:
            # The capture is still running (a busy training thread slows it: _starter). Many
            # metrics go out now, and their memory with them; the environment follows alone.
            # From here this run holds little: the next run's finish need not wait (_pending).
            if self._segment.calls >= _EARLY_WRITE_CALLS:
                self._write_segment()
            self.freed.set()
        self._collect_start(wait=min(30.0, max(0.0, self._deadline - time.monotonic())))
        self._write_segment()
        self._retry()
        self._rundoc.stop_heartbeat()
        self._write_doc(final=True)
        self._delivered = self._clean() and not self._outbox.set_aside
        if not self._delivered:
            self._spool_all()
        self.freed.set()

    def _abandon(self) -> None:
        """Run by the thread ending the run when the writer thread is stuck in a store call."""
        got = self._busy.acquire(timeout=2.0)
        self._abandoned = True
        self._deadline = -math.inf  # no store call from here on
        self._rundoc.stop_heartbeat()
        try:
            if got:  # the writer thread waits on the store: its state is ours to finish
                self._drain()
                self._write_segment()
            self._delivered = False
            self._spool_all()
        finally:
            if got:
                self._busy.release()

    def _spool_all(self) -> None:
        """Whatever the store did not take goes to a local folder, so nothing is lost."""
        spool = self._spool
        try:
            artifacts = self._uploads.spool(spool, self._segment)
            if self._segment.pending():
                seq, self._seq = self._seq, self._seq + 1
                doc = self._segment.to_doc(seq, self.run_id)
                self._segment = Segment()
                self._outbox.pending.append([seq, doc, count_points(doc)])
            segments, points = self._outbox.spool_all()
            spool.document(self._rundoc.current())
        except Exception as exc:  # noqa: BLE001
            self._failed("spooling unsent events", exc)
            return
        self._failed("delivering the run", OSError(
            f"the store at {self.backend.uri} did not take {segments} segment(s) ({points} metric point(s)), "
            f"{artifacts} artifact(s) and the run's final document in time; they were saved to {spool.folder} "
            "(deliver them with 'autotrack sync')"))

    def _failed(self, what: str, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        message = None
        if what == "delivering the run":
            message = f"autotrack: {exc}."
        elif what in _STORE_CALLS:  # one cause (a dead server, a full disk) makes every call fail: one warning
            cause = type(exc).__name__ + (f" {exc.errno}" if isinstance(exc, OSError) and exc.errno else "")
            what = f"the store at {self.backend.uri} ({cause})"
            message = (f"autotrack: the store at {self.backend.uri} failed ({type(exc).__name__}: {exc}). Training "
                       "continues: what this run records is kept and retried, and what the store has not taken when "
                       f"the run ends is saved to {self._spool.folder} for 'autotrack sync'.")
        try:
            report(what, exc, message=message)
        except Exception:  # noqa: BLE001 - strict mode: surfaced by Run.finish(), not in this thread
            pass
