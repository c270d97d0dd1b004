"""Reading request bodies within limits: JSON (optionally gzip-compressed) and streamed uploads."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from typing import Any

from starlette.requests import Request

__all__ = ["HTTPError", "read_json", "receive_file"]

_CHUNK = 1024 * 1024


class HTTPError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _declared_length(request: Request, limit: int) -> None:
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise HTTPError(400, "Content-Length is not a number") from None
    if length > limit:
        raise HTTPError(413, f"request body over the limit of {limit} bytes")


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON (write non-finite numbers as docs/format.md says)")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON; ``limit`` bounds both the bytes received and the decompressed size."""
    _declared_length(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise HTTPError(415, f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    parts: list[bytes] = []
    received = size = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise HTTPError(413, f"request body over the limit of {limit} bytes")
            if inflate is not None:
                chunk = inflate.decompress(chunk, limit + 1 - size)
                if inflate.unconsumed_tail:
                    raise HTTPError(413, f"decompressed body over the limit of {limit} bytes")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"decompressed body over the limit of {limit} bytes")
            parts.append(chunk)
        if inflate is not None and not inflate.eof:
            raise HTTPError(400, "truncated gzip body")
    except zlib.error as exc:
        raise HTTPError(400, f"body is not valid gzip: {exc}") from None
    try:
        return json.loads(b"".join(parts), parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None


async def receive_file(request: Request, limit: int, folder: str | None) -> tuple[str, str, int]:
    """Stream the body to a temporary file, hashing it on the way: (path, sha256, size).

    Never holds more than one chunk in memory. The caller removes the file.
    """
    _declared_length(request, limit)
    if request.headers.get("content-encoding", "identity").strip().lower() not in ("identity", ""):
        raise HTTPError(415, "artifact uploads are sent as raw bytes (no Content-Encoding)")
    if folder:
        os.makedirs(folder, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=".upload-", dir=folder)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPError(413, f"artifact over the limit of {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        _unlink(path)
        raise
    return path, digest.hexdigest(), size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
