"""What the web pages show, as plain JSON-ready data: one place for the server and the report.

The runs table must answer in well under a second for 10,000 runs, so it is built from the run
documents alone (the store's cheapest read) plus the small ``summary`` the writer keeps in each
``run.json`` (latest params, and last/min/max of each metric). Runs recorded before summaries
existed are summarised from their segments once and remembered. Everything else (a run's page,
its curves, a comparison) reads the runs it shows, and nothing more.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from collections import Counter
from itertools import chain
from operator import itemgetter
from typing import Any, Iterable, Mapping, Sequence

from autotrack._diff import SECTIONS, diff_many
from autotrack._gc import paused_gc
from autotrack._records import CORRUPT, RunRecord, record_of
from autotrack._summary import FIELDS, Summary
from autotrack._system_view import detail as system_detail
from autotrack._values import json_safe
from autotrack.backends.base import Backend
from autotrack.ui._downsample import DEFAULT_BUCKETS, count_nonfinite, minmax_indices

__all__ = ["RunIndex", "run_detail", "run_series", "compare", "summarize", "single_values", "why_they_differ"]

_EPOCH = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
_FIXED_COLUMNS = ("name", "status", "experiment", "framework", "start_time", "duration", "id")
PAGE_MAX = 500


def _iso(value: _dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _figures(metrics: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """``{name: [last, min, max, ...]}`` (run.json's compact form) as objects for a page."""
    return {name: dict(zip(FIELDS, values)) for name, values in metrics.items() if isinstance(values, list)}


def summarize(record: RunRecord) -> dict[str, Any]:
    """The ``summary`` of ``run.json`` computed from a run's segments (runs written before the
    writer kept one), by the writer's own ``Summary``."""
    summary = Summary()
    summary.add_metrics({name: [_column(points, "step"), _column(points, "epoch"), _column(points, "value"), ()]
                         for name, points in record.metrics.items()})
    return {"params": dict(record.params), "tags": dict(record.tags), "metrics": summary.to_doc()["metrics"]}


def _decoded_summary(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The writer's summary; metric figures are floats or the strings ``"NaN"``/``"Infinity"``/
    ``"-Infinity"`` (as in a segment's value column), params are tagged like any value
    (``{"$float": "NaN"}``): decoded only when a param holds a dict at all, which is rare."""
    summary = doc.get("summary")
    if not isinstance(summary, dict):
        return None
    params = summary.get("params")
    if isinstance(params, dict) and any(type(v) is dict for v in params.values()):
        from autotrack._records import _decode

        summary = dict(summary, params=_decode(params))
    return summary


def _column(points: Sequence[Any], field: str) -> list[Any]:
    """A field of every point; the stored column itself when the sequence has one (fast)."""
    column = getattr(points, "column", None)
    return column(field) if column is not None else [getattr(p, field) for p in points]


def _header(record: RunRecord) -> dict[str, Any]:
    return {"id": record.id, "name": record.name, "experiment": record.experiment, "status": record.status,
            "framework": record.framework, "parent_id": record.parent_id, "owner": record.owner,
            "start_time": _iso(record.start_time), "end_time": _iso(record.end_time),
            "duration": record.duration}


_NONFINITE = ("NaN", "Infinity", "-Infinity")


def _sort_value(value: Any) -> tuple[int, Any]:
    """Numbers before text before absent; NaN with the absent (it is not a result to rank)."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (int, float)):
        try:
            return (0, value) if math.isfinite(value) else (2, 0)
        except OverflowError:  # an int too big for a float: still a number, and comparable
            return (0, value)
    if value is None or value in _NONFINITE:
        return (2, 0)
    return (1, str(value))


def _text_of(row: dict[str, Any]) -> str:
    """What the table's text filter looks through, built on the first filter that needs it."""
    text = row.get("_text")
    if text is None:
        text = row["_text"] = " ".join(str(x) for x in (
            row["id"], row["name"], row["experiment"], row["framework"] or "", row["status"],
            *(f"{k}={v}" for k, v in row["params"].items()),
            *(f"{k}={v}" for k, v in row["tags"].items()))).lower()
    return text


class RunIndex:
    """The runs table over one store: rows cached for ``ttl`` seconds, summaries per run."""

    def __init__(self, backend: Backend, ttl: float = 2.0) -> None:
        self.backend = backend
        self.ttl = ttl
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._records: dict[str, RunRecord] = {}
        self._at = -math.inf
        self._summaries: dict[tuple[str, Any, Any], dict[str, Any]] = {}

    def refresh(self, force: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            if force or time.monotonic() - self._at > self.ttl:
                self._rows, self._records = self._build()
                self._at = time.monotonic()
            return self._rows

    def record(self, run_id: str) -> RunRecord:
        """A fresh record (its segments re-read), by id, unique prefix or ``last`` (the newest
        run, as everywhere else: listed anew, since a run may have started a moment ago)."""
        from autotrack._errors import AmbiguousRunError, RunNotFoundError

        if run_id == "last":
            rows = self.refresh(force=True)
            if not rows:
                raise RunNotFoundError("the store has no runs yet")
            run_id = rows[0]["id"]
        self.refresh()
        found = [r for i, r in self._records.items() if i == run_id] or \
            [r for i, r in self._records.items() if i.startswith(run_id)]
        if not found:
            self.refresh(force=True)
            found = [r for i, r in self._records.items() if i.startswith(run_id)]
        if not found:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        if len(found) > 1:
            raise AmbiguousRunError(f"id prefix {run_id!r} matches {len(found)} runs")
        return RunRecord(found[0]._doc, self.backend)  # the same document: a corrupt run stays one

    def _build(self) -> tuple[list[dict[str, Any]], dict[str, RunRecord]]:
        with paused_gc():  # rows for 10,000 runs: as many objects as the documents, all kept
            return self._rows_of(self.backend.list_runs())

    def _rows_of(self, docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, RunRecord]]:
        rows, records = [], {}
        for doc in docs:
            record = record_of(doc, self.backend)  # None for a document without an id
            if record is None:
                continue
            records[record.id] = record
            row = _header(record)
            # the fields the schema passed (all of them but for a corrupt run)
            summary = _decoded_summary(record._fields) or self._summary_of(record)
            row["params"] = summary.get("params") or {}
            row["metrics"] = summary.get("metrics") or {}
            row["tags"] = summary.get("tags") or {}
            row["_start"] = record.start_time or _EPOCH
            if record.status == CORRUPT:  # which file, and why (its run.json's: no segment read here)
                row["problems"] = list(record._doc_problems)
            rows.append(row)
        rows.sort(key=lambda r: (r["_start"], r["id"]), reverse=True)
        return rows, records

    def _summary_of(self, record: RunRecord) -> dict[str, Any]:
        key = (record.id, record.status, record.heartbeat)
        found = self._summaries.get(key)
        if found is None:
            found = summarize(record)
            self._summaries[key] = found
        return found

    # -- the table ---------------------------------------------------------------------------
    def page(self, *, experiment: str | None = None, status: str | None = None, framework: str | None = None,
             text: str | None = None, sort: str = "start_time", descending: bool = True, offset: int = 0,
             limit: int = 50, fresh: bool = False) -> dict[str, Any]:
        """One page of the table, filtered and sorted on the server (see ``_sort_key``); ``fresh``:
        listed anew, not from the few seconds' cache (right after a run was deleted)."""
        rows = self.refresh(force=fresh)
        facets = {"experiment": _counts(r["experiment"] for r in rows),
                  "status": _counts(r["status"] for r in rows),
                  "framework": _counts(r["framework"] or "manual" for r in rows)}
        words = (text or "").lower().split()
        chosen = [r for r in rows
                  if (not experiment or r["experiment"] == experiment)
                  and (not status or r["status"] == status)
                  and (not framework or (r["framework"] or "manual") == framework)
                  and (not words or all(w in _text_of(r) for w in words))]
        if sort != "start_time" or not descending:
            key = _sort_key(sort)
            present = [r for r in chosen if key(r)[0] < 2]
            absent = [r for r in chosen if key(r)[0] >= 2]
            present.sort(key=key, reverse=descending)
            chosen = present + absent  # absent values last, whichever the direction
        limit = max(1, min(limit, PAGE_MAX))
        offset = max(0, offset)
        shown = chosen[offset:offset + limit]
        return {
            "total": len(chosen), "all": len(rows), "offset": offset, "limit": limit,
            "rows": [json_safe({**{k: v for k, v in r.items() if not k.startswith("_")}, "metrics": _figures(r["metrics"])})
                     for r in shown],
            "facets": facets,
            "param_keys": _keys(chosen, "params"),
            # the hardware's series (every run has them) after the run's own metrics
            "metric_keys": sorted(_keys(chosen, "metrics"), key=lambda k: k["key"].startswith("system/")),
            "running": facets["status"].get("running", 0),
        }


def _counts(values: Iterable[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[str(value)] = out.get(str(value), 0) + 1
    return dict(sorted(out.items()))


def _same(value: Any) -> Any:
    """A hashable stand-in that tells values apart as JSON does (1 and True differ)."""
    if value is None or isinstance(value, (str, int, float)):
        return (type(value), value)
    return repr(value)


def _keys(rows: Sequence[Mapping[str, Any]], part: str) -> list[dict[str, Any]]:
    """Column candidates: every key with how many runs have it and whether it varies; the ones
    that vary come first (a param every run shares explains nothing in a table)."""
    counts = Counter(chain.from_iterable(map(itemgetter(part), rows)))  # C-speed: 10,000 runs x 20 names
    out = []
    for key, count in counts.items():
        varies = True
        if part == "params" and count == len(rows):
            first = _same(rows[0][part][key])
            varies = any(_same(row[part][key]) != first for row in rows)
        out.append({"key": key, "count": count, "varies": varies})
    out.sort(key=lambda k: (not k["varies"], -k["count"], k["key"]))
    return out


def _sort_key(spec: str) -> Any:
    """``name``/``status``/... a fixed column; ``param:KEY``; ``metric:NAME[:last|min|max]``."""
    kind, _, rest = spec.partition(":")
    if kind == "param":
        return lambda r: _sort_value(r["params"].get(rest))
    if kind == "metric":
        name, _, stat = rest.rpartition(":")
        if stat not in ("last", "min", "max", "count"):
            name, stat = rest, "last"
        at = FIELDS.index(stat)
        return lambda r: _sort_value(_at(r["metrics"].get(name), at))
    if spec not in _FIXED_COLUMNS:
        raise ValueError(f"cannot sort by {spec!r}: a column ({', '.join(_FIXED_COLUMNS)}), param:KEY or "
                         "metric:NAME[:last|min|max]")
    if spec == "start_time":
        return lambda r: (0, r["_start"])
    return lambda r: _sort_value(r[spec])


def _at(figures: Any, index: int) -> Any:
    return figures[index] if isinstance(figures, list) and len(figures) > index else None


# -- one run -----------------------------------------------------------------------------------
def run_detail(record: RunRecord, children: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the run page shows, but the curves (``run_series``)."""
    summary = summarize(record)
    artifacts = [{"name": a.name, "kind": a.kind, "sha256": a.sha256, "size": a.size, "metadata": a.metadata,
                  "time": a.timestamp} for a in record.artifacts]
    metrics = _figures(summary["metrics"])
    return json_safe({
        **_header(record), "tags": record.tags, "params": record.params, "seeds": record.seeds,
        "data": record.data, "environment": record.environment, "artifacts": artifacts,
        "error": record.error, "metrics": metrics, "children": list(children),
        "single_value_metrics": single_values([metrics]), "problems": record.problems,
        "system": system_detail(record),
    })


def single_values(runs_metrics: Sequence[Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """The metrics with one value in every run that has them (a scikit-learn score, a test
    accuracy at the end): a chart of one dot says nothing, so the pages show them as a table."""
    counts: dict[str, int] = {}
    for metrics in runs_metrics:
        for name, figures in metrics.items():
            counts[name] = max(counts.get(name, 0), figures.get("count") or 0)
    return sorted(name for name, count in counts.items() if count <= 1)


def run_series(record: RunRecord, names: Iterable[str] | None = None,
               buckets: int = DEFAULT_BUCKETS) -> dict[str, Any]:
    """Each metric's points cut to at most ~2 x ``buckets`` (min/max per bucket), with every
    x the page can draw against: step, epoch and seconds since the run started."""
    start = record.start_time.timestamp() if record.start_time else None
    out: dict[str, Any] = {}
    wanted = set(names) if names is not None else None
    for name, points in record.metrics.items():
        if wanted is not None and name not in wanted:
            continue
        values = _column(points, "value")
        keep = minmax_indices(values, buckets)
        steps, epochs, times = (_column(points, f) for f in ("step", "epoch", "timestamp"))
        t0 = start if start is not None else (times[0] if times else 0.0)
        out[name] = {
            "count": len(points), "shown": len(keep),
            "nonfinite": count_nonfinite(values),
            "step": [steps[i] for i in keep], "epoch": [epochs[i] for i in keep],
            "time": [round(times[i] - t0, 3) for i in keep],
            "value": [values[i] for i in keep],
        }
    _steps_by_time(out)
    return json_safe(out)


def _steps_by_time(out: dict[str, Any]) -> None:
    """Another node's system series have no step (it does not know rank 0's): each point gets the
    step the run had reached at its time, from the series that have steps, so that every chart
    lines up on the training step."""
    blank = [s for s in out.values() if s["step"] and all(x is None for x in s["step"])]
    if not blank:
        return
    known = sorted((t, st) for s in out.values() for t, st in zip(s["time"], s["step"]) if st is not None)
    if not known:
        return
    import bisect
    from itertools import accumulate

    times = [t for t, _ in known]
    reached = list(accumulate((st for _, st in known), max))
    for s in blank:
        s["step"] = [reached[max(0, bisect.bisect_right(times, t) - 1)] for t in s["time"]]


# -- several runs ------------------------------------------------------------------------------
def compare(records: Sequence[RunRecord], repository: bool = False) -> dict[str, Any]:
    """The compare view: each run's header and summary, what is not the same across them, and
    for two runs why they differ (``why``: ``explain``'s answer; ``repository``: as there)."""
    runs = []
    for record in records:
        summary = summarize(record)
        runs.append({**_header(record), "params": record.params, "metrics": _figures(summary["metrics"])})
    differences = diff_many(list(records)) if len(records) > 1 else {}
    why = why_they_differ(records[0], records[1], repository) if len(records) == 2 else None
    return json_safe({"runs": runs, "sections": [s for s in SECTIONS if s in differences],
                     "differences": differences, "single_value_metrics": single_values([r["metrics"] for r in runs]),
                     "why": why})


DIFF_LINES = 400  # a page shows the start of a code change; the CLI and the runs themselves hold all of it


def why_they_differ(a: RunRecord, b: RunRecord, repository: bool = False) -> dict[str, Any]:
    """``autotrack explain``'s answer for the compare view, its code diffs cut to ``DIFF_LINES``
    (``diff_lines``: how many there were). A failure costs this section, never the comparison."""
    from autotrack._explain import explain

    try:
        found = explain(a, b, repository=repository)
    except Exception as exc:  # noqa: BLE001 - logged and shown; the rest of the page is what was asked for
        import logging

        logging.getLogger("autotrack.server").warning("why the runs differ left out: %s: %s", type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    for cause in found["causes"]:
        for key in ("uncommitted_diff", "commits_diff"):
            if isinstance(cause.get(key), str):
                lines = cause[key].splitlines()
                cause[key], cause[key + "_lines"] = "\n".join(lines[:DIFF_LINES]), len(lines)
    return found
