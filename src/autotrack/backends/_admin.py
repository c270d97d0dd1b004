"""What a server needs of a file store beyond the Backend protocol: one run's document or one
segment, deleting a run, and the server's own small documents (tokens, the audit log).

The server's documents live under ``_server/`` at the store's root, beside ``runs/`` and
``artifacts/``; readers of runs never look there (docs/format.md)::

    _server/tokens/<token_id>.json             one access token (hashed), see server/_auth.py
    _server/audit/<YYYY-MM-DD>/<time>-<id>.json  one audit event each: never rewritten
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from autotrack.backends._codec import dumps, loads

__all__ = ["read_run", "read_segment", "segment_exists", "delete_run", "put_doc", "get_doc", "list_docs",
           "SERVER_DIR"]

SERVER_DIR = "_server"


def _read(store: Any, path: str) -> bytes | None:
    if store.local:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
    try:
        store.fs.invalidate_cache(path)
    except Exception:  # noqa: BLE001 - not every filesystem caches
        pass
    try:
        return store.fs.cat_file(path)
    except FileNotFoundError:
        return None


def read_run(store: Any, run_id: str) -> Any:
    """The parsed ``run.json`` of one run; None when there is none. Raises ValueError when it
    cannot be parsed."""
    raw = _read(store, store._run_dir(run_id) + "/run.json")
    return None if raw is None else loads(raw)


def segment_exists(store: Any, run_id: str, seq: int) -> bool:
    return store._exists(f"{store._run_dir(run_id)}/events/{seq:08d}.json")


def read_segment(store: Any, run_id: str, seq: int) -> Any:
    raw = _read(store, f"{store._run_dir(run_id)}/events/{seq:08d}.json")
    return None if raw is None else loads(raw)


def delete_run(store: Any, run_id: str) -> None:
    """Remove a run's folder (its artifacts' references are the caller's to release first)."""
    folder = store._run_dir(run_id)
    if store.local:
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        return
    try:
        store.fs.rm(folder, recursive=True)
    except FileNotFoundError:
        pass


def _doc_path(store: Any, *parts: str) -> str:
    for part in parts:
        if not part or part.startswith(".") or "/" in part or "\\" in part:
            raise ValueError(f"invalid name {part!r}")
    return store._p(SERVER_DIR, *parts)


def put_doc(store: Any, *parts: str, doc: dict[str, Any]) -> None:
    store._write(_doc_path(store, *parts), dumps(doc))


def get_doc(store: Any, *parts: str) -> Any:
    raw = _read(store, _doc_path(store, *parts))
    return None if raw is None else loads(raw)


def list_docs(store: Any, *parts: str) -> list[str]:
    """Names of the documents in a folder of ``_server/`` (none when it does not exist)."""
    folder = _doc_path(store, *parts)
    try:
        return sorted(name for name, _path, kind in store._entries(folder) if kind == "file")
    except NotADirectoryError:
        return []
