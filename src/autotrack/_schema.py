"""The one schema readers apply to what a store hands back: run documents and event segments.

A store is plain files that anything can leave in any state (a copy tool, a hand edit, another
program's writer, a disk that filled up mid-write), and one bad file must never hide the rest of
the store or break a command. So every reader (``RunRecord``, hence the command line and the
dashboard, over any backend) asks this module whether a document is usable before it relies on
a field, and "valid" means the same thing everywhere; docs/format.md ("Validation") states
exactly these rules, and a test checks that every document passing them can be read.

Each check returns ``None`` for a usable document, else one line a user can act on, naming the
field: ``start_time "yesterday" is not an ISO 8601 time with a UTC offset``. Only what readers
rely on is checked (types and shapes, not meanings), and keys the format does not know are left
alone: a newer writer may add some. The rules are one table of small functions per document
kind. Listing 10,000 runs checks 10,000 run documents, so ``read_run_doc`` first tries a few
C-speed tests that accept exactly what the table accepts (a test checks it) and parses the times
the reader needs in the same pass; a segment's metric columns are checked with C-speed passes
(``sum``), not element by element in Python.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import operator
import re
from typing import Any, Callable

__all__ = ["run_doc_problem", "read_run_doc", "segment_problem", "usable_run_fields", "NONFINITE", "SHA256"]

NONFINITE = ("NaN", "Infinity", "-Infinity")  # how a metric value column spells non-finite floats
SHA256 = re.compile(r"[0-9a-f]{64}")

_NUMBER = (int, float)  # compared with type(), so true/false are not numbers
_INTEGER = (int, bool)  # in a metric column true/false count as 1/0, as sum() takes them
_FLOAT_MAX = 2**1023  # an integer beyond this may have no float
_ABSENT = object()
_EMPTY: dict[str, Any] = {}
Check = Callable[[Any], "str | None"]


def _kind(value: Any) -> str:
    """The JSON kind of a parsed value, for messages: "an array", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _show(value: Any, width: int = 60) -> str:
    """A value as it reads in the file, cut to ``width`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- field checks: each returns None, or what the value should have been -------------------------
def _text(value: Any) -> str | None:
    return None if type(value) is str else "a string"


def _text_or_null(value: Any) -> str | None:
    return None if value is None or type(value) is str else "a string or null"


def _object(value: Any) -> str | None:
    return None if type(value) is dict else "an object"


def _object_or_null(value: Any) -> str | None:
    return None if value is None or type(value) is dict else "an object or null"


def _time_or_null(value: Any) -> str | None:
    """ISO 8601 as ``datetime.isoformat`` writes it, with a UTC offset: a naive time cannot be
    placed (its zone is unknown) and breaks every comparison with an aware one."""
    try:
        _aware(value)
        return None
    except (ValueError, TypeError):
        return "an ISO 8601 time with a UTC offset (+00:00), years 2-9998, or null"


def _unix_time_or_null(value: Any) -> str | None:
    # a chained comparison is False for NaN, infinities and integers too big for a date
    if value is None or (type(value) in _NUMBER and 0 <= value < 1e11):
        return None
    return "a Unix time (seconds since 1970) or null"


def _positive_or_null(value: Any) -> str | None:
    if value is None or (type(value) in _NUMBER and 0 < value < 1e9):
        return None
    return "a positive number of seconds or null"


def _int_or_null(value: Any) -> str | None:
    return None if value is None or type(value) is int else "an integer or null"


def _seq(value: Any) -> str | None:
    return None if type(value) is int and value >= 0 else "an integer, 0 or more"


def _number(value: Any) -> str | None:
    return None if type(value) in _NUMBER else "a number"


def _summary(value: Any) -> str | None:
    """The listing convenience: params, tags and metrics objects. An entry of ``metrics`` that
    is not an array ``[last, min, max, count, step, epoch]`` is skipped by readers rather than
    checked here: looking at each of 20 metrics of 10,000 listed runs would cost more than all
    the other checks together, and a figure is only ever shown, never relied on."""
    if value is None:
        return None
    if type(value) is not dict:
        return "an object or null"
    for key in ("params", "tags", "metrics"):
        if type(value.get(key, _EMPTY)) is not dict:
            return "an object of params, tags and metrics objects"
    return None


# The run document (docs/format.md "run.json"): every field a reader uses, all but id optional.
_RUN_FIELDS: tuple[tuple[str, Check], ...] = (
    ("name", _text_or_null), ("experiment", _text_or_null), ("parent_id", _text_or_null),
    ("framework", _text_or_null), ("status", _text), ("start_time", _time_or_null), ("end_time", _time_or_null),
    ("heartbeat", _unix_time_or_null), ("heartbeat_interval", _positive_or_null), ("pid", _int_or_null),
    ("summary", _summary),
)


def run_doc_problem(doc: Any) -> str | None:
    """What makes ``doc`` unusable as a run document, or None if every field a reader uses is valid."""
    return read_run_doc(doc)[0]


_KEYS = ("id", "name", "experiment", "parent_id", "framework", "status", "start_time", "end_time", "heartbeat",
         "heartbeat_interval", "pid")
_ALL_KEYS = operator.itemgetter(*_KEYS)  # one C call for the 11 fields every writer writes
_T, _N = (str, type(None)), (int, float, type(None))
# every accepted combination of the fields' types (2,304): one set lookup checks all eleven
_GOOD_TYPES = frozenset(itertools.product((str,), _T, _T, _T, _T, (str,), _T, _T, _N, _N, (int, type(None))))


def read_run_doc(doc: Any) -> tuple[str | None, tuple[Any, ...] | None]:
    """``(problem, fields)``: the check, and the fields a reader takes, in one pass; ``fields`` is
    ``(name, experiment, parent_id, framework, status, start_time, end_time, heartbeat,
    heartbeat_interval)`` with the times parsed and ``status`` "running" when absent, None for an
    invalid document. ``RunRecord`` needs both for each of 10,000 listed runs (a few percent of
    the listing, docs/benchmarks.md; hence a plain tuple, not a named one). A document passes a
    handful of C-speed tests or goes through the table above, which alone words the problem (a
    test checks that the two agree)."""
    if type(doc) is dict:
        try:
            values = _ALL_KEYS(doc)
        except KeyError:  # a document with fewer fields (another writer, an older one)
            get = doc.get
            values = (*map(get, _KEYS[:5]), get("status", "running"), *map(get, _KEYS[6:]))
        summary = doc.get("summary")
        run_id, name, experiment, parent_id, framework, status, start, end, beat, interval, _pid = values
        if (tuple(map(type, values)) in _GOOD_TYPES and run_id
                and (beat is None or 0 <= beat < 1e11) and (interval is None or 0 < interval < 1e9)
                and (summary is None or (type(summary) is dict and type(summary.get("params", _EMPTY)) is dict
                                         and type(summary.get("tags", _EMPTY)) is dict
                                         and type(summary.get("metrics", _EMPTY)) is dict))):
            try:  # inline, not _aware(): two calls fewer per listed run
                if start is not None and ((start := _parse_iso(start)).tzinfo is None or not 1 < start.year < 9999):
                    start = _ABSENT
                if end is not None and ((end := _parse_iso(end)).tzinfo is None or not 1 < end.year < 9999):
                    end = _ABSENT
            except ValueError:
                pass
            else:
                if start is not _ABSENT and end is not _ABSENT:
                    return None, (name, experiment, parent_id, framework, status, start, end, beat, interval)
    return _slow_problem(doc), None


_parse_iso = _dt.datetime.fromisoformat


def _aware(value: Any) -> _dt.datetime | None:
    """A parsed time with a UTC offset (None for null); ValueError/TypeError for anything else."""
    if value is None:
        return None
    parsed = _parse_iso(value)  # TypeError for a non-string
    if parsed.tzinfo is None:  # fromisoformat gives a fixed offset or nothing
        raise ValueError("no UTC offset")
    if not 1 < parsed.year < 9999:  # converting year 1 or 9999 to another zone overflows
        raise ValueError("out of range")
    return parsed


def _slow_problem(doc: Any) -> str | None:
    if type(doc) is not dict:
        return f"not a JSON object but {_kind(doc)}"
    run_id = doc.get("id")
    if type(run_id) is not str or not run_id:
        return "id is missing" if run_id is None else f"id {_show(run_id)} is not a non-empty string"
    get = doc.get
    for key, check in _RUN_FIELDS:
        value = get(key, _ABSENT)
        if value is not _ABSENT:
            expected = check(value)
            if expected is not None:
                return f"{key} {_show(value)} is not {expected}"
    return None


def usable_run_fields(doc: Any) -> dict[str, Any]:
    """The fields of a rejected run document that are valid on their own (a reader still shows
    the name, the times... of a run whose document has one bad field)."""
    if type(doc) is not dict:
        return {}
    return {key: doc[key] for key, check in _RUN_FIELDS if key in doc and check(doc[key]) is None}


# -- segments -------------------------------------------------------------------------------------
# A segment check returns None, or a phrase that follows the key in the message: ``params: ["lr",
# 0.1] is not a [name, value, time] triple``.
def _numbers(column: list[Any], nonfinite: bool = False) -> bool:
    """Every element a number a float can hold (or, for a value column, one of ``NONFINITE``):
    one C-speed ``sum`` from 0.0 for the usual column (it raises for anything else, an integer
    too big for a float included), an element-by-element look only when that fails."""
    try:
        sum(column, 0.0)
        return True
    except (TypeError, OverflowError):
        return all((type(v) is float or (type(v) in _INTEGER and -_FLOAT_MAX < v < _FLOAT_MAX))
                   or (nonfinite and v in NONFINITE) for v in column)


def _scalar(check: Check) -> Check:
    def phrase(value: Any) -> str | None:
        expected = check(value)
        return expected and f"{_show(value)} is not {expected}"
    return phrase


def _triples(items: Any, value: Check | None = None, what: str = "[name, value, time]") -> str | None:
    if type(items) is not list:
        return f"{_kind(items)}, not an array of {what} triples"
    for item in items:
        if (type(item) is not list or len(item) != 3 or type(item[0]) is not str
                or type(item[2]) not in _NUMBER or (value is not None and value(item[1]) is not None)):
            return f"{_show(item, 40)} is not a {what} triple"
    return None


def _fingerprints(items: Any) -> str | None:
    return _triples(items, _object, "[name, fingerprint object, time]")


def _columns(col: Any) -> str | None:
    """One metric's columns: step, epoch, value and time_ms (the first writers: time), all arrays
    of one length; values numbers or "NaN"/"Infinity"/"-Infinity", times numbers."""
    if type(col) is not dict:
        return f"{_kind(col)}, not an object of columns"
    times = [k for k in ("time_ms", "time") if k in col]
    keys = ("step", "epoch", "value", *(times or ("time_ms",)))
    missing = [k for k in keys if type(col.get(k)) is not list]
    if missing:
        return f"no {', '.join(missing)} array"
    lengths = [len(col[k]) for k in keys]
    if len(set(lengths)) > 1:
        return f"columns of unequal lengths ({', '.join(f'{k} {n}' for k, n in zip(keys, lengths))})"
    if not _numbers(col["value"], nonfinite=True):
        return 'a value that is not a number, "NaN", "Infinity" or "-Infinity"'
    for key in times:
        if not _numbers(col[key]):
            return f"a {key} that is not a number"
    return None


def _metrics(value: Any) -> str | None:
    if type(value) is not dict:
        return f"{_kind(value)}, not an object of metric columns"
    for name, col in value.items():
        found = _columns(col)
        if found:
            return f"{_show(name, 40)}: {found}"
    return None


def _optional_number(value: Any) -> str | None:
    return None if value is None else _number(value)


_ARTIFACT_FIELDS: tuple[tuple[str, Check], ...] = (
    ("name", _text), ("sha256", lambda v: None if type(v) is str and SHA256.fullmatch(v) else "64 hex digits"),
    ("size", lambda v: None if type(v) is int and v >= 0 else "a size in bytes"),
)
_ARTIFACT_OPTIONAL: tuple[tuple[str, Check], ...] = (
    ("kind", _text), ("metadata", _object_or_null), ("time", _optional_number), ("source", _text_or_null),
)


def _artifacts(items: Any) -> str | None:
    if type(items) is not list:
        return f"{_kind(items)}, not an array of artifact objects"
    for art in items:
        if type(art) is not dict:
            return f"{_kind(art)} is not an artifact object"
        label = _show(art.get("name"), 40)
        for key, check in _ARTIFACT_FIELDS:
            expected = check(art.get(key))
            if expected is not None or (key == "name" and not art["name"]):
                return f"{label}: {key} {_show(art.get(key), 40)} is not {expected or 'a non-empty string'}"
        for key, check in _ARTIFACT_OPTIONAL:
            if key in art and check(art[key]) is not None:
                return f"{label}: {key} {_show(art[key], 40)} is not {check(art[key])}"
    return None


def _artifact_updates(items: Any) -> str | None:
    if type(items) is not list:
        return f"{_kind(items)}, not an array of {{name, metadata, time}} objects"
    for update in items:
        if (type(update) is not dict or type(update.get("name")) is not str
                or _object_or_null(update.get("metadata")) or _optional_number(update.get("time"))):
            return f"{_show(update, 40)} is not a {{name, metadata, time}} object"
    return None


def _environment(value: Any) -> str | None:
    return None if type(value) is dict else f"{_kind(value)}, not an object"


def _end(value: Any) -> str | None:
    if type(value) is not dict:
        return f"{_kind(value)}, not an object {{status, end_time, error}}"
    for key, check in (("status", _text), ("end_time", _time_or_null), ("error", _text_or_null)):
        if key in value and check(value[key]) is not None:
            return f"{key} {_show(value[key], 40)} is not {check(value[key])}"
    return None


# Event segments (docs/format.md "Event segments"): keys absent are fine, keys present must fit.
_SEGMENT_SCALARS: dict[str, Check] = {"seq": _seq, "run_id": _text, "time": _number}
_SEGMENT_FIELDS: dict[str, Check] = {
    **{key: _scalar(check) for key, check in _SEGMENT_SCALARS.items()},
    "params": _triples, "tags": _triples, "seeds": _triples, "data": _fingerprints, "metrics": _metrics,
    "artifacts": _artifacts, "artifact_updates": _artifact_updates, "environment": _environment, "status": _end,
}


def segment_problem(segment: Any) -> str | None:
    """What makes ``segment`` unusable as an event segment, or None if a reader can apply it."""
    if type(segment) is not dict:
        return f"not a JSON object but {_kind(segment)}"
    for key, value in segment.items():
        check = _SEGMENT_FIELDS.get(key)
        if check is not None:
            found = check(value)
            if found is not None:
                return f"{key} {found}" if key in _SEGMENT_SCALARS else f"{key}: {found}"
    return None
