"""The segment being gathered by the writer thread: events since the last write, in memory.

Metric calls arrive as raw tuples ``("m", time_ns, step, epoch, {name: value})`` (~290 bytes each).
The writer hands them over in batches as it drains its queue, and they are turned into compact
per-name columns at once (~100 bytes a point), not at write time: a loop logging faster than the
store writes keeps memory flat instead of piling up tuples (docs/benchmarks.md, 4b).
"""

from __future__ import annotations

import itertools
import math
import time
from operator import floordiv, itemgetter
from typing import Any

from autotrack._values import encode_float

__all__ = ["Segment", "encode", "encodes", "count_points", "prune"]

_NS_PER_MS = itertools.repeat(1_000_000)  # time_ns // 1_000_000: integer ms, ~2x cheaper than int(time * 1000)


def encode(value: Any) -> Any:
    """Non-finite floats anywhere in a JSON value become tagged strings (docs/format.md)."""
    if isinstance(value, float):
        encoded = encode_float(value)
        return encoded if isinstance(encoded, float) else {"$float": encoded}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    return value


def _finite(values: list[Any]) -> bool:
    try:
        return all(map(math.isfinite, values))
    except (TypeError, OverflowError):  # an int too large for a float is finite; anything else is left as is
        return all(not isinstance(v, float) or math.isfinite(v) for v in values)


class Segment:
    """Events gathered since the last write. ``calls``: metric calls in it (the size that counts)."""

    def __init__(self) -> None:
        # name -> [steps, epochs, values, times_ms]: the on-disk columns, growing
        self.metrics: dict[str, list[list[Any]]] = {}
        self.calls = 0
        self.params: list[list[Any]] = []
        self.tags: list[list[Any]] = []
        self.seeds: list[list[Any]] = []
        self.data: list[list[Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.artifact_updates: list[dict[str, Any]] = []
        self.other: dict[str, Any] = {}
        self.events = 0

    def pending(self) -> bool:
        return self.calls > 0 or self.events > 0

    def add_calls(self, raw: list[tuple[Any, ...]]) -> None:
        """Append a batch of metric calls (in call order) to the columns."""
        if not raw:
            return
        self.calls += len(raw)
        cols = self.metrics
        _kinds, stamps, steps, epochs, dicts = zip(*raw)  # one C pass, no bytecode per call
        if len(set(map(len, dicts))) == 1:
            # the usual case, every call logged the same names: each column in one pass (a name
            # missing from a call raises KeyError below: then the general path)
            names = list(dicts[0])
            try:
                columns = [list(map(itemgetter(key), dicts)) for key in names]
            except KeyError:
                pass
            else:
                # integer milliseconds: as precise as a metric's time needs, and several times
                # cheaper to encode than a float of Unix seconds
                times_ms = list(map(floordiv, stamps, _NS_PER_MS))
                for key, values in zip(names, columns):
                    col = cols.get(key)
                    if col is None:
                        cols[key] = [list(steps), list(epochs), values, times_ms.copy()]
                    else:
                        col[0] += steps
                        col[1] += epochs
                        col[2] += values
                        col[3] += times_ms
                return
        get = cols.get
        for _kind, ns, step, epoch, values in raw:
            ms = ns // 1_000_000
            for key, value in values.items():
                col = get(key)
                if col is None:
                    col = cols[key] = [[], [], [], []]
                col[0].append(step)
                col[1].append(epoch)
                col[2].append(value)
                col[3].append(ms)

    def to_doc(self, seq: int, run_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": 1, "run_id": run_id, "seq": seq, "time": time.time()}
        if self.metrics:
            doc["metrics"] = {
                key: {"step": steps, "epoch": epochs,
                      # rare: NaN/inf become strings for strict JSON
                      "value": values if _finite(values) else [encode_float(v) if isinstance(v, float) else v
                                                               for v in values],
                      "time_ms": times_ms}
                for key, (steps, epochs, values, times_ms) in self.metrics.items()}
        for name in ("params", "tags", "seeds", "data", "artifacts", "artifact_updates"):
            value = getattr(self, name)
            if value:
                doc[name] = encode(value)
        doc.update(encode(self.other))
        return doc


def count_points(doc: dict[str, Any]) -> int:
    """Metric points in a segment document."""
    return sum(len(col.get("value", ())) for col in doc.get("metrics", {}).values() if isinstance(col, dict))


def encodes(value: Any) -> bool:
    from autotrack.backends.file import dumps

    try:
        dumps(value)
        return True
    except Exception:  # noqa: BLE001 - whatever the encoder raised
        return False


def _prune_value(value: Any) -> tuple[Any, int]:
    """``value`` without the parts that cannot be encoded, and how many parts were dropped."""
    if encodes(value):
        return value, 0
    if isinstance(value, dict):
        out, dropped = {}, 0
        for key, item in value.items():
            if not isinstance(key, str) or not encodes(key):
                dropped += 1
                continue
            kept, n = _prune_value(item)
            dropped += n
            if kept is not _DROP:
                out[key] = kept
        return out, dropped
    if isinstance(value, list):
        out_list, dropped = [], 0
        for item in value:
            kept, n = _prune_value(item)
            dropped += n
            if kept is not _DROP:
                out_list.append(kept)
        return out_list, dropped
    return _DROP, 1


_DROP: Any = object()


def prune(doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A segment document without the events that cannot be encoded (a last line of defence:
    values are checked at each call). A metric point is dropped whole, so columns stay aligned;
    a params/tags/seeds/data entry or an artifact record is dropped whole."""
    out: dict[str, Any] = {}
    dropped = 0
    for key, value in doc.items():
        if key == "metrics" and isinstance(value, dict):
            metrics = {}
            for name, col in value.items():
                if not isinstance(name, str) or not encodes(name) or not isinstance(col, dict):
                    dropped += 1
                    continue
                fields = ("step", "epoch", "value", "time_ms")
                rows = list(zip(*(col.get(f, ()) for f in fields)))
                good = [row for row in rows if encodes(list(row))]
                dropped += len(rows) - len(good)
                if good:
                    metrics[name] = {f: [row[i] for row in good] for i, f in enumerate(fields)}
            out[key] = metrics
        elif isinstance(value, list):
            kept = [item for item in value if encodes(item)]
            dropped += len(value) - len(kept)
            out[key] = kept
        else:
            kept_value, n = _prune_value(value)
            dropped += n
            if kept_value is not _DROP:
                out[key] = kept_value
    return out, dropped
