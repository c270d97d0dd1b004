"""The model registry: named models, numbered versions made of one run's artifact, movable aliases.

"Which model is in production, and what produced it?" ``register_model`` makes a new version of a
model from an artifact of a run (its bytes pinned for good), ``set_alias`` points an alias such as
``production`` at a version (the previous one is recorded, so a rollback is one more
``set_alias``), ``get_model("churn@production")`` answers with the version, its run and its bytes.

Everything is an append-only log per model, one immutable file per event, in the run store itself
(docs/format.md, "Model registry"): the current state is a replay of the log, versions are never
reused, and concurrent writers (two machines on S3) neither lose an event nor share a number. Over
``http://`` the server numbers the events and records who wrote them (docs/server.md).
"""

from __future__ import annotations

import operator
from typing import Any, Mapping

from autotrack._errors import ArtifactNotFoundError, AutotrackError, ModelNotFoundError
from autotrack._registry_records import ModelEvent, ModelVersion, RegisteredModel, choose_artifact, released
from autotrack._registry_state import (apply, check_alias, check_name, event_problem, event_file, new_state,
                                       no_alias, no_version, parse_ref)
from autotrack._registry_store import commit, local_user, registry_of, state_of

__all__ = ["register_model", "set_alias", "delete_alias", "get_model", "models", "model_history", "ModelVersion",
           "RegisteredModel", "ModelEvent", "read_versions"]


def _backend(uri: str | None) -> Any:
    from autotrack._config import resolve_uri
    from autotrack.backends.base import backend_for

    from autotrack import _pending

    backend = backend_for(resolve_uri(uri))
    _pending.wait()  # a model registered from a run that just ended: it is in the store
    return registry_of(backend)


def _write(backend: Any, name: str, request: dict[str, Any]) -> dict[str, Any]:
    """Append the event ``request`` asks for: numbered by the server over HTTP, else here."""
    add = getattr(backend, "add_model_event", None)
    if callable(add):
        return add(name, request)
    if not callable(getattr(backend, "append_model_event", None)):
        raise AutotrackError(f"the store {backend.uri!r} can be read but not written to: its backend "
                             f"{type(backend).__name__} lacks append_model_event")
    return commit(backend, name, request, local_user())


def _run_record(run: Any, uri: str | None) -> Any:
    """The RunRecord of ``run``: an id, a unique prefix, ``"last"``, a RunRecord or a live Run
    (flushed first, so that what it logged is in the store)."""
    from autotrack._records import RunRecord, get_run

    if isinstance(run, str):
        return get_run(run, uri)
    if isinstance(run, RunRecord):
        return run if uri is None else get_run(run.id, uri)
    run_id, flush = getattr(run, "id", None), getattr(run, "flush", None)
    if isinstance(run_id, str) and callable(flush):  # a Run being recorded
        flush()
        return get_run(run_id, uri if uri is not None else getattr(run, "uri", None))
    raise TypeError(f"run must be a run id, a unique id prefix, 'last', a RunRecord or a Run, not {type(run).__name__}")


def register_model(name: str, run: Any, artifact: str | None = None, *, uri: str | None = None,
                   metadata: Mapping[str, Any] | None = None) -> ModelVersion:
    """A new version of model ``name`` made of ``artifact`` of ``run`` (default: the run's one
    ``kind="model"`` artifact, else its best checkpoint). Its bytes are pinned: no checkpoint
    rotation or run deletion frees them. The store is the run's unless ``uri`` says otherwise."""
    check_name(name)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, not {type(metadata).__name__}")
    record = _run_record(run, uri)
    backend = _backend(record.uri)
    art = choose_artifact(record) if artifact is None else record.artifact(artifact)
    if released(art):
        by = art.metadata.get("superseded_by")
        raise ArtifactNotFoundError(f"artifact {art.name!r} of run {record.id[:8]} was released"
                                    f"{' (superseded by ' + by + ')' if isinstance(by, str) and by else ''}: its "
                                    "bytes are gone, so it cannot be registered")
    from autotrack._values import to_json

    request = {"action": "register", "run_id": record.id, "artifact": art.name, "sha256": art.sha256,
               "metadata": to_json(dict(metadata or {}))}
    return ModelVersion(_write(backend, name, request), [], backend)


def _version_number(version: Any) -> int:
    if isinstance(version, ModelVersion):
        return version.version
    if isinstance(version, bool):
        raise TypeError("version must be an integer, not a bool")
    if isinstance(version, str) and version.isascii() and version.isdigit():
        return int(version)
    try:
        return operator.index(version)
    except TypeError:
        raise TypeError(f"version must be an integer, not {type(version).__name__}") from None


def _existing(backend: Any, name: str) -> dict[str, Any]:
    state = state_of(backend, name)
    if not state["versions"]:
        known = backend.list_models()
        raise ModelNotFoundError(f"no model {name!r} in {backend.uri} (models: {', '.join(known) or 'none'})")
    return state


def set_alias(name: str, alias: str, version: Any, *, uri: str | None = None) -> ModelVersion:
    """Point ``alias`` of model ``name`` at ``version``; where it pointed before is recorded."""
    check_name(name)
    check_alias(alias)
    number = _version_number(version)
    backend = _backend(uri)
    state = _existing(backend, name)
    if number not in state["versions"]:
        raise ModelNotFoundError(no_version(state, number))
    _write(backend, name, {"action": "set_alias", "alias": alias, "version": number})
    return _get(backend, name, None, number)


def delete_alias(name: str, alias: str, *, uri: str | None = None) -> None:
    """Remove ``alias`` from model ``name`` (the version stays; the removal is recorded)."""
    check_name(name)
    check_alias(alias)
    backend = _backend(uri)
    state = _existing(backend, name)
    if alias not in state["aliases"]:
        raise ModelNotFoundError(no_alias(state, alias))
    _write(backend, name, {"action": "delete_alias", "alias": alias})


def get_model(ref: str, *, uri: str | None = None) -> ModelVersion:
    """The version ``ref`` names: ``"churn@production"``, ``"churn/3"``, ``"churn@latest"``, or
    ``"churn"`` (the newest version)."""
    name, alias, version = parse_ref(ref)
    return _get(_backend(uri), name, alias, version)


def _get(backend: Any, name: str, alias: str | None, version: int | None) -> ModelVersion:
    state = _existing(backend, name)
    if alias is not None:
        if alias not in state["aliases"]:
            raise ModelNotFoundError(no_alias(state, alias))
        version = state["aliases"][alias]
    elif version is None:
        version = max(state["versions"])
    elif version not in state["versions"]:
        raise ModelNotFoundError(no_version(state, version))
    found = read_versions(backend, state, [version])
    if not found:
        file = event_file(f"models/{name}", state["versions"][version])
        raise ModelNotFoundError(f"version {version} of model {name!r}: its register event ({file}) cannot be read")
    return found[0]


def read_versions(backend: Any, state: dict[str, Any], numbers: list[int]) -> list[ModelVersion]:
    """The versions ``numbers`` of a model whose state is ``state``, read from their register
    events (one read each; over HTTP a few requests); one that cannot be read is left out."""
    name = state["model"]
    seqs = {state["versions"][n]: n for n in numbers if n in state["versions"]}
    events = backend.read_model_events(name, seqs=sorted(seqs))
    named: dict[int, list[str]] = {}
    for alias, number in state["aliases"].items():
        named.setdefault(number, []).append(alias)
    found = {}
    for event in events:
        seq = event.get("seq") if isinstance(event, dict) else None
        if seq in seqs and event_problem(event, name=name) is None and event["action"] == "register" \
                and event["version"] == seqs[seq]:
            found[seqs[seq]] = ModelVersion(dict(event, model=name), named.get(seqs[seq], []), backend)
    return [found[n] for n in sorted(found)]


def models(*, uri: str | None = None) -> list[RegisteredModel]:
    """Every model of the store with at least one version, by name."""
    backend = _backend(uri)
    out = []
    for name in backend.list_models():
        state = state_of(backend, name)
        if state["versions"]:
            out.append(RegisteredModel(state, backend))
    return out


def model_history(name: str, *, uri: str | None = None) -> list[ModelEvent]:
    """Every event of model ``name`` that took effect, oldest first: who registered which version
    and moved which alias, when. Events a replay skips (a hand-edited log) are left out."""
    check_name(name)
    backend = _backend(uri)
    events = backend.read_model_events(name)
    state, out = new_state(name), []
    for event in sorted((e for e in events if isinstance(e, dict) and type(e.get("seq")) is int),
                        key=lambda e: e["seq"]):
        if "corrupt" in event or event_problem(event, name=name) is not None:
            continue
        before = len(state["problems"])
        apply(state, event, "")
        if len(state["problems"]) == before:
            out.append(ModelEvent(dict(event, model=name)))
    if not state["versions"]:
        known = backend.list_models()
        raise ModelNotFoundError(f"no model {name!r} in {backend.uri} (models: {', '.join(known) or 'none'})")
    return out
