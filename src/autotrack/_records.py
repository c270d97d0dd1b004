"""Reading runs back: ``RunRecord`` and the functions that find runs in a store.

A record is built from the small run document alone (so listing 10,000 runs stays cheap); the
segments (params, metrics, artifacts, environment...) are read on first access of any of them.
A ``running`` run whose heartbeat is older than four heartbeat intervals is reported ``killed``:
its process died without a word (SIGKILL, power loss, OOM killer).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
import time
from typing import IO, Any, Iterator

from autotrack._config import resolve_uri
from autotrack._errors import AmbiguousRunError, ArtifactNotFoundError, IntegrityError, RunNotFoundError
from autotrack._points import MetricPoint, MetricPoints
from autotrack._values import decode_float
from autotrack.backends.base import Backend, backend_for

__all__ = ["RunRecord", "MetricPoint", "ArtifactRecord", "runs", "get_run", "last_run", "STALE_HEARTBEATS"]

STALE_HEARTBEATS = 4


def _decode(value: Any) -> Any:
    """Undo the writer's tagging of non-finite floats (``{"$float": "NaN"}``)."""
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value:
            return decode_float(value["$float"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _parse_time(text: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(text) if text else None


class _VerifyingReader:
    """Streams stored bytes and raises IntegrityError at the end if they do not hash as recorded."""

    def __init__(self, raw: IO[bytes], sha256: str, name: str) -> None:
        self._raw, self._sha, self._name = raw, sha256, name
        self._digest = hashlib.sha256()
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        if (not data or size is None or size < 0) and not self._checked:
            self._checked = True
            if self._digest.hexdigest() != self._sha:
                raise IntegrityError(f"artifact {self._name!r}: stored bytes do not match sha256 {self._sha}")
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 20):
            yield chunk

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "_VerifyingReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ArtifactRecord:
    """A stored file: ``open()`` and ``download()`` give back exactly the recorded bytes."""

    def __init__(self, doc: dict[str, Any], backend: Backend) -> None:
        self.name: str = doc["name"]
        self.kind: str = doc.get("kind", "file")
        self.sha256: str = doc["sha256"]
        self.size: int = doc.get("size", 0)
        self.metadata: dict[str, Any] = dict(doc.get("metadata") or {})
        self.timestamp: float | None = doc.get("time")
        self.source: str | None = doc.get("source")
        self._backend = backend

    def open(self) -> _VerifyingReader:
        return _VerifyingReader(self._backend.open_artifact(self.sha256), self.sha256, self.name)

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def download(self, dest: str | os.PathLike[str]) -> str:
        """Write to ``dest`` (a file path, or an existing directory to put ``name`` in)."""
        dest = os.fspath(dest)
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(self.name))
        folder = os.path.dirname(os.path.abspath(dest))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".autotrack-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, self.open() as src:
                shutil.copyfileobj(src, out, 1 << 20)  # type: ignore[arg-type]
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return dest

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} {self.kind} {self.size} bytes sha256={self.sha256[:12]}>"


class RunRecord:
    """A run as stored: every attribute of the public contract (see docs/api.md)."""

    def __init__(self, doc: dict[str, Any], backend: Backend) -> None:
        self._doc = doc
        self._backend = backend
        self.id: str = doc["id"]
        self.name: str = doc.get("name") or self.id[:8]
        self.experiment: str = doc.get("experiment") or "default"
        self.parent_id: str | None = doc.get("parent_id")
        self.framework: str | None = doc.get("framework")
        self.start_time = _parse_time(doc.get("start_time"))
        self.end_time = _parse_time(doc.get("end_time"))
        self.heartbeat: float | None = doc.get("heartbeat")
        self.uri: str = backend.uri
        self._loaded = False
        status = doc.get("status", "running")
        if status == "running" and self.heartbeat is not None:
            interval = float(doc.get("heartbeat_interval") or 15.0)
            if time.time() - self.heartbeat > STALE_HEARTBEATS * interval:
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
        for index, seg in enumerate(self._backend.read_segments(self.id)):
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
        self._artifacts = [ArtifactRecord(_decode(d), self._backend) for d in by_name.values()]
        self._error = final.get("error") if final else None
        if final and self.status == "running":
            self.status = final.get("status", self.status)  # the segment outlived the run document
        self._loaded = True

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
        if not self._loaded and self._doc.get("status") in ("finished", "failed", "killed"):
            summary = self._doc.get("summary")
            figures = summary.get("metrics") if isinstance(summary, dict) else None
            if isinstance(figures, dict):
                return {k: decode_float(v[0]) if isinstance(v[0], str) else v[0]
                        for k, v in figures.items() if isinstance(v, list) and v}
        return {k: v[-1].value for k, v in self.metrics.items() if v}

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        self._load()
        return self._artifacts

    def artifact(self, name: str) -> ArtifactRecord:
        for art in self.artifacts:
            if art.name == name:
                return art
        matches = [a for a in self.artifacts if os.path.basename(a.name) == name]
        if len(matches) == 1:
            return matches[0]
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
        """Plain data for ``--json``; ``metrics="last"`` gives only the final values."""
        return {
            "id": self.id, "name": self.name, "experiment": self.experiment, "parent_id": self.parent_id,
            "status": self.status, "framework": self.framework,
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "duration": self.duration, "tags": self.tags, "params": self.params, "seeds": self.seeds,
            "metrics": self.final_metrics if metrics == "last" else {
                k: [p._asdict() for p in v] for k, v in self.metrics.items()},
            "artifacts": [{"name": a.name, "kind": a.kind, "sha256": a.sha256, "size": a.size,
                           "metadata": a.metadata} for a in self.artifacts],
            "data": self.data, "environment": self.environment, "error": self.error, "uri": self.uri,
        }

    def __repr__(self) -> str:
        return f"<RunRecord {self.id[:8]} {self.name!r} {self.status} {self.framework or 'manual'}>"


def _records(uri: str | None) -> list[RunRecord]:
    backend = backend_for(resolve_uri(uri))
    return [RunRecord(doc, backend) for doc in backend.list_runs() if doc.get("id")]


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
