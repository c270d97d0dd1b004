"""A metric's points as read back: ``MetricPoint`` and the column-backed list that holds them.

``RunRecord.metrics[name]`` behaves as a list of ``MetricPoint`` (len, indexing, negative
indexes, slicing, iteration, ``==`` with a list, ``+``, repr), but keeps the stored columns and
makes each point when it is asked for. A million namedtuples cost ~1 s to build on a busy
machine, most of it in the garbage collector (namedtuples are never untracked, so every full
collection walks all of them, for as long as they live); the columns cost nothing more than the
parse (docs/benchmarks.md, 4a). ``list(points)`` gives a plain list when one is needed.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence
from typing import Any, Iterator, NamedTuple, overload

from autotrack._values import decode_float

__all__ = ["MetricPoint", "MetricPoints"]


class MetricPoint(NamedTuple):
    step: int | None
    epoch: int | None
    value: float
    timestamp: float


# a point straight from its 4 fields: the namedtuple's own __new__ is a Python function (~3x slower)
_point = functools.partial(tuple.__new__, MetricPoint)


class MetricPoints(Sequence):  # type: ignore[type-arg]
    """The points of one metric, in order, built on access from the stored columns."""

    __slots__ = ("_steps", "_epochs", "_values", "_times", "_per_second")
    __hash__ = None  # type: ignore[assignment]  # like a list

    def __init__(self, steps: list[Any], epochs: list[Any], values: list[Any], times: list[Any],
                 per_second: int = 1000) -> None:
        # times: integer milliseconds as stored (per_second 1000), divided on access
        self._steps, self._epochs, self._values, self._times = steps, epochs, values, times
        self._per_second = per_second

    @classmethod
    def from_columns(cls, cols: list[dict[str, list[Any]]]) -> "MetricPoints":
        """One metric's column sets, one per segment, in order (docs/format.md)."""
        if len(cols) == 1 and "time_ms" in cols[0]:
            col = cols[0]
            return cls(col["step"], col["epoch"], _values(col["value"]), col["time_ms"])
        steps: list[Any] = []
        epochs: list[Any] = []
        values: list[Any] = []
        times: list[Any] = []
        # the format's first writers stored float seconds ("time"): then every time in seconds
        per_second = 1000 if all("time_ms" in col for col in cols) else 1
        for col in cols:
            steps += col["step"]
            epochs += col["epoch"]
            values += _values(col["value"])
            times += col["time_ms"] if per_second == 1000 else (
                col["time"] if "time" in col else [t / 1000 for t in col["time_ms"]])
        return cls(steps, epochs, values, times, per_second)

    def __len__(self) -> int:
        return len(self._values)

    def column(self, field: str) -> list[Any]:
        """One field of every point as a new list (``"step"``, ``"epoch"``, ``"value"`` or
        ``"timestamp"``), without making the points: what a chart or ``numpy.asarray`` wants."""
        if field == "timestamp":
            return [t / self._per_second for t in self._times] if self._per_second != 1 else list(self._times)
        found = {"step": self._steps, "epoch": self._epochs, "value": self._values}.get(field)
        if found is None:
            raise ValueError(f"no field {field!r}: step, epoch, value or timestamp")
        return list(found)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...

    @overload
    def __getitem__(self, index: slice) -> "MetricPoints": ...

    def __getitem__(self, index: int | slice) -> "MetricPoint | MetricPoints":
        if isinstance(index, slice):
            return MetricPoints(self._steps[index], self._epochs[index], self._values[index], self._times[index],
                                self._per_second)
        return _point((self._steps[index], self._epochs[index], self._values[index],
                       self._times[index] / self._per_second))

    def __iter__(self) -> Iterator[MetricPoint]:
        return map(_point, zip(self._steps, self._epochs, self._values,
                               map(operator.truediv, self._times, itertools.repeat(self._per_second))))

    def __reversed__(self) -> Iterator[MetricPoint]:
        return iter(self[::-1])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, MetricPoints)):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    def __add__(self, other: object) -> list[Any]:
        if isinstance(other, (list, MetricPoints)):
            return [*self, *other]
        return NotImplemented

    def __radd__(self, other: object) -> list[Any]:
        if isinstance(other, list):
            return [*other, *self]
        return NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (MetricPoints, (self._steps, self._epochs, self._values, self._times, self._per_second))


def _values(values: list[Any]) -> list[Any]:
    """A stored value column: "NaN", "Infinity", "-Infinity" back to floats (rare)."""
    try:
        sum(values)  # all numbers (the usual case): nothing to decode; ~3x faster than a type scan
    except TypeError:
        return [decode_float(v) if isinstance(v, str) else v for v in values]
    return values
