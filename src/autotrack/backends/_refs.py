"""Reference records: which runs use which stored bytes, so that one run never frees another's.

Artifacts are content-addressed: two runs that log identical bytes (a deterministic re-run, the
same checkpoint fitted twice) share one stored copy. A run that lets go of an artifact (a
checkpoint rotated out) may free the bytes only when no run references them any more. Each
(content, run) pair is one empty object, so concurrent writers never rewrite a shared file::

    refs/<sha256[:2]>/<sha256>/<run_id>      run <run_id> references these bytes
    refs/<sha256[:2]>/<sha256>/_untracked    bytes stored before reference records existed: kept
    refs/<sha256[:2]>/<sha256>/_model~<name>~<version>   a registered model version: kept for good
    trash/<sha256>.<random>                  bytes being freed (see below)

Storing: the reference is written *before* the bytes are looked for or copied. Freeing (by a
run, for its own reference only): delete the run's reference; if others remain, stop. Else move
the bytes to ``trash/``, list the references again, and if one appeared meanwhile (another
writer stored the same content), move the bytes back; only then delete them. Every interleaving
with a concurrent writer keeps the bytes: a writer that saw them present wrote its reference
first, so the second listing sees it; a writer that did not see them uploads them itself. This
needs only what S3 gives since 2020: a listing that shows every object written before it
began. A process dying between the two moves leaves the bytes in ``trash/``, where reads still
find them (``open_trashed``); they are never deleted while a reference exists.
"""

from __future__ import annotations

import os
import uuid
from typing import IO, Any

__all__ = ["add_ref", "release", "open_trashed", "UNTRACKED", "pin_name", "add_pin", "remove_pin"]

UNTRACKED = "_untracked"
PIN_PREFIX = "_model~"  # "~" is in no run id, and "_" starts none: a pin never collides with a run


def _refs_dir(store: Any, sha: str) -> str:
    store._artifact_path(sha)  # validates the sha256
    return store._p("refs", sha[:2], sha)


def _names(store: Any, folder: str) -> list[str]:
    if store.local:
        try:
            return [n for n in os.listdir(folder) if not n.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []
    fs = store.fs
    try:
        fs.invalidate_cache(folder)
    except Exception:  # noqa: BLE001 - not every filesystem caches
        pass
    try:
        entries = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    names = [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]
    return [n for n in names if n and not n.startswith(".")]


def _touch(store: Any, path: str) -> None:
    store._write(path, b"")


def _remove(store: Any, path: str) -> None:
    if store.local:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    try:
        store.fs.rm_file(path)
    except FileNotFoundError:
        pass


def _move(store: Any, src: str, dst: str) -> bool:
    """Rename ``src`` to ``dst``; False when ``src`` is not there."""
    if store.local:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.replace(src, dst)
            return True
        except FileNotFoundError:
            return False
    try:
        store.fs.mv(src, dst)
        return True
    except FileNotFoundError:
        return False


def add_ref(store: Any, run_id: str, sha: str) -> None:
    """Record that ``run_id`` uses the bytes ``sha`` (before storing or looking for them)."""
    folder = _refs_dir(store, sha)
    store._run_dir(run_id)  # validates the run id
    before = _names(store, folder)
    _touch(store, f"{folder}/{run_id}")
    if not before and store._exists(store._artifact_path(sha)):
        # bytes without references: stored by an older autotrack for runs we cannot name. Kept.
        _touch(store, f"{folder}/{UNTRACKED}")


def pin_name(model: str, version: int) -> str:
    """The reference a registered model version holds on its artifact's bytes."""
    from autotrack._registry_state import check_name

    if type(version) is not int or version < 1:
        raise ValueError(f"invalid model version {version!r}")
    return f"{PIN_PREFIX}{check_name(model)}~{version}"


def add_pin(store: Any, model: str, version: int, sha: str) -> None:
    """Pin the bytes ``sha`` for a model version, before its register event is written: a
    registered version's bytes are never freed, whatever happens to the run that logged them
    (a checkpoint rotated out, the run deleted). ``release`` counts a pin as any reference."""
    _touch(store, f"{_refs_dir(store, sha)}/{pin_name(model, version)}")


def remove_pin(store: Any, model: str, version: int, sha: str) -> None:
    """Drop a pin whose register event was never written (the bytes were missing, or the version
    number went to another writer's event for other bytes)."""
    _remove(store, f"{_refs_dir(store, sha)}/{pin_name(model, version)}")


def release(store: Any, run_id: str, sha: str) -> bool:
    """Drop ``run_id``'s reference; free the bytes if no reference is left. True if freed."""
    folder = _refs_dir(store, sha)
    store._run_dir(run_id)
    _remove(store, f"{folder}/{run_id}")
    if _names(store, folder):
        return False
    dest = store._artifact_path(sha)
    trash = store._p("trash", f"{sha}.{uuid.uuid4().hex}")
    if not _move(store, dest, trash):
        return False  # not there (never stored, or freed already)
    if _names(store, folder):  # another run stored the same content meanwhile: it stays
        _move(store, trash, dest)
        return False
    _remove(store, trash)
    return True


def open_trashed(store: Any, sha: str) -> IO[bytes] | None:
    """The bytes of ``sha`` left in ``trash/`` by a process that died while freeing them."""
    store._artifact_path(sha)
    folder = store._p("trash")
    for name in sorted(_names(store, folder)):
        if name.split(".", 1)[0] == sha:
            path = f"{folder}/{name}"
            try:
                return open(path, "rb") if store.local else store.fs.open(path, "rb")
            except FileNotFoundError:
                continue
    return None
