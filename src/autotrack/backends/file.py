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

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from typing import IO, Any

from autotrack._errors import BackendUnavailableError, ConfigError
from autotrack._gc import paused_gc

try:  # ~10x faster than json for segments (docs/benchmarks.md); the json module is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - a platform without an orjson wheel
    _orjson = None  # type: ignore[assignment]

__all__ = ["FileStore", "check_protocol", "dumps", "loads", "sha256_file"]

_CHUNK = 4 * 1024 * 1024
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TMP_PREFIX = ".tmp-"

_INSTALL_HINTS = {
    "s3": "s3fs (pip install 'autotrack[s3]')",
    "s3a": "s3fs (pip install 'autotrack[s3]')",
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


def dumps(obj: Any) -> bytes:
    """Compact strict JSON as UTF-8 bytes: orjson when installed, else the json module.

    The run writer encodes non-finite floats itself (``"NaN"`` strings); json would refuse one
    that slipped through, orjson writes it as ``null``. What orjson cannot encode (an int beyond
    64 bits, a float subclass, ...) goes through json, so both give the same document.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_NON_STR_KEYS)
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse a stored document: orjson when installed, else (or where orjson differs) json.

    json parses what orjson refuses (a NaN token written by another tool) and keeps integers
    beyond 64 bits exact, which orjson turns into floats. Such an integer has at least 19 digits
    in a row, and so does nothing else the writer produces (a float's repr has at most 17), so
    one C-speed search of the bytes decides: listing 10,000 run documents must not walk each
    parsed document in Python. Invalid JSON raises ValueError either way.
    """
    if _orjson is not None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):  # ~10x faster than a regex
            try:
                return _orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError
                pass
    return json.loads(data)


_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))  # every digit -> "0", the rest " "
_NINETEEN_DIGITS = b"0" * 19  # 2**63 has 19 digits


def sha256_file(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class FileStore:
    """A :class:`~autotrack.backends.base.Backend` over one fsspec filesystem."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._fs: Any = None
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
        if self.local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f"{_TMP_PREFIX}{uuid.uuid4().hex}")
            try:
                with open(tmp, "wb") as fh:
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

    def put_artifact(self, path: str) -> tuple[str, int]:
        sha, size = sha256_file(path)
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

    def delete_artifact(self, sha256: str) -> None:
        """Optional part of the protocol: remove stored bytes (missing content is not an error)."""
        path = self._artifact_path(sha256)
        if self.local:
            _unlink(path)
        else:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass

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
        if self.local:
            try:
                return sorted(os.path.join(path, n) for n in os.listdir(path) if not n.startswith("."))
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            self.fs.invalidate_cache(path)
        except Exception:  # noqa: BLE001
            pass
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            name = name.rstrip("/")
            if not name.rsplit("/", 1)[-1].startswith("."):
                out.append(name)
        return sorted(out)

    def _cat_many(self, paths: list[str]) -> list[bytes]:
        if not paths:
            return []
        if self.local:
            out = []
            for path in paths:
                try:
                    with open(path, "rb") as fh:
                        out.append(fh.read())
                except FileNotFoundError:
                    continue
            return out
        found = self.fs.cat(paths, on_error="omit")
        return [found[p] for p in paths if p in found]

    def list_runs(self) -> list[dict[str, Any]]:
        run_dirs = self._ls(self._p("runs"))
        docs = []
        with paused_gc():
            for raw in self._cat_many([f"{d}/run.json" for d in run_dirs]):
                try:
                    docs.append(loads(raw))
                except ValueError:
                    continue  # a run.json being created on a store without atomic writes
        return docs

    def read_segments(self, run_id: str) -> list[dict[str, Any]]:
        paths = [p for p in self._ls(self._run_dir(run_id) + "/events") if p.endswith(".json")]
        return [loads(raw) for raw in self._cat_many(paths)]

    def open_artifact(self, sha256: str) -> IO[bytes]:
        path = self._artifact_path(sha256)
        if self.local:
            return open(path, "rb")
        self.fs.invalidate_cache(path)  # a listing cached in this process may predate the artifact
        return self.fs.open(path, "rb")


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
