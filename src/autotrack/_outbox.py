"""A run's written segments on their way to the store: sent in order, retried, spilled, set aside.

Owned by the run's writer (``_writer``) and used only from its thread (or from the thread that
ends the run in its place), as ``_uploads`` is for artifacts. A segment stays here until the
store took it, so a spool made while a call is still in flight has it; earlier segments go
first, to keep the order. In a long outage the oldest wait in the spool folder, not in memory
(``_spill``); a segment the store refuses for what it holds is set aside in the spool at once
(``_set_aside``) so that it does not hold back the others; whatever is left when the run ends is
spooled (``spool_all``) for ``autotrack sync``. Every store call goes through ``call`` (the
writer's ``_call``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from autotrack._segment import count_points, prune

__all__ = ["Outbox", "MAX_PENDING_IN_MEMORY"]

MAX_PENDING_IN_MEMORY = 64  # unsent segments beyond this wait in the spool folder, not in memory


class Outbox:
    def __init__(self, backend: Any, run_id: str, spool: Any, document: Callable[[], dict[str, Any]],
                 call: Callable[..., Any], failed: Callable[[str, BaseException], None],
                 out_of_time: Callable[[], bool]) -> None:
        self.backend, self.run_id, self._spool, self._document = backend, run_id, spool, document
        self._call, self._failed, self._out_of_time = call, failed, out_of_time
        self.pending: list[list[Any]] = []  # [seq, segment doc or the path of a spilled one, points]
        self._spilled = False
        self.set_aside = self.set_aside_points = 0  # segments refused for good, in the spool

    def send(self, seq: int, doc: dict[str, Any]) -> None:
        """A segment just written: to the store now, after the ones still waiting."""
        failing = bool(self.pending)
        self.pending.append([seq, doc, count_points(doc)])
        exc = self.retry()
        if exc is not None and not failing:  # one warning per outage, not per segment
            self._failed("writing to the store", exc)
        if len(self.pending) > MAX_PENDING_IN_MEMORY:
            self._spill()

    def retry(self) -> Exception | None:
        """Send the waiting segments in order; the error that stopped it, if any."""
        from autotrack.backends.file import loads

        while self.pending:
            if self._out_of_time():
                return TimeoutError("out of time to deliver (AUTOTRACK_EXIT_TIMEOUT)")
            seq, doc = self.pending[0][:2]
            try:
                if isinstance(doc, str):  # spilled to disk
                    try:
                        with open(doc, "rb") as fh:
                            loaded = loads(fh.read())
                    except FileNotFoundError:  # `autotrack sync` delivered it meanwhile
                        self.pending.pop(0)
                        continue
                    self._call(self.backend.append, self.run_id, seq, loaded)
                    os.unlink(doc)
                else:
                    self._call(self.backend.append, self.run_id, seq, doc)
            except Exception as exc:  # noqa: BLE001 - reported once by the caller; kept for the next try
                if isinstance(doc, dict) and not isinstance(exc, OSError) and self._unencodable(self.pending[0]):
                    continue  # pruned of what could not be encoded: try again at once
                if isinstance(exc, ValueError) and self._set_aside(self.pending[0], exc):
                    continue  # refused for its content, for good: it must not hold back the rest
                return exc
            self.pending.pop(0)
        if self._spilled:  # all delivered: the spilled copy (an old run.json) must not be synced
            if not self.set_aside:
                self._spool.remove()
            self._spilled = False
        return None

    def spool_all(self) -> tuple[int, int]:
        """Every segment not delivered goes to the spool; ``(segments, points)`` not delivered,
        those set aside before included."""
        segments, points = self.set_aside, self.set_aside_points
        for entry in list(self.pending):
            if isinstance(entry[1], dict):
                self._spool.segment(entry[0], entry[1])
            segments += 1
            points += entry[2]
        return segments, points

    def _spill(self) -> None:
        """A long outage: the oldest unsent segments move to the spool folder (bounded memory).
        They stay queued by path, in order, and the folder goes once they are delivered."""
        try:
            self._spool.document(self._document())
            for entry in self.pending[:len(self.pending) - MAX_PENDING_IN_MEMORY // 2]:
                if isinstance(entry[1], dict):
                    entry[1] = self._spool.segment(entry[0], entry[1])
            self._spilled = True
        except Exception as exc:  # noqa: BLE001 - then they stay in memory
            self._failed("spooling unsent events", exc)

    def _set_aside(self, entry: list[Any], exc: Exception) -> bool:
        """A segment the store refuses for what it holds (a server's 422 or 409) would be refused
        at every try: it goes to the spool at once, said, and the segments after it go on."""
        seq, doc, points = entry
        try:
            if isinstance(doc, dict):
                self._spool.segment(seq, doc)
            self._spool.document(self._document())
        except Exception as err:  # noqa: BLE001 - then it stays queued, and is retried
            self._failed("spooling a refused segment", err)
            return False
        self.pending.pop(0)
        self.set_aside += 1
        self.set_aside_points += points
        self._failed("a segment the store refused", ValueError(
            f"{exc}; segment {seq} was saved to {self._spool.folder} and the others go on"))
        return True

    def _unencodable(self, entry: list[Any]) -> bool:
        """True (and the segment pruned) when what failed is the segment's encoding, not the store.

        Values are checked at each call, so this should never happen; if it does, it costs the
        events that cannot be encoded (warned and counted), never the run.
        """
        pruned, dropped = prune(entry[1])
        if not dropped:
            return False
        entry[1], entry[2] = pruned, count_points(pruned)
        self._failed("encoding a segment", TypeError(
            f"{dropped} value(s) of segment {entry[0]} could not be encoded and were dropped"))
        return True
