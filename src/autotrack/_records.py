"""Reading runs back: ``RunRecord`` and the functions that find runs in a store.

A record is built from the small run document alone (so listing 10,000 runs stays cheap); the
segments (params, metrics, artifacts, environment...) are read on first access of any of them.
A ``running`` run whose heartbeat is older than four heartbeat intervals is reported ``killed``:
its process died without a word (SIGKILL, power loss, OOM killer).

Nothing read is trusted blindly: each run document and segment, from any backend, is checked
against ``_schema`` first. A run whose document is unreadable or invalid is still listed, as
``corrupt``, with what could be read; a bad segment is skipped. Both are named in
``RunRecord.problems`` (file and reason), so one bad file never hides or breaks another run.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import time
from typing import Any

from autotrack import _pending
from autotrack._artifact_record import ArtifactRecord
from autotrack._config import resolve_uri
from autotrack._errors import AmbiguousArtifactError, AmbiguousRunError, ArtifactNotFoundError, RunNotFoundError
from autotrack._gc import paused_gc
from autotrack._points import MetricPoint, MetricPoints
from autotrack._schema import NONFINITE, read_run_doc, segment_problem, usable_run_fields
from autotrack._values import decode_float
from autotrack.backends.base import Backend, backend_for

__all__ = ["RunRecord", "MetricPoint", "ArtifactRecord", "runs", "get_run", "last_run", "record_of",
           "STALE_HEARTBEATS", "CORRUPT"]

STALE_HEARTBEATS = 4
CORRUPT = "corrupt"  # the status of a run whose run document could not be read or is invalid


def _decode(value: Any) -> Any:
    """Undo the writer's tagging of non-finite floats (``{"$float": "NaN"}``)."""
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value:
            return decode_float(value["$float"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _problem(marker: Any, file: str) -> dict[str, str]:
    """A backend's marker for a file it could not read (``{"file", "reason"}``), as a problem."""
    if isinstance(marker, dict) and isinstance(marker.get("file"), str) and isinstance(marker.get("reason"), str):
        return {"file": marker["file"], "reason": marker["reason"]}
    return {"file": file, "reason": str(marker) if marker not in (None, True, "") else "unreadable"}


def _segment_file(run_id: str, segment: Any, index: int) -> str:
    """Where a segment lives in the file format (the name any backend's segment goes by)."""
    seq = segment.get("seq") if isinstance(segment, dict) else None
    if type(seq) is int and 0 <= seq <= 99_999_999:
        return f"runs/{run_id}/events/{seq:08d}.json"
    return f"runs/{run_id}/events (segment {index + 1} in order)"


def _figure(value: Any) -> Any:
    """A summary's last value as a number, or None when it is not one (skipped, never shown raw)."""
    if type(value) is float:
        return value
    if type(value) is int:
        return value if -2**1023 < value < 2**1023 else None
    return decode_float(value) if value in NONFINITE else None


class RunRecord:
    """A run as stored: every attribute of the public contract (see docs/api.md)."""

    def __init__(self, doc: dict[str, Any], backend: Backend) -> None:
        """``doc``: a run document as a backend listed it (a dict with an id, see ``record_of``)."""
        self._doc = doc
        self._backend = backend
        self.id: str = doc["id"]
        self.uri: str = backend.uri
        self._loaded = False
        marker = doc.get("corrupt")
        problem, fields = read_run_doc(doc) if marker is None else ("", None)
        if fields is not None:
            self._fields = doc
            self._doc_problems: tuple[dict[str, str], ...] = ()
        else:  # listed all the same, with what its document says that is valid on its own
            file = f"runs/{self.id}/run.json"
            self._doc_problems = (_problem(marker, file) if marker is not None else {"file": file, "reason": problem},)
            self._fields = usable_run_fields(doc)
            fields = read_run_doc({**self._fields, "id": self.id, "status": CORRUPT})[1]
            assert fields is not None  # each field kept is valid on its own
        name, experiment, self.parent_id, self.framework, status, self.start_time, self.end_time, beat, interval = fields
        self.name: str = name or self.id[:8]
        self.experiment: str = experiment or "default"
        owner = self._fields.get("owner")  # set by a tracking server: the token that created the run
        self.owner: str | None = owner.get("name") if type(owner) is dict and type(owner.get("name")) is str else None
        self.heartbeat: float | None = beat
        if status == "running" and beat is not None:
            if time.time() - beat > STALE_HEARTBEATS * (interval or 15.0):
                status = "killed"
        self.status: str = status

    # -- lazily loaded parts ----------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        params: dict[str, Any] = {}
        history: dict[str, list[tuple[Any, float]]] = {}
        tags: dict[str, Any] = {}
        seeds: dict[str, Any] = {}
        data: dict[str, Any] = {}
        environment: dict[str, Any] = {}
        columns: dict[str, list[dict[str, list[Any]]]] = {}
        artifacts: list[tuple[int, float, dict[str, Any]]] = []
        updates: list[tuple[int, float, dict[str, Any]]] = []
        final: dict[str, Any] | None = None
        problems = list(self._doc_problems)
        for index, seg in enumerate(self._segments(problems)):
            if type(seg) is dict and "corrupt" in seg:  # a file the backend could not read
                problems.append(_problem(seg["corrupt"], _segment_file(self.id, seg, index)))
                continue
            reason = segment_problem(seg)
            if reason is not None:  # skipped whole: half a segment would be a lie
                problems.append({"file": _segment_file(self.id, seg, index), "reason": reason})
                continue
            for key, value, ts in seg.get("params", ()):
                params[key] = _decode(value)
                history.setdefault(key, []).append((params[key], ts))
            for key, value, _ts in seg.get("tags", ()):
                tags[key] = _decode(value)
            for key, value, _ts in seg.get("seeds", ()):
                seeds[key] = _decode(value)
            for key, value, _ts in seg.get("data", ()):
                data[key] = _decode(value)
            for key, col in seg.get("metrics", {}).items():
                columns.setdefault(key, []).append(col)
            # put order: segment, then call time within it
            artifacts.extend((index, a.get("time") or 0, a) for a in seg.get("artifacts", ()))
            updates.extend((index, u.get("time") or 0, u) for u in seg.get("artifact_updates", ()))
            if "environment" in seg:
                environment = _decode(seg["environment"])
            if "status" in seg:
                final = _decode(seg["status"])
        self._params, self._history, self._tags, self._seeds = params, history, tags, seeds
        self._data, self._environment = data, environment
        self._columns = columns
        self._metrics: dict[str, MetricPoints] | None = None
        by_name: dict[str, dict[str, Any]] = {}
        # An update applies to the artifacts logged before it: a file logged again under its name
        # (``last.ckpt``) after an update of its earlier version starts with clean metadata.
        for _seg, _time, is_update, doc in sorted(
                [(n, t, 0, d) for n, t, d in artifacts] + [(n, t, 1, d) for n, t, d in updates],
                key=lambda item: item[:3]):
            if not is_update:
                by_name[doc["name"]] = dict(doc, metadata=dict(doc.get("metadata") or {}))
                continue
            target = doc.get("name")  # by artifact name, or by the directory (group) it was logged as
            for art in by_name.values():
                if art["name"] == target or art["metadata"].get("group") == target:
                    art["metadata"].update(_decode(doc.get("metadata") or {}))
        self._artifacts = [ArtifactRecord(_decode(d), self._backend, self.id) for d in by_name.values()]
        self._error = final.get("error") if final else None
        if final and self.status == "running":
            self.status = final.get("status", self.status)  # the segment outlived the run document
        self._problems = problems
        self._loaded = True

    def _segments(self, problems: list[dict[str, str]]) -> list[Any]:
        """The run's segments; a run id the backend refuses (a folder not named like a run, in a
        corrupt run) is one more problem, not an error: the rest of the run is still shown."""
        try:
            found = self._backend.read_segments(self.id)
        except ValueError as exc:
            problems.append({"file": f"runs/{self.id}/events", "reason": str(exc)})
            return []
        return found if isinstance(found, list) else []

    @property
    def problems(self) -> list[dict[str, str]]:
        """The files of this run that could not be used, each ``{"file", "reason"}``: its run
        document (then ``status`` is ``"corrupt"``) or event segments that were skipped."""
        self._load()
        return self._problems

    @property
    def params(self) -> dict[str, Any]:
        self._load()
        return self._params

    @property
    def param_history(self) -> dict[str, list[tuple[Any, float]]]:
        """Every value each param was given, with its time: the latest is in ``params``."""
        self._load()
        return self._history

    @property
    def tags(self) -> dict[str, Any]:
        self._load()
        return self._tags

    @property
    def seeds(self) -> dict[str, Any]:
        self._load()
        return self._seeds

    @property
    def data(self) -> dict[str, Any]:
        self._load()
        return self._data

    @property
    def environment(self) -> dict[str, Any]:
        self._load()
        return self._environment

    @property
    def error(self) -> str | None:
        self._load()
        return self._error

    @property
    def metrics(self) -> dict[str, MetricPoints]:
        self._load()
        if self._metrics is None:
            # each behaves as a list of MetricPoint, built on access (see _points)
            out: dict[str, MetricPoints] = {key: MetricPoints.from_columns(cols) for key, cols in self._columns.items()}
            self._metrics = out
        return self._metrics

    @property
    def final_metrics(self) -> dict[str, float]:
        """The last value of each metric.

        For a run whose process wrote its end, the run document's summary has them (written
        after the last segment), so a table of runs reads no segments; otherwise the points.
        """
        if not self._loaded and self.status != CORRUPT and self._doc.get("status") in ("finished", "failed", "killed"):
            summary = self._doc.get("summary")
            figures = summary.get("metrics") if isinstance(summary, dict) else None
            if isinstance(figures, dict):
                found = {k: _figure(v[0]) for k, v in figures.items() if isinstance(v, list) and v}
                return {k: v for k, v in found.items() if v is not None}
        return {k: v[-1].value for k, v in self.metrics.items() if v}

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        self._load()
        return self._artifacts

    def artifact(self, name: str) -> ArtifactRecord:
        """The artifact called ``name``, or else the one whose file name is ``name``. A file name
        several artifacts share (``model.safetensors`` in every checkpoint folder) raises
        ``AmbiguousArtifactError`` listing them: picking one would hand over the wrong weights."""
        for art in self.artifacts:
            if art.name == name:
                return art
        matches = [a for a in self.artifacts if os.path.basename(a.name) == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AmbiguousArtifactError(f"artifact name {name!r} is ambiguous in run {self.id[:8]}: "
                                         f"{len(matches)} artifacts end in it ({', '.join(a.name for a in matches)}); "
                                         "give the full name")
        raise ArtifactNotFoundError(f"run {self.id[:8]} has no artifact {name!r}")

    @property
    def duration(self) -> float | None:
        if self.start_time is None:
            return None
        end = self.end_time
        if end is None:
            end = _dt.datetime.fromtimestamp(self.heartbeat, _dt.timezone.utc) if self.status != "running" and self.heartbeat else _dt.datetime.now(_dt.timezone.utc)
        return (end - self.start_time).total_seconds()

    def to_dict(self, metrics: str = "points") -> dict[str, Any]:
        """Every attribute as plain data (for ``--json``): ``param_history`` as ``[value, time]``
        pairs, ``final_metrics`` and, in ``metrics``, every point (``metrics="last"``: only the
        final values, as in ``final_metrics``). Non-finite floats stay floats: the CLI's JSON
        writer turns them into strings."""
        final = self.final_metrics
        return {
            "id": self.id, "name": self.name, "experiment": self.experiment, "parent_id": self.parent_id,
            "status": self.status, "framework": self.framework, "owner": self.owner,
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "duration": self.duration, "tags": self.tags, "params": self.params,
            "param_history": {k: [[value, ts] for value, ts in v] for k, v in self.param_history.items()},
            "seeds": self.seeds,
            "metrics": dict(final) if metrics == "last" else {
                k: [p._asdict() for p in v] for k, v in self.metrics.items()},
            "final_metrics": final,
            "artifacts": [{"name": a.name, "kind": a.kind, "sha256": a.sha256, "size": a.size,
                           "metadata": a.metadata} for a in self.artifacts],
            "data": self.data, "environment": self.environment, "error": self.error, "uri": self.uri,
            "problems": [dict(p) for p in self.problems],
        }

    def __repr__(self) -> str:
        return f"<RunRecord {self.id[:8]} {self.name!r} {self.status} {self.framework or 'manual'}>"


def record_of(doc: Any, backend: Backend) -> RunRecord | None:
    """The record of a document a backend listed, or None when it has no id to be found by (the
    file store names every document by its folder, so this is only ever another backend's)."""
    if type(doc) is not dict:
        return None
    run_id = doc.get("id")
    if type(run_id) is not str or not run_id:
        return None
    return RunRecord(doc, backend)


def _records(uri: str | None) -> list[RunRecord]:
    backend = backend_for(resolve_uri(uri))
    _pending.wait()  # runs this process ended are delivered in the background: read them
    found = backend.list_runs()
    with paused_gc():  # 10,000 records, all kept: a collection would walk them and free nothing
        return [r for r in map(record_of, found, itertools.repeat(backend)) if r is not None]


def runs(uri: str | None = None, experiment: str | None = None, status: str | None = None) -> list[RunRecord]:
    """Runs in the store, newest first, optionally only one experiment and/or status."""
    found = [
        r for r in _records(uri)
        if (experiment is None or r.experiment == experiment) and (status is None or r.status == status)
    ]
    epoch = _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    found.sort(key=lambda r: (r.start_time or epoch, r.id), reverse=True)
    return found


def get_run(run_id: str, uri: str | None = None) -> RunRecord:
    """A run by full id or unique id prefix (``"last"`` means the newest run)."""
    if run_id == "last":
        found = last_run(uri)
        if found is None:
            raise RunNotFoundError("the store has no runs yet")
        return found
    candidates = [r for r in _records(uri) if r.id.startswith(run_id)] if run_id else []
    exact = [r for r in candidates if r.id == run_id]
    if exact:
        return exact[0]
    if not candidates:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    if len(candidates) > 1:
        raise AmbiguousRunError(f"id prefix {run_id!r} matches {len(candidates)} runs; give more characters")
    return candidates[0]


def last_run(uri: str | None = None, experiment: str | None = None) -> RunRecord | None:
    """The most recently started run, or None for an empty store."""
    found = runs(uri, experiment=experiment)
    return found[0] if found else None
