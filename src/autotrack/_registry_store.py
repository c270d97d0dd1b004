"""Reading a model's state from a store, and committing an event to it: the numbering and the
retry that make concurrent writers safe.

``state_of`` is the newest snapshot plus the events after it (``_registry_state.replay``); a
process remembers the state it last replayed per model, and since events are immutable it only
reads what came after (a listing of one folder when nothing did).

``commit`` is the one way an event is written, by the Python API over a file store and by the
server for its HTTP clients (who cannot number events or say who they are): build the next
event from the state, create it only if its number is free (``append_model_event``), and if
another writer took the number, read what they wrote and try the next. For a registration the
artifact's bytes are pinned first (``_refs``), then checked to be there, so no release can free
them once the version exists. Whoever writes the event that completes a thousand writes the
snapshot; a writer that finds one missing (its writer died) writes it too.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections import OrderedDict
from typing import Any

from autotrack import _forksafe
from autotrack._errors import ArtifactNotFoundError, AutotrackError, ModelNotFoundError, RunNotFoundError
from autotrack._registry_state import (ACTIONS, NAME, SNAPSHOT_EVERY, check_alias, check_name, new_state,
                                       next_event, replay, state_doc, state_from_doc)

__all__ = ["commit", "state_of", "check_request", "local_user", "forget", "supports_registry", "registry_of"]

_MAX_ATTEMPTS = 1000
_cache: OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = OrderedDict()
_cache_lock = _forksafe.lock()
_CACHE_SIZE = 256


def local_user() -> str:
    """Who writes an event without a server to say: ``user@host``."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (a container without /etc/passwd)
        user = os.environ.get("USER") or "unknown"
    return f"{user}@{socket.gethostname() or 'unknown'}"


def supports_registry(backend: Any) -> bool:
    return callable(getattr(backend, "read_model_events", None)) and callable(getattr(backend, "model_snapshot", None))


def registry_of(backend: Any) -> Any:
    if not supports_registry(backend):
        raise AutotrackError(f"the store {getattr(backend, 'uri', backend)!r} has no model registry (its backend "
                             f"{type(backend).__name__} lacks read_model_events and model_snapshot)")
    return backend


def forget() -> None:
    """Drop every state this process remembers (the benchmarks time a cold read with it)."""
    with _cache_lock:
        _cache.clear()


def _where(name: str) -> str:
    return f"models/{name}"


def state_of(backend: Any, name: str, *, due: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The current state of model ``name`` (no events: a state without versions). With ``due``,
    a snapshot missing from the store (its writer died) is added to it, for a writer to write."""
    check_name(name)
    key = (getattr(backend, "uri", ""), name)
    with _cache_lock:
        entry = _cache.get(key)
    if entry is not None and due is not None and _boundary(entry[0]["last_seq"]) > entry[1]:
        entry = None  # the newest snapshot this process knows is not the last due: look at the store's
    if entry is None:
        doc = backend.model_snapshot(name)
        known = (state_from_doc(doc, name) if doc is not None else None) or new_state(name)
        snapshot = known["upto"]
    else:
        known, snapshot = entry
    events = backend.read_model_events(name, start=known["upto"])
    state = known
    if events:
        boundary = _boundary(max(map(_seq, events)))
        if due is not None and boundary > snapshot:
            below = replay(known, [e for e in events if _seq(e) < boundary], _where(name))
            below["upto"] = boundary
            due.append(below)
            state = replay(below, [e for e in events if _seq(e) >= boundary], _where(name))
        else:
            state = replay(known, events, _where(name))
    _remember(key, state, snapshot)
    return state


def _boundary(last_seq: int) -> int:
    """The position of the newest snapshot due once event ``last_seq`` exists."""
    return (last_seq + 1) // SNAPSHOT_EVERY * SNAPSHOT_EVERY


def _seq(event: Any) -> int:
    seq = event.get("seq") if isinstance(event, dict) else None
    return seq if type(seq) is int else -1


def _remember(key: tuple[str, str], state: dict[str, Any], snapshot: int) -> None:
    """Keep the state and the position of the newest snapshot known to be in the store."""
    with _cache_lock:
        _cache[key] = (state, snapshot)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def check_request(request: Any) -> dict[str, Any]:
    """A request to write an event, checked field by field (ValueError naming the field)."""
    if not isinstance(request, dict):
        raise ValueError("a model event request is a JSON object")
    action = request.get("action")
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    checks = {"alias": lambda v: isinstance(v, str) and NAME.fullmatch(v),
              "version": lambda v: type(v) is int and 1 <= v < 10**12,
              "run_id": lambda v: isinstance(v, str) and NAME.fullmatch(v) and "." not in v,
              "artifact": lambda v: isinstance(v, str) and 0 < len(v) <= 4096,
              "sha256": lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
              "metadata": lambda v: isinstance(v, dict)}
    for key, good in checks.items():
        if key in request and request[key] is not None and not good(request[key]):
            raise ValueError(f"invalid {key} {request[key]!r}")
    needs = {"register": ("run_id",), "set_alias": ("alias", "version"), "delete_alias": ("alias",)}[action]
    missing = [k for k in needs if request.get(k) is None]
    if missing:
        raise ValueError(f"a {action} request needs {', '.join(missing)}")
    if action != "register":
        check_alias(request["alias"])
    return request


def artifact_of(store: Any, run_id: str, artifact: str | None, sha256: str | None = None) -> dict[str, Any]:
    """The artifact a registration names, as the store has it: it must exist and still have its
    bytes (a checkpoint rotated out has none); ``sha256``, when given, must be its content."""
    from autotrack._records import RunRecord
    from autotrack.backends import _admin

    try:
        doc = _admin.read_run(store, run_id)
    except ValueError:
        doc = {"id": run_id, "corrupt": True}  # unreadable document: its segments still say what it logged
    record = RunRecord(doc if isinstance(doc, dict) else {"id": run_id}, store)
    if doc is None and not store.read_segments(run_id):
        raise RunNotFoundError(f"no run with id {run_id!r} in {store.uri}")
    if artifact is None:
        from autotrack._registry_records import choose_artifact

        art = choose_artifact(record)
    else:
        art = record.artifact(artifact)
    meta = art.metadata
    if meta.get("superseded") and meta.get("kept") is False:
        by = meta.get("superseded_by")
        raise ArtifactNotFoundError(f"artifact {art.name!r} of run {run_id[:8]} was released"
                                    f"{' (superseded by ' + by + ')' if isinstance(by, str) and by else ''}: "
                                    "its bytes are gone, so it cannot be registered")
    if sha256 is not None and sha256 != art.sha256:
        raise ValueError(f"artifact {art.name!r} of run {run_id[:8]} is content {art.sha256[:12]}…, not "
                         f"{sha256[:12]}… as asked: it was logged again since")
    return {"run_id": run_id, "artifact": art.name, "sha256": art.sha256, "size": art.size}


def _has_bytes(store: Any, sha: str) -> bool:
    try:
        store.open_artifact(sha).close()
    except FileNotFoundError:
        return False
    return True


def commit(store: Any, name: str, request: dict[str, Any], by: str) -> dict[str, Any]:
    """Write the event ``request`` asks for into model ``name`` of a file store; return it as stored."""
    check_name(name)
    request = check_request(request)
    action = request["action"]
    record = None
    if action == "register":
        record = artifact_of(store, request["run_id"], request.get("artifact"), request.get("sha256"))
    pinned: int | None = None  # the version our pin names, while no event of ours holds it
    for _ in range(_MAX_ATTEMPTS):
        due: list[dict[str, Any]] = []
        state = state_of(store, name, due=due)
        if pinned is not None and pinned in state["versions"]:  # another writer's event took our number
            _drop_stale_pin(store, name, state, pinned, record)
            pinned = None
        if action != "register" and not state["versions"]:
            raise ModelNotFoundError(f"no model {name!r} in {store.uri}")
        if action == "set_alias":
            record = _version_record(store, name, state, request["version"])
        event = next_event(state, request, by, record)
        if action == "register" and pinned != event["version"]:
            assert record is not None
            store.pin_model_artifact(name, event["version"], record["sha256"])  # the pin first, then look
            pinned = event["version"]
            if not _has_bytes(store, record["sha256"]):
                _unpin(store, name, pinned, record["sha256"])
                raise ArtifactNotFoundError(f"artifact {record['artifact']!r} of run {record['run_id'][:8]}: its "
                                            f"bytes (sha256 {record['sha256'][:12]}…) are missing from {store.uri}")
        key = (getattr(store, "uri", ""), name)
        for snapshot in due:
            store.put_model_snapshot(name, state_doc(snapshot))
            _remember(key, state, snapshot["upto"])
        if store.append_model_event(name, event["seq"], event):
            after, snapshot = replay(state, [event], _where(name)), _known(key)
            if after["upto"] % SNAPSHOT_EVERY == 0:  # this event completes a thousand: its writer snapshots
                store.put_model_snapshot(name, state_doc(after))
                snapshot = after["upto"]
            _remember(key, after, snapshot)
            return event
    # A pin left by a failure (here, or an error of the store) is never removed on a guess: the
    # event may have been written after all. It keeps bytes that no version may use, nothing worse.
    raise OSError(f"model {name!r}: {_MAX_ATTEMPTS} other events were written while this one tried to find a "
                  "free number; try again")


def _known(key: tuple[str, str]) -> int:
    with _cache_lock:
        entry = _cache.get(key)
    return entry[1] if entry is not None else 0


def _version_record(store: Any, name: str, state: dict[str, Any], version: Any) -> dict[str, Any]:
    from autotrack._registry_state import no_version

    seq = state["versions"].get(version)
    if seq is None:
        raise ModelNotFoundError(no_version(state, version))
    found = [e for e in store.read_model_events(name, seqs=[seq]) if isinstance(e, dict) and "corrupt" not in e]
    return found[0] if found else {}


def _drop_stale_pin(store: Any, name: str, state: dict[str, Any], version: int, record: Any) -> None:
    """Our pin of ``version`` whose number went to another writer's event: kept if that event
    registered the same bytes (the pin is then theirs too), else dropped."""
    if _version_record(store, name, state, version).get("sha256") != record["sha256"]:
        _unpin(store, name, version, record["sha256"])


def _unpin(store: Any, name: str, version: int, sha: str) -> None:
    try:
        store.pin_model_artifact(name, version, sha, pinned=False)
    except OSError:
        pass  # a pin left behind keeps bytes a little longer, nothing worse
