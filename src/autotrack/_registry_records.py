"""What the model registry hands back: ``ModelVersion``, ``RegisteredModel``, ``ModelEvent``.

Kept apart from ``_registry`` (the functions) so each stays small. A ``ModelVersion`` is one
register event read back, with the aliases that name it; its bytes are read like a run's artifact
(``ArtifactRecord``: streamed and checked against the sha256), and ``.run`` is the full record of
the run that produced it, read on first use.
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

from autotrack._errors import AmbiguousArtifactError, ArtifactNotFoundError, RunNotFoundError

__all__ = ["ModelVersion", "RegisteredModel", "ModelEvent", "choose_artifact", "released"]


def _time(value: Any) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _decoded(metadata: Any) -> dict[str, Any]:
    from autotrack._records import _decode

    return _decode(dict(metadata)) if isinstance(metadata, dict) else {}


def released(art: Any) -> bool:
    """A run's artifact whose bytes its writer freed (a checkpoint rotated out, not kept)."""
    return bool(art.metadata.get("superseded")) and art.metadata.get("kept") is False


def choose_artifact(record: Any) -> Any:
    """The artifact to register when none is named: the run's one ``kind="model"`` artifact, else
    its best checkpoint; else an error listing what could be named."""
    usable = [a for a in record.artifacts if not released(a)]
    models = [a for a in usable if a.kind == "model"]
    if len(models) == 1:
        return models[0]
    if len(models) > 1:
        raise AmbiguousArtifactError(f"run {record.id[:8]} has {len(models)} model artifacts "
                                     f"({_names(models)}): name the one to register")
    best = [a for a in usable if a.kind == "checkpoint" and a.metadata.get("best") is True]
    if len(best) == 1:
        return best[0]
    if not usable:
        raise ArtifactNotFoundError(f"run {record.id[:8]} has no artifact to register"
                                    + (" (its checkpoints were released)" if record.artifacts else ""))
    raise ArtifactNotFoundError(f"run {record.id[:8]} has no model artifact and no best checkpoint: name the "
                                f"artifact to register, one of: {_names(usable)}")


def _names(arts: list[Any], most: int = 20) -> str:
    names = [a.name for a in arts]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


class ModelVersion:
    """One registered version: which artifact of which run, its content, and the aliases naming it."""

    def __init__(self, event: dict[str, Any], aliases: list[str], backend: Any) -> None:
        self.name: str = event["model"]
        self.version: int = event["version"]
        self.run_id: str = event["run_id"]
        self.artifact: str = event["artifact"]
        self.sha256: str = event["sha256"]
        self.size: int = event["size"]
        self.metadata: dict[str, Any] = _decoded(event.get("metadata"))
        self.created: _dt.datetime | None = _time(event.get("time"))
        self.by: str | None = event.get("by")
        self.aliases: list[str] = sorted(aliases)
        self.uri: str = backend.uri
        self._backend = backend
        self._run: Any = None

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def run(self) -> Any:
        """The full ``RunRecord`` of the run that logged the artifact (read on first use)."""
        if self._run is None:
            from autotrack._records import get_run

            try:
                self._run = get_run(self.run_id, uri=self.uri)
            except RunNotFoundError:
                raise RunNotFoundError(f"run {self.run_id[:8]}, which produced {self.ref}, is no longer in the "
                                       "store (deleted); the version's bytes are kept") from None
        return self._run

    def _artifact(self) -> Any:
        from autotrack._artifact_record import ArtifactRecord

        return ArtifactRecord({"name": self.artifact, "sha256": self.sha256, "size": self.size}, self._backend,
                              self.run_id)

    def open(self) -> Any:
        """A binary reader of the version's bytes; ``IntegrityError`` at the end if they do not match."""
        return self._artifact().open()

    def read_bytes(self) -> bytes:
        return self._artifact().read_bytes()

    def download(self, dest: str | os.PathLike[str], *, overwrite: bool = True) -> str:
        """Write the version's bytes (verified against their sha256) to ``dest``, a file or a folder,
        as ``ArtifactRecord.download`` does; return the path written."""
        return self._artifact().download(dest, overwrite=overwrite)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "artifact": self.artifact,
                "sha256": self.sha256, "size": self.size, "aliases": list(self.aliases),
                "created": self.created.isoformat() if self.created else None, "by": self.by,
                "metadata": self.metadata}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and (self.uri, self.name, self.version, self.sha256) == (
            other.uri, other.name, other.version, other.sha256)

    def __hash__(self) -> int:
        return hash((self.uri, self.name, self.version))

    def __repr__(self) -> str:
        tags = f" @{',@'.join(self.aliases)}" if self.aliases else ""
        return f"<ModelVersion {self.ref}{tags} run {self.run_id[:8]} {self.artifact!r} sha256={self.sha256[:12]}>"


class RegisteredModel:
    """A model: its aliases (alias -> version) at once, its versions read on first use."""

    def __init__(self, state: dict[str, Any], backend: Any) -> None:
        self.name: str = state["model"]
        self.aliases: dict[str, int] = dict(sorted(state["aliases"].items()))
        self.problems: list[dict[str, str]] = list(state["problems"])
        self._state = state
        self._backend = backend
        self._versions: list[ModelVersion] | None = None

    @property
    def version_numbers(self) -> list[int]:
        return sorted(self._state["versions"])

    @property
    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        if self._versions is None:
            from autotrack._registry import read_versions

            self._versions = read_versions(self._backend, self._state, self.version_numbers)
        return self._versions

    @property
    def latest(self) -> ModelVersion | None:
        """The newest version (``name@latest``), or None."""
        numbers = self.version_numbers
        if not numbers:
            return None
        if self._versions is not None:
            return self._versions[-1] if self._versions else None
        from autotrack._registry import read_versions

        found = read_versions(self._backend, self._state, numbers[-1:])
        return found[0] if found else None

    def to_dict(self, versions: bool = True) -> dict[str, Any]:
        numbers = self.version_numbers
        out: dict[str, Any] = {"name": self.name, "aliases": dict(self.aliases),
                               "latest": numbers[-1] if numbers else None, "problems": list(self.problems)}
        if versions:
            out["versions"] = [v.to_dict() for v in self.versions]
        return out

    def __repr__(self) -> str:
        numbers = self.version_numbers
        aliases = ", ".join(f"@{a}={v}" for a, v in self.aliases.items())
        return f"<RegisteredModel {self.name!r} {len(numbers)} versions{', ' + aliases if aliases else ''}>"


class ModelEvent:
    """One event of a model's log: ``register``, ``set_alias`` or ``delete_alias``, who and when."""

    __slots__ = ("model", "seq", "action", "version", "alias", "previous", "run_id", "artifact", "sha256", "by",
                 "time", "metadata")

    def __init__(self, event: dict[str, Any]) -> None:
        self.model: str = event.get("model") or ""
        self.seq: int = event["seq"]
        self.action: str = event["action"]
        self.version: int | None = event.get("version")
        self.alias: str | None = event.get("alias")
        self.previous: int | None = event.get("previous")
        self.run_id: str | None = event.get("run_id")
        self.artifact: str | None = event.get("artifact")
        self.sha256: str | None = event.get("sha256")
        self.by: str | None = event.get("by")
        self.time: _dt.datetime | None = _time(event.get("time"))
        self.metadata: dict[str, Any] = _decoded(event.get("metadata"))

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["time"] = self.time.isoformat() if self.time else None
        return out

    def __repr__(self) -> str:
        what = {"register": f"v{self.version} from run {(self.run_id or '')[:8]} {self.artifact!r}",
                "set_alias": f"@{self.alias} -> v{self.version} (was {self.previous})",
                "delete_alias": f"@{self.alias} removed (was v{self.previous})"}[self.action]
        return f"<ModelEvent {self.model}#{self.seq} {self.action}: {what} by {self.by}>"
