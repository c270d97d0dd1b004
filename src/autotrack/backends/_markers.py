"""What the file store hands back in place of a file it cannot use (docs/format.md, "Validation").

A run document or segment that cannot be read (a directory, a link loop, no permission) or
parsed (empty, cut short, garbage, not a JSON object) is never dropped and never raised: the
store returns a *marker* in its place, ``{"id": <folder>, "corrupt": {"file", "reason"}}`` for a
run document and ``{"seq": <n>, "corrupt": {...}}`` for a segment, and the reader lists the run
as corrupt, or skips the segment, saying which file and why. Kept apart from ``file.py`` so the
store itself stays about storing; the reasons are words for a user, never a store path.
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any

from autotrack.backends.file import loads

__all__ = ["parse", "unparsed_reason", "corrupt_run", "run_doc_marker", "os_reason", "link_problem"]


class _Unparsed:
    """What ``parse`` gives for bytes that are not JSON: why, for the marker."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def parse(raw: bytes) -> Any:
    """A stored document, or ``_Unparsed`` when it is not valid JSON (empty, cut short, garbage)."""
    if not raw.strip():
        return _Unparsed("empty file" if not raw else "blank file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Unparsed(f"not valid JSON (not UTF-8 text: byte 0x{raw[exc.start]:02x} at {exc.start})")
    try:
        return loads(text)
    except (ValueError, RecursionError) as exc:
        return _Unparsed(f"not valid JSON ({str(exc)[:120]})")


def unparsed_reason(doc: Any) -> str:
    """Why a parsed document is unusable on its face: not JSON, or not a JSON object."""
    if isinstance(doc, _Unparsed):
        return doc.reason
    from autotrack._schema import run_doc_problem

    return run_doc_problem(doc) or "not a JSON object"


def corrupt_run(name: str, file: str, reason: str) -> dict[str, Any]:
    return {"id": name, "corrupt": {"file": file, "reason": reason}}


def run_doc_marker(name: str, doc: Any) -> dict[str, Any]:
    """The marker for runs/<name>/run.json that is not a JSON object with ``"id": <name>``. A
    document naming another run (a folder copied whole) keeps its fields under the folder's id,
    so the copy is listed, as corrupt, and never shadows the run it came from."""
    file = f"runs/{name}/run.json"
    if type(doc) is not dict:
        return corrupt_run(name, file, unparsed_reason(doc))
    if "id" not in doc:
        return dict(doc, id=name, corrupt={"file": file, "reason": "id is missing"})
    shown = json.dumps(doc["id"], ensure_ascii=False, default=str)[:80]
    return dict(doc, id=name, corrupt={"file": file, "reason": f"id {shown} is not the name of its folder"})


def os_reason(exc: Any) -> str:
    """An error reading a file, as words for a user."""
    if isinstance(exc, IsADirectoryError):
        return "a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"unreadable ({type(exc).__name__}: {str(exc)[:120]})"


def link_problem(path: str) -> str:
    """``"file"`` for a link that resolves (to something not a folder), else why it does not."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "a symbolic link to nothing"
    except OSError as exc:
        return os_reason(exc)
    return "file"
