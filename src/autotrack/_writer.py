"""The background writer: everything a run records leaves the training thread through here.

The training thread only appends tuples to a deque (atomic under the GIL, no lock, no I/O).
This thread drains it every ``_TICK`` seconds into a columnar segment in memory (``_segment``), and writes the
segment to the backend every ``flush_interval`` seconds, when it grows large, or when asked
(``flush``/``close``). It also hashes and uploads artifacts, captures the environment once, and
keeps the heartbeat that lets readers tell a live run from a killed process.

A failing store never stops training: a segment that cannot be written is kept and retried;
what is still unsent when the run ends is spooled to a local folder (and said once).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections import deque
from typing import Any, Callable

from autotrack._safety import report
from autotrack._segment import Segment
from autotrack._starter import StartCapture
from autotrack._summary import Summary

__all__ = ["Writer", "spool_dir"]

_TICK = 0.1
_MAX_CALLS_PER_SEGMENT = 100_000  # a segment is written once this many metric calls are in it
_BATCH = 2_000  # metric calls turned into columns at a time while draining (compact at once)
_MAX_PENDING_SEGMENTS = 10_000
_MAX_PENDING_IN_MEMORY = 64  # unsent segments beyond this wait in the spool folder, not in memory


def spool_dir() -> str:
    base = os.environ.get("AUTOTRACK_SPOOL_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autotrack", "unsent"
    )
    return base


def _write_atomic(path: str, text: str) -> None:
    """Spool files may be written while the process exits: never leave half a file."""
    tmp = f"{os.path.dirname(path)}/.tmp-{threading.get_ident()}-{os.path.basename(path)}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class Writer:
    """One per run. ``put`` is the only method the training thread calls on the hot path."""

    def __init__(
        self,
        backend: Any,
        run_doc: dict[str, Any],
        *,
        flush_interval: float,
        heartbeat_interval: float,
        on_start: Callable[[], dict[str, Any]] | None = None,
        first_seq: int = 0,
    ) -> None:
        self.backend = backend
        self.doc = run_doc
        self.run_id = run_doc["id"]
        self.flush_interval = flush_interval
        self.heartbeat_interval = heartbeat_interval
        self._on_start = on_start
        self._start: StartCapture | None = None
        self.queue: deque[tuple[Any, ...]] = deque()
        self.put = self.queue.append
        self._wake = threading.Event()
        self._closing = False
        self._deadline = math.inf  # set by close(): past it, nothing more is sent, the rest is spooled
        self._seq = first_seq  # > 0 when a finished run is reopened: continue its numbering
        self._segment = Segment()
        self._summary = Summary(run_doc.get("summary"))  # a reopened run goes on from its figures
        self._pending: list[tuple[int, Any]] = []  # (seq, segment doc, or the path of a spilled one)
        self._spilled: str | None = None
        self._stored: dict[str, str] = {}  # artifact name -> sha256, as stored by this run
        self._groups: dict[str, list[str]] = {}  # directory logged as one name -> its files' names
        self._doc_dirty = False
        self._last_write = time.monotonic()
        self._last_beat = 0.0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"autotrack-writer-{self.run_id[:8]}", daemon=True)
        self._thread.start()

    # -- called from user threads ---------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        done = threading.Event()
        self.queue.append(("flush", done))
        self._wake.set()
        return done.wait(timeout)

    def update_doc(self, **fields: Any) -> None:
        self.queue.append(("doc", fields))

    @property
    def next_seq(self) -> int:
        return self._seq

    def close(self, timeout: float | None = 60.0) -> bool:
        """Deliver everything, waiting ``timeout`` seconds in all; what is left then is spooled."""
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        done = self.flush(timeout)
        self._closing = True
        self._wake.set()
        self._thread.join(None if timeout is None else max(0.0, self._deadline - time.monotonic()) + 0.5)
        if self._thread.is_alive():
            # The store is still busy with a call (a slow server): save what is unsent now,
            # since a daemon thread dies with the process. Delivering a segment twice (the
            # call in flight, then ``autotrack sync``) stores it once: the seq is its id.
            self._spool()
            return False
        return done

    # -- the writer thread ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            if self._seq == 0:
                self.backend.create_run(self.doc)
            else:
                self.backend.update_run(self.run_id, self.doc)
        except Exception as exc:  # noqa: BLE001
            self._failed("creating the run in the store", exc)
            self._doc_dirty = True
        self._last_beat = time.monotonic()
        if self._on_start is not None:
            self._start = StartCapture(self._on_start, self.run_id)
        while True:
            self._wake.wait(_TICK)
            self._wake.clear()
            closing = self._closing
            try:
                self._drain()
                self._collect_start()
                now = time.monotonic()
                if self._segment.pending() and now - self._last_write >= self.flush_interval:
                    self._write_segment()
                if now - self._last_beat >= self.heartbeat_interval or self._doc_dirty:
                    self._beat()
                if self._pending and now - self._last_write >= self.flush_interval:
                    self._retry_pending()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one failure
                self._failed("the background writer", exc)
            if closing and not self.queue:
                self._finish()
                return

    def _drain(self) -> None:
        segment = self._segment
        popleft = self.queue.popleft
        batch: list[tuple[Any, ...]] = []
        append = batch.append
        while True:
            try:
                item = popleft()
            except IndexError:
                break
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
            segment = self._segment
            if kind == "flush":
                self._collect_start(wait=min(10.0, max(0.0, self._deadline - time.monotonic())))
                self._write_segment()
                self._retry_pending()
                if self._doc_dirty:
                    self._beat()
                item[1].set()
            elif kind == "doc":
                self.doc.update(item[1])
                self._doc_dirty = True
            elif kind == "artifact":
                self._store_artifact(segment, item[1])
            elif kind == "release":
                self._release(segment, item[1], item[2])
            else:
                self._add_other(segment, kind, item)
        if batch:
            self._add_calls(batch)

    def _add_calls(self, batch: list[tuple[Any, ...]]) -> None:
        segment = self._segment
        segment.add_calls(batch)
        if segment.calls >= _MAX_CALLS_PER_SEGMENT:
            self._write_segment()

    def _add_other(self, segment: Segment, kind: str, item: tuple[Any, ...]) -> None:
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

    def _store_artifact(self, segment: Segment, request: dict[str, Any]) -> None:
        source = request.pop("_read_from")
        staged = request.pop("_staged", False)
        try:
            sha, size = self.backend.put_artifact(source)
            request["sha256"], request["size"] = sha, size
            self._stored[request["name"]] = sha
            group = request["metadata"].get("group")
            if group is not None:
                self._groups.setdefault(group, []).append(request["name"])
            segment.artifacts.append(request)
            segment.events += 1
        except Exception as exc:  # noqa: BLE001
            self._failed("storing an artifact", exc)
        finally:
            if staged:
                try:
                    os.unlink(source)
                except OSError:
                    pass

    def _release(self, segment: Segment, name: str, ts: float) -> None:
        """Drop the stored bytes of an artifact this run no longer needs (a rotated checkpoint).

        ``name`` is one artifact or a directory logged as one (each of its files). Only bytes
        this run stored, and only when no other artifact of the run has the same content; the
        records stay, marked ``kept: false``.
        """
        members = self._groups.pop(name, None) or [name]
        shas = {member: self._stored.pop(member, None) for member in members}
        delete = getattr(self.backend, "delete_artifact", None)
        freed: set[str] = set()
        for sha in set(shas.values()) - {None} - set(self._stored.values()):
            if delete is not None:
                try:
                    delete(sha)
                    freed.add(sha)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001
                    self._failed("releasing a superseded artifact", exc)
        for member, sha in shas.items():
            segment.artifact_updates.append({"name": member, "metadata": {"superseded": True, "kept": sha not in freed},
                                             "time": ts})
            segment.events += 1

    def _write_segment(self) -> None:
        segment = self._segment
        if not segment.pending():
            return
        self._segment = Segment()
        seq, self._seq = self._seq, self._seq + 1
        summary = self._summary
        summary.add_metrics(segment.metrics)
        summary.add_values("params", segment.params)
        summary.add_values("tags", segment.tags)
        doc = segment.to_doc(seq, self.run_id)
        self._last_write = time.monotonic()
        # A segment stays in _pending until the store took it (so a spool made while the call
        # is still in flight has it); earlier segments go first, to keep the order.
        failing = bool(self._pending)
        self._pending.append((seq, doc))
        exc = self._retry_pending()
        if exc is not None and not failing:
            self._failed("writing to the store", exc)
            del self._pending[:-_MAX_PENDING_SEGMENTS]
        if len(self._pending) > _MAX_PENDING_IN_MEMORY:
            self._spill()

    def _spill(self) -> None:
        """A long outage: the oldest unsent segments move to the spool folder (bounded memory).
        They stay queued by path, in order, and the folder goes once they are delivered."""
        folder = os.path.join(spool_dir(), self.run_id)
        try:
            os.makedirs(os.path.join(folder, "events"), exist_ok=True)
            _write_atomic(os.path.join(folder, "run.json"), json.dumps(dict(self.doc), allow_nan=False))
            _write_atomic(os.path.join(folder, ".uri"), str(self.backend.uri))
            for i in range(len(self._pending) - _MAX_PENDING_IN_MEMORY // 2):
                seq, doc = self._pending[i]
                if isinstance(doc, dict):
                    path = os.path.join(folder, "events", f"{seq:08d}.json")
                    _write_atomic(path, json.dumps(doc, allow_nan=False))
                    self._pending[i] = (seq, path)
            self._spilled = folder
        except Exception as exc:  # noqa: BLE001 - then they stay in memory
            self._failed("spooling unsent events", exc)

    def _retry_pending(self) -> Exception | None:
        while self._pending:
            if time.monotonic() > self._deadline:
                return TimeoutError("out of time to deliver (AUTOTRACK_EXIT_TIMEOUT)")
            seq, doc = self._pending[0]
            try:
                if isinstance(doc, str):  # spilled to disk
                    try:
                        with open(doc, encoding="utf-8") as fh:
                            loaded = json.load(fh)
                    except FileNotFoundError:  # `autotrack sync` delivered it meanwhile
                        self._pending.pop(0)
                        continue
                    self.backend.append(self.run_id, seq, loaded)
                    os.unlink(doc)
                else:
                    self.backend.append(self.run_id, seq, doc)
            except Exception as exc:  # noqa: BLE001 - reported once by the caller; kept for the next try
                return exc
            self._pending.pop(0)
        if self._spilled is not None:  # all delivered: the spilled copy (an old run.json) must not be synced
            shutil.rmtree(self._spilled, ignore_errors=True)
            self._spilled = None
        return None

    def _beat(self) -> None:
        if time.monotonic() > self._deadline:
            self._doc_dirty = True  # out of time: the document goes to the spool
            return
        self.doc["heartbeat"] = time.time()
        if self._summary.changed:
            self.doc["summary"] = self._summary.to_doc()
        try:
            self.backend.update_run(self.run_id, self.doc)
            self._doc_dirty = False
        except Exception as exc:  # noqa: BLE001
            self._failed("updating the run document", exc)
            self._doc_dirty = True
        self._last_beat = time.monotonic()

    def _collect_start(self, wait: float = 0.0) -> None:
        """The start capture's fields go into the segment being gathered, once it is done."""
        if self._start is None:
            return
        got = self._start.take(wait)
        if got is None:
            return
        self._start = None
        fields, exc = got
        if exc is not None:
            self._failed("capturing the environment", exc)
        else:
            self._segment.other.update(fields)

    def _finish(self) -> None:
        self._drain()
        self._collect_start(wait=min(30.0, max(0.0, self._deadline - time.monotonic())))
        self._write_segment()
        self._retry_pending()
        self._beat()
        if self._pending or self._doc_dirty:
            self._spool()

    def _spool(self) -> None:
        """Whatever the store refused goes to a local folder, so nothing is lost."""
        folder = os.path.join(spool_dir(), self.run_id)
        pending = list(self._pending)  # a snapshot: close() may call this while the thread runs
        try:
            os.makedirs(os.path.join(folder, "events"), exist_ok=True)
            for seq, doc in pending:
                if isinstance(doc, str):
                    continue  # spilled there already
                _write_atomic(os.path.join(folder, "events", f"{seq:08d}.json"), json.dumps(doc, allow_nan=False))
            _write_atomic(os.path.join(folder, "run.json"), json.dumps(dict(self.doc), allow_nan=False))
            _write_atomic(os.path.join(folder, ".uri"), str(self.backend.uri))  # where `autotrack sync` sends it
            self._failed(
                "delivering the run",
                OSError(f"the store at {self.backend.uri} did not take {len(pending)} segment(s); "
                        f"they were saved to {folder} (deliver them with 'autotrack sync')"),
            )
        except Exception as exc:  # noqa: BLE001
            self._failed("spooling unsent events", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        try:
            report(what, exc)
        except Exception:  # noqa: BLE001 - strict mode: surfaced by Run.finish(), not in this thread
            pass
