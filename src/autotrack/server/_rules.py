"""The server's rules for writes: runs are append-only for their writer, and validated.

* Every document is checked against the schema every reader applies (``autotrack._schema``):
  what would break ``autotrack runs`` or the dashboard is refused (422, naming the field), never
  stored.
* A run belongs to the token that created it (``owner`` in its ``run.json``, set by the server,
  never taken from the client). Only its owner, or an ``admin``, may write to it (else 403).
* A run document may only move forward: its identity and start never change (``id``, ``name``,
  ``experiment``, ``parent_id``, ``start_time``; ``framework`` once set), and its status goes
  from ``running`` to an end, or back to ``running`` (a reopened run), never from one end to
  another (409). The summary is merged.
* A segment, once stored, is immutable: the same content again is an idempotent resend (200),
  other content is 409.
* Model registry: registering a version and moving an alias need ``write``; moving or deleting a
  *protected* alias (``--protected-aliases``, default ``production``) needs ``admin``. Who wrote
  an event is the server's to say (its ``by`` is the token's name), never the client's.
"""

from __future__ import annotations

from typing import Any

from autotrack._schema import run_doc_problem, segment_problem
from autotrack.server._auth import Principal
from autotrack.server._body import HTTPError

__all__ = ["checked_run_doc", "check_segment", "may_write", "may_write_model", "DEFAULT_PROTECTED_ALIASES"]

_FIXED = ("name", "experiment", "parent_id", "start_time")
_ENDED = ("finished", "failed", "killed")
DEFAULT_PROTECTED_ALIASES = ("production",)


def may_write(principal: Principal, current: Any) -> None:
    """403 unless ``principal`` may write to the run whose document is ``current``."""
    if not principal.allows("write"):
        raise HTTPError(403, f"token {principal.name!r} has the {principal.scope} scope: it cannot write")
    if principal.allows("admin"):
        return
    owner = current.get("owner") if isinstance(current, dict) else None
    if not isinstance(owner, dict) or owner.get("id") != principal.id:
        who = owner.get("name") if isinstance(owner, dict) else None
        raise HTTPError(403, f"run {current.get('id') if isinstance(current, dict) else ''} belongs to "
                             f"{'token ' + repr(who) if who else 'no token (it was created before tokens)'}; "
                             f"token {principal.name!r} may only write to the runs it created")


def checked_run_doc(new: Any, current: Any, principal: Principal, run_id: str) -> dict[str, Any]:
    """The document to store for a PUT of ``new`` over ``current`` (None: a new run), or an HTTPError."""
    if not isinstance(new, dict):
        raise HTTPError(422, "a run document is a JSON object")
    if new.setdefault("id", run_id) != run_id:
        raise HTTPError(422, f"the document's id {new['id']!r} is not the run id in the URL")
    new = {k: v for k, v in new.items() if k != "owner"}  # who owns a run is the server's to say
    problem = run_doc_problem(new)
    if problem is not None:
        raise HTTPError(422, f"invalid run document: {problem}")
    if not isinstance(current, dict) or current.get("corrupt"):
        if not principal.allows("write"):
            raise HTTPError(403, f"token {principal.name!r} has the {principal.scope} scope: it cannot create runs")
        return dict(new, owner=principal.owner())
    may_write(principal, current)
    for key in _FIXED:
        if key in current and new.get(key) != current.get(key):
            raise HTTPError(409, f"{key} of run {run_id} is {current.get(key)!r}: it cannot change")
    if current.get("framework") is not None and new.get("framework") != current["framework"]:
        raise HTTPError(409, f"framework of run {run_id} is {current['framework']!r}: it cannot change")
    was, now = current.get("status"), new.get("status")
    if was in _ENDED and now in _ENDED and now != was:
        raise HTTPError(409, f"run {run_id} ended {was}: it cannot become {now} without being reopened")
    merged = dict(new, owner=current.get("owner") or principal.owner())
    old_summary, new_summary = current.get("summary"), new.get("summary")
    if isinstance(old_summary, dict) and isinstance(new_summary, dict):
        merged["summary"] = {part: {**(old_summary.get(part) or {}), **(new_summary.get(part) or {})}
                             if isinstance(new_summary.get(part), dict) and isinstance(old_summary.get(part), dict)
                             else new_summary.get(part, old_summary.get(part))
                             for part in {*old_summary, *new_summary}}
    return merged


def check_segment(segment: Any, run_id: str, seq: int, stored: Any) -> bool:
    """Whether ``segment`` must be written: False for an identical resend; HTTPError when invalid
    or when segment ``seq`` is stored already with other content."""
    if not isinstance(segment, dict):
        raise HTTPError(422, "a segment is a JSON object")
    if segment.setdefault("seq", seq) != seq:
        raise HTTPError(422, f"the segment's seq {segment['seq']!r} is not {seq} as in the URL")
    if segment.setdefault("run_id", run_id) != run_id:
        raise HTTPError(422, "the segment's run_id is not the run id in the URL")
    problem = segment_problem(segment)
    if problem is not None:
        raise HTTPError(422, f"invalid segment: {problem}")
    if stored is None:
        return True
    if stored == segment:
        return False
    raise HTTPError(409, f"segment {seq} of run {run_id} is stored already with other content: segments are immutable")


def may_write_model(principal: Principal, request: dict[str, Any], protected: tuple[str, ...]) -> None:
    """403 unless ``principal`` may write this model event: ``write`` for all, ``admin`` to move or
    delete a protected alias."""
    if not principal.allows("write"):
        raise HTTPError(403, f"token {principal.name!r} has the {principal.scope} scope: it cannot write")
    alias = request.get("alias")
    if request.get("action") in ("set_alias", "delete_alias") and alias in protected and not principal.allows("admin"):
        raise HTTPError(403, f"alias {alias!r} is protected on this server: moving or deleting it needs an admin "
                             f"token (token {principal.name!r} has the {principal.scope} scope)")
