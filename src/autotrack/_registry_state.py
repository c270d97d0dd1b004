"""The model registry's state machine: events in, state out. No I/O, so the Python API, the file
store and the server replay a model's log by the very same rules (docs/format.md, "Model registry").

A model's log is a sequence of immutable events, numbered from 0 (``seq``), each one of:

* ``register``: a new version (``version``, never reused: above every version before it) made of
  one artifact of one run (``run_id``, ``artifact``, ``sha256``, ``size``, ``metadata``);
* ``set_alias``: ``alias`` now names ``version`` (an existing version); ``previous`` says what it
  named before (or null);
* ``delete_alias``: ``alias`` names nothing any more; ``previous`` says what it named.

The *state* is the replay of the log: which versions exist (with the ``seq`` of the event that
registered each, so a version's record is one read away), the aliases, the next version number,
and the last ``seq`` applied. It is also the snapshot format: a snapshot is the state after every
event below ``upto``, so a reader replays only what came after the newest snapshot. An event that
breaks a rule (a hand-edited store) is skipped, never half-applied, and named in ``problems``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from autotrack._errors import ModelNotFoundError
from autotrack._schema import _aware

__all__ = ["ACTIONS", "NAME", "PARTITION", "SNAPSHOT_EVERY", "RESERVED_ALIASES", "check_name", "check_alias",
           "event_problem", "event_file", "new_state", "copy_state", "apply", "replay", "state_from_doc",
           "state_doc", "next_event", "no_version", "no_alias", "parse_ref"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ACTIONS = ("register", "set_alias", "delete_alias")
PARTITION = 1000       # events per folder: a listing never grows past this many names
SNAPSHOT_EVERY = 1000  # a snapshot of the replayed state every this many events
RESERVED_ALIASES = ("latest",)  # ``name@latest`` is always the newest version: no event may name it
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME_RULE = "1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"


def check_name(name: Any, what: str = "model name") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: {_NAME_RULE}")
    return name


def check_alias(alias: Any) -> str:
    check_name(alias, "alias")
    if alias in RESERVED_ALIASES:
        raise ValueError(f"alias {alias!r} is reserved: name@{alias} always means the newest version")
    return alias


def _version(value: Any) -> bool:
    return type(value) is int and 1 <= value < 10**12


def event_problem(event: Any, seq: int | None = None, name: str | None = None) -> str | None:
    """What is wrong with a stored event on its face (types, shapes), or None."""
    if type(event) is not dict:
        return "not a JSON object"
    if type(event.get("seq")) is not int or event["seq"] < 0:
        return "seq is not an integer, 0 or more"
    if seq is not None and event["seq"] != seq:
        return f"seq {event['seq']} is not the number in its file name ({seq})"
    if name is not None and event.get("model", name) != name:
        return f"model {event.get('model')!r} is not the name of its folder"
    action = event.get("action")
    if action not in ACTIONS:
        return f"action {action!r} is not one of {', '.join(ACTIONS)}"
    try:
        _aware(event.get("time"))
    except (ValueError, TypeError):
        return "time is not an ISO 8601 time with a UTC offset"
    if event.get("time") is None:
        return "time is missing"
    for key in ("by", "run_id", "artifact"):
        if event.get(key) is not None and type(event[key]) is not str:
            return f"{key} is not a string"
    if event.get("metadata") is not None and type(event["metadata"]) is not dict:
        return "metadata is not an object"
    if event.get("previous") is not None and not _version(event["previous"]):
        return "previous is not a version number"
    if action == "register":
        if not _version(event.get("version")):
            return "version is not a version number (an integer, 1 or more)"
        if not event.get("run_id") or not event.get("artifact"):
            return "a register event needs run_id and artifact"
        if type(event.get("sha256")) is not str or not _SHA256.fullmatch(event["sha256"]):
            return "sha256 is not 64 lowercase hex digits"
        if type(event.get("size")) is not int or event["size"] < 0:
            return "size is not an integer, 0 or more"
        return None
    if type(event.get("alias")) is not str or not NAME.fullmatch(event["alias"]) or event["alias"] in RESERVED_ALIASES:
        return f"alias {event.get('alias')!r} is not a valid alias"
    if action == "set_alias" and not _version(event.get("version")):
        return "version is not a version number (an integer, 1 or more)"
    return None


def new_state(name: str) -> dict[str, Any]:
    """The state of a model with no events: ``versions`` maps version -> seq of its register event."""
    return {"model": name, "upto": 0, "last_seq": -1, "next_version": 1, "versions": {}, "aliases": {},
            "problems": []}


def apply(state: dict[str, Any], event: dict[str, Any], file: str) -> None:
    """Apply one event (already checked by ``event_problem``) in place, or add a problem."""
    seq, action, version = event["seq"], event["action"], event.get("version")
    reason = None
    if action == "register":
        if version < state["next_version"]:
            reason = f"version {version} is not above every version before it (versions are never reused)"
        else:
            state["versions"][version] = seq
            state["next_version"] = version + 1
    elif action == "set_alias":
        if version not in state["versions"]:
            reason = f"version {version} does not exist"
        else:
            state["aliases"][event["alias"]] = version
    elif event["alias"] not in state["aliases"]:
        reason = f"alias {event['alias']!r} does not exist"
    else:
        del state["aliases"][event["alias"]]
    if reason is not None:
        state["problems"].append({"file": file, "reason": reason})
    state["last_seq"] = max(state["last_seq"], seq)
    state["upto"] = state["last_seq"] + 1


def replay(state: dict[str, Any], events: list[Any], where: str) -> dict[str, Any]:
    """``state`` (not changed) with ``events`` applied in ``seq`` order; ``where`` is the model's
    folder in the file format (``models/churn``), to name a skipped event's file."""
    out = copy_state(state)
    for event in sorted((e for e in events if isinstance(e, dict)), key=_order):
        seq = event.get("seq")
        if type(seq) is int and seq < out["upto"]:
            continue  # in the snapshot already
        file = event_file(where, seq) if type(seq) is int else f"{where}/events"
        corrupt = event.get("corrupt")
        problem = _marker_reason(corrupt) if corrupt is not None else event_problem(event, name=out["model"])
        if problem is not None:
            out["problems"].append({"file": corrupt.get("file", file) if isinstance(corrupt, dict) else file,
                                    "reason": problem})
            if type(seq) is int:
                out["last_seq"] = max(out["last_seq"], seq)
                out["upto"] = out["last_seq"] + 1
            continue
        apply(out, event, file)
    return out


def _order(event: dict[str, Any]) -> int:
    seq = event.get("seq")
    return seq if type(seq) is int else -1


def _marker_reason(corrupt: Any) -> str:
    if isinstance(corrupt, dict) and isinstance(corrupt.get("reason"), str):
        return corrupt["reason"]
    return "unreadable"


def event_file(where: str, seq: int) -> str:
    return f"{where}/events/{seq // PARTITION:06d}/{seq:09d}.json"


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "versions": dict(state["versions"]), "aliases": dict(state["aliases"]),
            "problems": list(state["problems"])}


def state_doc(state: dict[str, Any]) -> dict[str, Any]:
    """The state as JSON (a snapshot file, an HTTP answer): version keys as strings."""
    return {"format": 1, "model": state["model"], "upto": state["upto"], "last_seq": state["last_seq"],
            "next_version": state["next_version"], "versions": {str(v): s for v, s in state["versions"].items()},
            "aliases": dict(state["aliases"]), "problems": list(state["problems"])}


def state_from_doc(doc: Any, name: str) -> dict[str, Any] | None:
    """A state read back from JSON, or None when the document does not hold one."""
    try:
        if type(doc) is not dict or doc.get("model") != name:
            return None
        versions = {int(v): s for v, s in doc["versions"].items()}
        state = {"model": name, "upto": doc["upto"], "last_seq": doc["last_seq"], "next_version": doc["next_version"],
                 "versions": versions, "aliases": dict(doc["aliases"]), "problems": list(doc.get("problems") or [])}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    good = (all(type(x) is int for x in (state["upto"], state["last_seq"], state["next_version"]))
            and all(type(s) is int for s in versions.values())
            and all(type(a) is str and v in versions for a, v in state["aliases"].items()))
    return state if good else None


def next_event(state: dict[str, Any], request: dict[str, Any], by: str,
               record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event a ``request`` (``{"action", ...}``) makes next, given the current ``state``.

    ``record`` is what the request is about: for ``register`` the artifact (``run_id``,
    ``artifact``, ``sha256``, ``size``), for ``set_alias`` the register event of the version.
    Raises ``ModelNotFoundError`` for a version or alias that does not exist."""
    name, action = state["model"], request.get("action")
    event: dict[str, Any] = {"format": 1, "model": name, "seq": state["last_seq"] + 1, "action": action}
    if action == "register":
        assert record is not None
        event.update(version=state["next_version"], run_id=record["run_id"], artifact=record["artifact"],
                     sha256=record["sha256"], size=record["size"], metadata=dict(request.get("metadata") or {}))
    elif action == "set_alias":
        version = request.get("version")
        if version not in state["versions"]:
            raise ModelNotFoundError(no_version(state, version))
        alias = check_alias(request.get("alias"))
        rec = record or {}
        event.update(alias=alias, version=version, previous=state["aliases"].get(alias),
                     run_id=rec.get("run_id"), artifact=rec.get("artifact"), sha256=rec.get("sha256"))
    elif action == "delete_alias":
        alias = check_alias(request.get("alias"))
        if alias not in state["aliases"]:
            raise ModelNotFoundError(no_alias(state, alias))
        event.update(alias=alias, version=None, previous=state["aliases"][alias])
    else:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    event.update(time=_dt.datetime.now(_dt.timezone.utc).isoformat(), by=by)
    return event


def no_version(state: dict[str, Any], version: Any) -> str:
    have = sorted(state["versions"])
    span = "none" if not have else (f"{have[0]}-{have[-1]}" if len(have) > 1 else str(have[0]))
    return f"model {state['model']!r} has no version {version!r} (versions: {span})"


def no_alias(state: dict[str, Any], alias: str) -> str:
    have = ", ".join(sorted(state["aliases"])) or "none"
    return f"model {state['model']!r} has no alias {alias!r} (aliases: {have})"


def parse_ref(ref: Any) -> tuple[str, str | None, int | None]:
    """``"churn@production"`` -> (churn, production, None); ``"churn/3"`` -> (churn, None, 3);
    ``"churn"`` and ``"churn@latest"`` -> (churn, None, None), the newest version."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"invalid model reference {ref!r}: NAME, NAME@ALIAS or NAME/VERSION")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        check_name(name)
        check_name(alias, "alias")
        return name, (None if alias == "latest" else alias), None
    if "/" in ref:
        name, _, number = ref.partition("/")
        check_name(name)
        if not number.isascii() or not number.isdigit() or int(number) < 1:
            raise ValueError(f"invalid model reference {ref!r}: the version after '/' is a number, 1 or more")
        return name, None, int(number)
    return check_name(ref), None, None
