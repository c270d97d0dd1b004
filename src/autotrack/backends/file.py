"""The file store: runs as plain JSON files on anything fsspec reaches (disk, memory, S3, GCS...).

Layout under the root (see docs/format.md)::

    runs/<run_id>/run.json                 identity, status, heartbeat (replaced atomically)
    runs/<run_id>/events/<seq:08d>.json    immutable event segments, in order
    artifacts/<sha[:2]>/<sha256>           content-addressed bytes, one copy per content

Object stores cannot append, so nothing is ever appended: a flush writes a new segment. On a
local disk every write goes to a temporary name first and is renamed into place, so a reader or
a crash never sees half a file; object stores make a PUT atomic by themselves.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import uuid
from typing import IO, Any

from autotrack._errors import BackendUnavailableError, ConfigError
from autotrack._gc import paused_gc
from autotrack.backends._codec import dumps, loads, sha256_file
from autotrack.backends._refs import add_pin, add_ref, open_trashed, release, remove_pin


__all__ = ["FileStore", "check_protocol", "dumps", "loads", "sha256_file"]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TMP_PREFIX = ".tmp-"
# a temporary file's name: the process, a token of this process (another host's pid may be the
# same on a shared folder) and a counter, instead of a uuid4 per write (a system call)
_TMP_TOKEN = uuid.uuid4().hex[:12]
_tmp_numbers = itertools.count()
_MADE_MAX = 4096  # folders known to exist, per store; forgotten past this many

_INSTALL_HINTS = {
    "s3": "s3fs (pip install 'autotrack-ml[s3]')",
    "s3a": "s3fs (pip install 'autotrack-ml[s3]')",
    "gs": "gcsfs (pip install gcsfs)",
    "gcs": "gcsfs (pip install gcsfs)",
    "az": "adlfs (pip install adlfs)",
    "abfs": "adlfs (pip install adlfs)",
    "abfss": "adlfs (pip install adlfs)",
}


def check_protocol(scheme: str) -> None:
    """Turn fsspec's unknown-protocol / missing-package errors into one clear line."""
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        need = _INSTALL_HINTS.get(scheme, str(exc).strip() or "an extra package")
        raise BackendUnavailableError(f"{scheme}:// needs {need}") from None
    except ValueError:
        raise ConfigError(
            f"unknown URI scheme {scheme}://: no autotrack backend is registered for it and fsspec "
            "cannot open it (install a package that provides it)"
        ) from None


class FileStore:
    """A :class:`~autotrack.backends.base.Backend` over one fsspec filesystem."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._fs: Any = None
        self._made: set[str] = set()  # local folders this process made or found
        path = _plain_local_path(uri)
        if path is not None:  # fsspec (~100-150 ms to import) is not needed for a local folder
            self.local, root = True, path
        else:
            import fsspec
            from fsspec.implementations.local import LocalFileSystem

            self._fs, root = fsspec.core.url_to_fs(uri)
            self.local = isinstance(self._fs, LocalFileSystem)
        if self.local:
            root = os.path.abspath(os.path.expanduser(root))
        self.root = root.rstrip("/") or "/"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made on first use for a local folder, which needs none)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem("file")
        return self._fs

    @fs.setter
    def fs(self, value: Any) -> None:
        self._fs = value

    # -- paths ---------------------------------------------------------------------------
    def _p(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _run_dir(self, run_id: str) -> str:
        if not _RUN_ID.fullmatch(run_id or ""):  # no traversal, no glob characters for fs.cat
            raise ValueError(f"invalid run id {run_id!r}")
        return self._p("runs", run_id)

    def _artifact_path(self, sha256: str) -> str:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"invalid sha256 {sha256!r}")
        return self._p("artifacts", sha256[:2], sha256)

    # -- writes --------------------------------------------------------------------------
    def _write(self, path: str, data: bytes) -> None:
        """Four system calls on a local disk (open, write, close, rename) once the folder is known:
        each one lets the training thread's GIL go to the writer threads of other runs."""
        if self.local:
            folder = os.path.dirname(path)
            if folder not in self._made:
                os.makedirs(folder, exist_ok=True)
                if len(self._made) >= _MADE_MAX:
                    self._made.clear()
                self._made.add(folder)
            tmp = os.path.join(folder, f"{_TMP_PREFIX}{os.getpid()}-{_TMP_TOKEN}-{next(_tmp_numbers)}")
            try:
                try:
                    fh = open(tmp, "wb")
                except FileNotFoundError:  # the folder went since it was made (a run deleted meanwhile)
                    os.makedirs(folder, exist_ok=True)
                    fh = open(tmp, "wb")
                with fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)
                raise
        else:
            self.fs.pipe_file(path, data)

    def create_run(self, doc: dict[str, Any]) -> None:
        self._write(self._run_dir(doc["id"]) + "/run.json", dumps(doc))

    def update_run(self, run_id: str, doc: dict[str, Any]) -> None:
        self._write(self._run_dir(run_id) + "/run.json", dumps(doc))

    def append(self, run_id: str, seq: int, segment: dict[str, Any]) -> None:
        self._write(f"{self._run_dir(run_id)}/events/{seq:08d}.json", dumps(segment))

    def put_artifact(self, path: str, run_id: str | None = None) -> tuple[str, int]:
        """Store a file by content; with ``run_id``, record first that the run references it."""
        sha, size = sha256_file(path)
        if run_id is not None:
            add_ref(self, run_id, sha)
        dest = self._artifact_path(sha)
        if self._exists(dest):
            return sha, size
        if self.local:
            folder = os.path.dirname(dest)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
            os.close(fd)
            try:
                shutil.copyfile(path, tmp)  # the kernel copies (sendfile / copy_file_range): no bytes through Python
                os.replace(tmp, dest)
            except BaseException:
                _unlink(tmp)
                raise
        else:
            self.fs.put_file(path, dest)
        return sha, size

    def add_ref(self, run_id: str, sha256: str) -> None:
        """Record that ``run_id`` references the bytes ``sha256`` (see ``_refs``)."""
        add_ref(self, run_id, sha256)

    def release_artifact(self, run_id: str, sha256: str) -> bool:
        """Optional part of the protocol: drop the run's reference; the bytes are freed (True)
        only when no run references them any more."""
        return release(self, run_id, sha256)

    # -- the model registry (optional part of the protocol; backends/_models.py) -------------
    def list_models(self) -> list[str]:
        from autotrack.backends import _models  # imported on first use: writers of runs never need it

        return _models.list_models(self)

    def read_model_events(self, name: str, start: int = 0, seqs: list[int] | None = None) -> list[dict[str, Any]]:
        from autotrack.backends import _models

        return _models.read_events(self, name, start, seqs)

    def model_snapshot(self, name: str) -> dict[str, Any] | None:
        from autotrack.backends import _models

        return _models.latest_snapshot(self, name)

    def append_model_event(self, name: str, seq: int, event: dict[str, Any]) -> bool:
        """Create event ``seq`` only if that number is free: False when another writer has it."""
        from autotrack.backends import _models

        return _models.append_event(self, name, seq, event)

    def put_model_snapshot(self, name: str, snapshot: dict[str, Any]) -> None:
        from autotrack.backends import _models

        _models.put_snapshot(self, name, snapshot)

    def pin_model_artifact(self, name: str, version: int, sha256: str, pinned: bool = True) -> None:
        """Pin (or, ``pinned=False``, unpin) the bytes of a model version (``_refs``)."""
        (add_pin if pinned else remove_pin)(self, name, version, sha256)

    def _exists(self, path: str) -> bool:
        if self.local:
            return os.path.exists(path)
        try:
            self.fs.invalidate_cache(path)
        except Exception:  # noqa: BLE001 - not every filesystem caches
            pass
        return bool(self.fs.exists(path))

    # -- reads ---------------------------------------------------------------------------
    def _ls(self, path: str) -> list[str]:
        """Full paths of a folder's entries but dot-files, sorted; none when missing or a file."""
        try:
            return sorted(full for _, full, _ in self._entries(path))
        except NotADirectoryError:
            return []

    def _cat_many(self, paths: list[str]) -> list[bytes]:
        """The bytes of each of ``paths`` that could be read, in order."""
        return [raw for raw in self._cat_each(paths) if type(raw) is bytes]

    # A file that cannot be read or parsed is never dropped and never raised: it comes back as a
    # marker in its place (docs/format.md, "Validation"), ``{"id": <folder>, "corrupt": {"file",
    # "reason"}}`` for a run document, ``{"seq": <n>, "corrupt": {...}}`` for a segment, so the
    # reader lists the run as corrupt, or skips the segment, and says which file and why.
    def _entries(self, path: str) -> list[tuple[str, str, str]]:
        """``(name, path, kind)`` of each entry of a folder but dot-files; kind is ``"dir"``,
        ``"file"``, or why the entry cannot be followed (a link looping or to nothing). A missing
        folder has none; one that cannot be listed raises OSError (NotADirectoryError: a file)."""
        from autotrack.backends import _markers as _m

        out = []
        if self.local:
            try:
                with os.scandir(path) as found:
                    for entry in found:
                        if entry.name[0] == ".":
                            continue
                        try:
                            is_dir = entry.is_dir()  # follows a link; no stat for a plain entry (d_type)
                        except OSError:  # a link loop
                            is_dir = False
                        if is_dir:
                            kind = "dir"
                        else:
                            kind = _m.link_problem(entry.path) if entry.is_symlink() else "file"
                        out.append((entry.name, entry.path, kind))
            except FileNotFoundError:
                return []
            return out
        try:
            self.fs.invalidate_cache(path)
        except Exception:  # noqa: BLE001 - not every filesystem caches
            pass
        try:
            infos = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        path = path.rstrip("/")
        for info in infos:
            full = info["name"].rstrip("/")
            if full == path and info.get("type") != "directory":  # fsspec lists a file as itself
                raise NotADirectoryError(f"{path} is a file")
            name = full.rsplit("/", 1)[-1]
            if name and name[0] != ".":
                out.append((name, full, "dir" if info.get("type") == "directory" else "file"))
        return out

    def _cat_each(self, paths: list[str]) -> list[Any]:
        """The bytes of each file, or the exception that reading it raised, in order."""
        if self.local:
            out: list[Any] = []
            for path in paths:
                try:
                    with open(path, "rb") as fh:
                        out.append(fh.read())
                except OSError as exc:
                    out.append(exc)
            return out
        if not paths:
            return []
        try:
            found = self.fs.cat(paths, on_error="return")
        except FileNotFoundError:  # fsspec raises when none of them exists
            found = {}
        return [found[p] if p in found else FileNotFoundError(p) for p in paths]

    def list_runs(self) -> list[dict[str, Any]]:
        from autotrack.backends import _markers as _m

        try:
            entries = self._entries(self._p("runs"))
        except NotADirectoryError:
            return []
        docs: list[dict[str, Any]] = []
        folders = []
        for name, path, kind in entries:
            if not _RUN_ID.fullmatch(name):
                continue  # no writer makes such a folder (runs/README, a backup copy...): not a run
            if kind == "dir":
                folders.append((name, path))
            elif kind != "file":
                docs.append(_m.corrupt_run(name, f"runs/{name}", kind))
        with paused_gc():
            for (name, path), raw in zip(folders, self._cat_each([f"{path}/run.json" for _, path in folders])):
                if type(raw) is bytes:
                    try:
                        doc = loads(raw)
                    except (ValueError, RecursionError):
                        doc = _m.parse(raw)  # again, for the reason (a rare file)
                    if type(doc) is dict and doc.get("id") == name:
                        docs.append(doc)
                    else:
                        docs.append(_m.run_doc_marker(name, doc))
                elif isinstance(raw, FileNotFoundError):
                    missing = self._missing_run_doc(name, path)
                    if missing is not None:
                        docs.append(missing)
                else:
                    docs.append(_m.corrupt_run(name, f"runs/{name}/run.json", _m.os_reason(raw)))
        return docs

    def _missing_run_doc(self, name: str, path: str) -> dict[str, Any] | None:
        """A run folder without a readable run.json: a marker if it holds events (or a run.json
        that is a folder, on an object store), else None (a run being created, or an empty folder)."""
        from autotrack.backends import _markers as _m

        try:
            kinds = {entry: kind for entry, _, kind in self._entries(path)}
        except OSError as exc:
            return _m.corrupt_run(name, f"runs/{name}", _m.os_reason(exc))
        if "run.json" in kinds:
            reason = "a directory, not a file" if kinds["run.json"] == "dir" else kinds["run.json"]
            return _m.corrupt_run(name, f"runs/{name}/run.json", reason)
        if "events" in kinds:
            return _m.corrupt_run(name, f"runs/{name}/run.json", "missing: the folder has events but no run.json")
        return None

    def read_segments(self, run_id: str) -> list[dict[str, Any]]:
        from autotrack.backends import _markers as _m

        folder = self._run_dir(run_id) + "/events"
        where = f"runs/{run_id}/events"
        try:
            entries = self._entries(folder)
        except OSError as exc:
            return [{"seq": None, "corrupt": {"file": where, "reason": _m.os_reason(exc)}}]
        found = []
        for name, path, kind in entries:
            stem = name[:-5]
            if name.endswith(".json") and stem.isdigit() and stem.isascii():
                found.append((int(stem), name, path, kind))
        found.sort()
        readable = [item for item in found if item[3] == "file"]
        data = dict(zip((item[1] for item in readable), self._cat_each([item[2] for item in readable])))
        segments: list[dict[str, Any]] = []
        for seq, name, _path, kind in found:
            raw = data.get(name)
            if kind != "file":
                reason = "a directory, not a file" if kind == "dir" else kind
            elif type(raw) is not bytes:
                reason = _m.os_reason(raw)
            else:
                try:
                    segment = loads(raw)
                except (ValueError, RecursionError):
                    segment = _m.parse(raw)  # again, for the reason (a rare file)
                if type(segment) is dict:
                    segments.append(segment)
                    continue
                reason = _m.unparsed_reason(segment)
            segments.append({"seq": seq, "corrupt": {"file": f"{where}/{name}", "reason": reason}})
        return segments

    def open_artifact(self, sha256: str) -> IO[bytes]:
        path = self._artifact_path(sha256)
        try:
            if self.local:
                return open(path, "rb")
            self.fs.invalidate_cache(path)  # a listing cached in this process may predate the artifact
            return self.fs.open(path, "rb")
        except FileNotFoundError:
            trashed = open_trashed(self, sha256)  # a process died while freeing them
            if trashed is None:
                raise
            return trashed


def _plain_local_path(uri: str) -> str | None:
    """The path of a plain local URI (``/a/b``, ``./runs``, ``file:///a/b``); None when fsspec
    must interpret it (another protocol, a chained ``a::b`` URL)."""
    if "::" in uri:
        return None
    if uri[:7].lower() == "file://":
        return uri[7:] or None
    return None if "://" in uri else uri


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
