"""``ArtifactRecord``: a stored file of a run, read back exactly as recorded (or a clear error).

Kept apart from ``_records`` (which re-exports it) so each stays small: this is the byte side of
reading, the sha256 check as the bytes stream and what to say when they are gone.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO, Any, Iterator

from autotrack._errors import ArtifactNotFoundError, IntegrityError
from autotrack.backends.base import Backend

__all__ = ["ArtifactRecord"]


class _VerifyingReader:
    """Streams stored bytes and raises IntegrityError at the end if they do not hash as recorded."""

    def __init__(self, raw: IO[bytes], sha256: str, name: str) -> None:
        self._raw, self._sha, self._name = raw, sha256, name
        self._digest = hashlib.sha256()
        self._checked = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        if (not data or size is None or size < 0) and not self._checked:
            self._checked = True
            if self._digest.hexdigest() != self._sha:
                raise IntegrityError(f"artifact {self._name!r}: stored bytes do not match sha256 {self._sha}")
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 20):
            yield chunk

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "_VerifyingReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class ArtifactRecord:
    """A stored file: ``open()`` and ``download()`` give back exactly the recorded bytes.

    Bytes can be gone for two reasons, and each gets an ``ArtifactNotFoundError`` that says which
    artifact of which run, never a store path: the writer *released* them (a checkpoint rotated
    out: ``metadata`` says ``superseded`` and ``kept: false``, and maybe ``superseded_by``), or
    the store lost them (deleted by hand, a partial copy of the store).
    """

    def __init__(self, doc: dict[str, Any], backend: Backend, run_id: str | None = None) -> None:
        self.name: str = doc["name"]
        self.kind: str = doc.get("kind", "file")
        self.sha256: str = doc["sha256"]
        self.size: int = doc.get("size", 0)
        self.metadata: dict[str, Any] = dict(doc.get("metadata") or {})
        self.timestamp: float | None = doc.get("time")
        self.source: str | None = doc.get("source")
        self._run_id = run_id
        self._backend = backend

    def _label(self) -> str:
        return f"artifact {self.name!r}" + (f" of run {self._run_id[:8]}" if self._run_id else "")

    def open(self) -> _VerifyingReader:
        # released: the writer freed the bytes (superseded, and not kept for another reference)
        if self.metadata.get("superseded") and self.metadata.get("kept") is False:
            by = self.metadata.get("superseded_by")
            raise ArtifactNotFoundError(f"{self._label()} was released: " + (
                f"superseded by {by}" if isinstance(by, str) and by else "superseded, its bytes freed"))
        try:
            raw = self._backend.open_artifact(self.sha256)
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"{self._label()}: its bytes (sha256 {self.sha256[:12]}…) are missing from the store "
                f"{getattr(self._backend, 'uri', '?')}") from None
        return _VerifyingReader(raw, self.sha256, self.name)

    def read_bytes(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def download(self, dest: str | os.PathLike[str], *, overwrite: bool = True) -> str:
        """Write the recorded bytes to ``dest`` and return the path written.

        ``dest`` is a file path, or a folder (an existing one, or one said with a trailing ``/``)
        to put the artifact's file name in; missing folders are made. The file appears whole or
        not at all, with the usual mode (0666 less the umask). An existing file is replaced, as
        a script that fetches the latest model to the same path each time expects; with
        ``overwrite=False`` it raises ``FileExistsError`` instead (``autotrack get`` refuses
        unless ``--force``).
        """
        from autotrack._output import output_path, write_file

        path = output_path(dest, os.path.basename(self.name))
        with self.open() as src:  # a released or missing artifact fails here, before any file
            return write_file(path, iter(lambda: src.read(1 << 20), b""), overwrite=overwrite)

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} {self.kind} {self.size} bytes sha256={self.sha256[:12]}>"
