"""The model registry's files in a file store (docs/format.md, "Model registry").

Layout under the store's root, beside ``runs/`` and ``artifacts/``::

    models/<name>/events/<seq // 1000:06d>/<seq:09d>.json   one immutable event each
    models/<name>/snapshots/<upto:09d>.json                 the state after every event below upto

The log is append-only without appending: each event is a new object, created only if its name is
free (``create``), so two writers on two machines can never both take one number and neither
event is lost: the loser sees the name taken and tries the next (``_registry_store.commit``).
What makes a create conditional depends on the filesystem:

* a local disk: the whole event is written to a temporary file, then hard-linked to its name
  (``link`` fails if the name exists), so readers never see half an event; where hard links are
  refused, ``O_CREAT | O_EXCL``;
* S3 (s3fs): a PUT with ``If-None-Match: *`` (``pipe_file(mode="create")``), which S3 applies
  atomically since 2024;
* ``memory://`` (one process): a check and a write under one lock;
* any other fsspec filesystem: its ``pipe_file(mode="create")`` after a check that the name is
  free, then the object is read back: only another writer at the very same moment can slip
  between (docs/format.md says what holds there).

Events are partitioned by thousands, so that no listing a reader makes grows past 1,000 names
however long the log, and snapshots of the replayed state are written every 1,000 events, so
resolving ``name@alias`` reads one snapshot and the few events after it.
"""

from __future__ import annotations

import errno
import os
import uuid
from typing import Any

from autotrack import _forksafe
from autotrack._registry_state import PARTITION, check_name, event_file, state_from_doc
from autotrack.backends._codec import dumps, loads

__all__ = ["MODELS_DIR", "list_models", "append_event", "read_events", "latest_snapshot", "put_snapshot", "create"]

MODELS_DIR = "models"
_memory_lock = _forksafe.lock()  # memory:// lives in one process: a lock makes check-and-write one step
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def list_models(store: Any) -> list[str]:
    """The names of the folders of ``models/`` that are valid model names, sorted."""
    from autotrack._registry_state import NAME

    try:
        entries = store._entries(store._p(MODELS_DIR))
    except NotADirectoryError:
        return []
    return sorted(name for name, _path, kind in entries if kind == "dir" and NAME.fullmatch(name))


# -- conditional create -------------------------------------------------------------------------
def create(store: Any, path: str, data: bytes) -> bool:
    """Write ``data`` at ``path`` only if nothing is there: True if written, False if taken."""
    if store.local:
        return _create_local(path, data)
    fs = store.fs
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "memory" in protocols:
        with _memory_lock:
            if fs.exists(path):
                return False
            fs.pipe_file(path, data)
            return True
    if store._exists(path):
        return False
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    except TypeError:  # an fsspec implementation older than mode=: a plain write after the check
        fs.pipe_file(path, data)
    if "s3" in protocols or "s3a" in protocols:
        return True  # If-None-Match: S3 refused the PUT if the name was taken
    try:  # no atomic create known here: a writer that overwrote us in the meantime wins
        fs.invalidate_cache(path)
        return bytes(fs.cat_file(path)) == data
    except FileNotFoundError:
        return False


def _create_local(path: str, data: bytes) -> bool:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # atomic, and refuses an existing name: no reader sees half an event
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
        try:  # a filesystem without hard links: exclusive create, then the bytes
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# -- events -------------------------------------------------------------------------------------
def append_event(store: Any, name: str, seq: int, event: dict[str, Any]) -> bool:
    """Store event ``seq`` of model ``name`` if that number is free (False: another event has it)."""
    if type(seq) is not int or not 0 <= seq < 10**9:
        raise ValueError(f"invalid event number {seq!r}")
    return create(store, store._p(event_file(f"{MODELS_DIR}/{check_name(name)}", seq)), dumps(event))


def _parsed(raw: Any, seq: int, file: str) -> dict[str, Any]:
    from autotrack.backends import _markers as _m

    if type(raw) is not bytes:
        return {"seq": seq, "corrupt": {"file": file, "reason": _m.os_reason(raw)}}
    try:
        event = loads(raw)
    except (ValueError, RecursionError):
        event = _m.parse(raw)
    if type(event) is dict:
        if event.get("seq") == seq and type(event.get("seq")) is int:
            return event
        return {"seq": seq, "corrupt": {"file": file, "reason": f"seq {event.get('seq')!r} is not the number in its "
                                                                f"file name ({seq})"}}
    reason = event.reason if isinstance(event, _m._Unparsed) else "not a JSON object"
    return {"seq": seq, "corrupt": {"file": file, "reason": reason}}


def read_events(store: Any, name: str, start: int = 0, seqs: list[int] | None = None) -> list[dict[str, Any]]:
    """Events of ``name`` with ``seq >= start`` in order (or exactly those in ``seqs``, absent ones
    left out); a file that cannot be read or parsed as a marker ``{"seq", "corrupt": {"file",
    "reason"}}``. No model: no events."""
    where = f"{MODELS_DIR}/{check_name(name)}"
    if seqs is not None:
        found = [(s, event_file(where, s)) for s in sorted(set(seqs)) if type(s) is int and 0 <= s < 10**9]
        raws = store._cat_each([store._p(f) for _, f in found])
        return [_parsed(raw, s, f) for (s, f), raw in zip(found, raws) if not isinstance(raw, FileNotFoundError)]
    folder = store._p(where, "events")
    try:
        partitions = sorted(int(n) for n, _, kind in store._entries(folder)
                            if kind == "dir" and len(n) == 6 and n.isdigit() and n.isascii())
    except OSError:
        return []
    found = []
    for part in partitions:
        if (part + 1) * PARTITION <= start:
            continue
        try:
            entries = store._entries(f"{folder}/{part:06d}")
        except OSError:
            continue
        for entry, _path, kind in entries:
            stem = entry[:-5]
            if entry.endswith(".json") and len(stem) == 9 and stem.isdigit() and stem.isascii() and int(stem) >= start:
                found.append((int(stem), kind))
    found.sort()
    files = [(s, event_file(where, s)) for s, _ in found]
    readable = [(s, f) for (s, f), (_, kind) in zip(files, found) if kind == "file"]
    raws = dict(zip((s for s, _ in readable), store._cat_each([store._p(f) for _, f in readable])))
    out = []
    for (seq, file), (_, kind) in zip(files, found):
        if kind != "file":
            out.append({"seq": seq, "corrupt": {"file": file, "reason": "a directory, not a file" if kind == "dir"
                                                else kind}})
        else:
            out.append(_parsed(raws.get(seq), seq, file))
    return out


# -- snapshots ----------------------------------------------------------------------------------
def latest_snapshot(store: Any, name: str) -> dict[str, Any] | None:
    """The newest snapshot that holds a valid state (a damaged one is passed over), or None."""
    folder = store._p(MODELS_DIR, check_name(name), "snapshots")
    try:
        names = sorted((n for n, _, kind in store._entries(folder)
                        if kind == "file" and n.endswith(".json") and n[:-5].isdigit() and n[:-5].isascii()),
                       reverse=True)
    except OSError:
        return None
    for entry in names[:3]:
        (raw,) = store._cat_each([f"{folder}/{entry}"])
        try:
            doc = loads(raw) if type(raw) is bytes else None
        except (ValueError, RecursionError):
            doc = None
        state = state_from_doc(doc, name)
        if state is not None and state["upto"] == int(entry[:-5]):
            return doc
    return None


def put_snapshot(store: Any, name: str, doc: dict[str, Any]) -> None:
    """Write a snapshot (a state as JSON, ``_registry_state.state_doc``). Its content follows from
    the events below ``upto`` alone, so two writers racing write the same bytes."""
    upto = doc["upto"]
    if type(upto) is not int or not 0 < upto < 10**9:
        raise ValueError(f"invalid snapshot position {upto!r}")
    store._write(store._p(MODELS_DIR, check_name(name), "snapshots", f"{upto:09d}.json"), dumps(doc))
