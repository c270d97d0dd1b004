"""The small summary a run document carries: latest params and tags, and each metric's figures.

Listing 10,000 runs reads 10,000 ``run.json`` files and nothing else; a table of runs with their
params and best/last metrics (the dashboard's, a script's) needs those figures right there, not
in the segments. The writer folds each segment into the summary as it writes it (a few C-speed
``min``/``max`` passes per metric column, off the training thread) and the summary goes out with
the run document on every heartbeat and at the end. It is a convenience for display and sorting:
the segments stay the record (long values are cut here, see ``_short``).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from autotrack._segment import encode, encodes
from autotrack._values import encode_float

__all__ = ["Summary", "FIELDS"]

# A metric's figures, in the order stored: an array, not an object, halves what 10,000 run
# documents weigh (keys would be most of the bytes), and so the time to parse them.
FIELDS = ("last", "min", "max", "count", "step", "epoch")

_PLAIN = (str, int, float, bool, type(None))
_MAX_TEXT = 300  # characters of a param or tag value kept in the summary


def _short(value: Any) -> Any:
    """A value as the summary keeps it: strings and containers longer than ``_MAX_TEXT`` cut."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, (list, dict)):
        text = repr(value)
        return value if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
    return value


def _figure(value: Any) -> Any:
    """A metric figure: a number, or "NaN"/"Infinity"/"-Infinity" as in the value columns."""
    return encode_float(value) if isinstance(value, float) else value


def _finite(values: list[Any]) -> list[Any]:
    """The finite numbers of a column (the column itself when all are: one C-speed pass)."""
    try:
        if all(map(math.isfinite, values)):
            return values
    except (TypeError, OverflowError):  # a string, None, an int too big for a float: sort them out
        pass
    return [v for v in values if (type(v) is int) or (isinstance(v, float) and math.isfinite(v))]


class Summary:
    """Folded from the segments a writer writes; ``to_doc()`` is the run document's ``summary``."""

    def __init__(self, previous: Any = None) -> None:
        # A reopened run (``trainer.test()`` after ``fit``) keeps what its earlier segments said.
        previous = previous if isinstance(previous, dict) else {}
        self.params: dict[str, Any] = dict(previous.get("params") or {})
        self.tags: dict[str, Any] = dict(previous.get("tags") or {})
        self.metrics: dict[str, dict[str, Any]] = {
            k: dict(zip(FIELDS, v)) for k, v in (previous.get("metrics") or {}).items() if isinstance(v, list)}
        self.changed = False

    def add_metrics(self, columns: dict[str, list[list[Any]]]) -> None:
        """``columns``: name -> [steps, epochs, values, times_ms] of one segment."""
        for name, (steps, epochs, values, _times) in columns.items():
            if not values:
                continue
            finite = _finite(values)
            stat = self.metrics.get(name)
            if stat is None:
                stat = self.metrics[name] = {"count": 0, "min": None, "max": None}
            if finite:
                lo, hi = min(finite), max(finite)
                stat["min"] = lo if stat["min"] is None else min(stat["min"], lo)
                stat["max"] = hi if stat["max"] is None else max(stat["max"], hi)
            stat["count"] += len(values)
            stat["last"] = _figure(values[-1])
            stat["step"], stat["epoch"] = steps[-1], epochs[-1]
            self.changed = True

    def add_values(self, kind: str, items: Iterable[list[Any]]) -> None:
        """``kind``: "params" or "tags"; ``items``: ``[key, encoded value, time]`` as in a segment."""
        target = self.params if kind == "params" else self.tags
        for key, value, *_ in items:
            if type(value) not in _PLAIN and not encodes(value):
                continue  # never reached (values are checked at the call), but never in the run document
            target[key] = _short(value)
            self.changed = True

    def to_doc(self) -> dict[str, Any]:
        self.changed = False
        return {"params": encode(self.params), "tags": encode(self.tags),
                "metrics": {k: [v.get(f) for f in FIELDS] for k, v in self.metrics.items()}}
