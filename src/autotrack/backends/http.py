"""The HTTP backend: the Backend protocol spoken to an ``autotrack serve`` server.

Selected by ``http://`` and ``https://`` URIs (``AUTOTRACK_URI=http://host:8080``; a path after
the host is kept, for a server behind a reverse proxy under a prefix). ``AUTOTRACK_TOKEN`` is
sent as a bearer token. Requests go through the standard library (``_http_transport``: kept-alive
connections, nothing imported before the first request, which the writer thread makes); only a
proxy named by the environment needs httpx (``pip install 'autotrack[server]'``).

Each method is one request (an artifact: a HEAD, then a streamed PUT only if the server lacks
the content). Segments are the batches: the writer gathers events for ~2 s and sends them as one
gzip-compressed request, and the segment number is the batch id, so a retried batch is stored
once. Timeouts are short (2 s to connect) so a dead server costs the writer thread little; the
writer keeps what failed, retries it, and spools it at exit (``autotrack sync`` delivers it).

Errors are ``OSError``s as the protocol says: ``ConnectionError`` when the server cannot be
reached, ``PermissionError`` for a missing or wrong token, ``FileNotFoundError`` for absent
content, ``ValueError`` for ids the server (or this client) refuses.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import threading
import time
from typing import IO, Any
from urllib.parse import quote

from autotrack._errors import BackendUnavailableError

__all__ = ["HttpBackend"]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INSTALL = "pip install 'autotrack[server]'"


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


class HttpBackend:
    """A :class:`~autotrack.backends.base.Backend` over the autotrack server's REST API."""

    def __init__(self, uri: str, token: str | None = None) -> None:
        from autotrack.backends._http_transport import proxy_for

        proxy = proxy_for(uri)  # checked now, so a missing package fails at the start, in one line
        if proxy is not None and _httpx_missing():
            raise BackendUnavailableError(
                f"{proxy[0]} sends {uri} through a proxy, which needs httpx: {_INSTALL} (or add the host to NO_PROXY)")
        self._transport: Any = None  # made by _client on first use (the writer thread), not in start_run
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()
        self._spooled: dict[str, str] = {}  # sha256 -> local copy, for artifacts the server did not take
        self.uri = uri
        self.api = uri.rstrip("/") + "/api/v1"
        token = token if token is not None else os.environ.get("AUTOTRACK_TOKEN")
        self._headers = {"User-Agent": "autotrack", "Accept-Encoding": "gzip"}
        if token:
            self._headers["Authorization"] = f"Bearer {token.strip()}"
        self._timeouts = (_float_env("AUTOTRACK_HTTP_CONNECT_TIMEOUT", 2.0), _float_env("AUTOTRACK_HTTP_TIMEOUT", 15.0))

    @property
    def _client(self) -> Any:
        transport = self._transport
        if transport is None:
            with self._client_lock:
                if self._transport is None:
                    from autotrack.backends._http_transport import Transport

                    self._transport = Transport(self.api, self._headers, *self._timeouts)
                transport = self._transport
        return transport

    def __repr__(self) -> str:
        return f"HttpBackend({self.uri!r})"

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, attempts: int = 1, **kwargs: Any) -> Any:
        """One request; ``attempts`` > 1 retries connection failures and 502/503/504 with backoff."""
        from autotrack.backends._http_transport import TransportError

        client = self._client
        delay = 0.25
        for attempt in range(attempts):
            try:
                response = client.request(method, path, **kwargs)
            except TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ConnectionError(f"cannot reach the autotrack server at {self.uri}: {exc}") from None
            if response.status_code in (502, 503, 504) and attempt + 1 < attempts:
                response.close()
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code >= 400:
                self._raise(response, method, path)
            return response
        raise AssertionError("unreachable")

    def _raise(self, response: Any, method: str, path: str) -> None:
        try:
            message = response.json().get("error") or response.text
        except Exception:  # noqa: BLE001 - not our JSON (a proxy's error page), or a body that broke off
            try:
                message = response.text[:200]
            except Exception:  # noqa: BLE001
                message = ""
        finally:
            response.close()
        status = response.status_code
        text = f"{method} {path}: HTTP {status}: {message}".strip()
        if status == 401 or status == 403:
            raise PermissionError(f"the autotrack server at {self.uri} refused the token (set AUTOTRACK_TOKEN): {message}")
        if status == 404:
            raise FileNotFoundError(text)
        if status in (400, 422):
            raise ValueError(text)
        raise OSError(text)

    def _json_body(self, data: Any) -> dict[str, Any]:
        from autotrack.backends.file import dumps

        return {"body": gzip.compress(dumps(data), compresslevel=5),
                "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"}}

    @staticmethod
    def _run(run_id: str) -> str:
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"invalid run id {run_id!r}")
        return run_id

    @staticmethod
    def _sha(sha256: str) -> str:
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ValueError(f"invalid sha256 {sha256!r}")
        return sha256

    # -- writes ----------------------------------------------------------------------------
    def create_run(self, doc: dict[str, Any]) -> None:
        self.update_run(doc.get("id"), doc)  # type: ignore[arg-type]

    def update_run(self, run_id: str, doc: dict[str, Any]) -> None:
        self._send("PUT", f"/runs/{self._run(run_id)}", **self._json_body(doc)).close()

    def append(self, run_id: str, seq: int, segment: dict[str, Any]) -> None:
        if not isinstance(seq, int) or seq < 0:
            raise ValueError(f"invalid segment number {seq!r}")
        self._send("PUT", f"/runs/{self._run(run_id)}/segments/{seq}", **self._json_body(segment)).close()
        if self._spooled:
            self._deliver_spooled()

    def put_artifact(self, path: str) -> tuple[str, int]:
        from autotrack.backends.file import sha256_file

        sha, size = sha256_file(path)
        try:
            self._upload(path, sha, size)
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, (PermissionError, FileNotFoundError)):
                raise
            self._spool_artifact(path, sha, exc)  # offline: keep the bytes, record the artifact
        return sha, size

    def upload_artifact(self, path: str) -> tuple[str, int]:
        """Like put_artifact, but a failure raises instead of spooling (``autotrack sync`` uses it)."""
        from autotrack.backends.file import sha256_file

        sha, size = sha256_file(path)
        self._upload(path, sha, size)
        return sha, size

    def _upload(self, path: str, sha: str, size: int) -> None:
        if self._has(sha):
            return
        with open(path, "rb") as fh:
            self._send("PUT", f"/artifacts/{sha}", body=fh,
                       headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}).close()

    # -- artifacts the server could not take: spool_dir()/artifacts/<sha[:2]>/<sha> --------------
    def _spool_artifact(self, path: str, sha: str, exc: BaseException) -> None:
        from autotrack._safety import report
        from autotrack._writer import spool_dir

        folder = os.path.join(spool_dir(), "artifacts", sha[:2])
        os.makedirs(folder, exist_ok=True)
        dest = os.path.join(folder, sha)
        if not os.path.exists(dest):
            tmp = os.path.join(folder, f".tmp-{os.getpid()}-{sha}")
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        with open(os.path.join(folder, f".{sha}.uri"), "w", encoding="utf-8") as fh:
            fh.write(self.uri)
        with self._lock:
            self._spooled[sha] = dest
        try:
            report("uploading an artifact", OSError(
                f"{exc}; the artifact was saved to {dest} and is uploaded when the server is back "
                "(or by 'autotrack sync')"))
        except Exception:  # noqa: BLE001 - strict mode raises; the bytes are safe, carry on
            pass

    def _deliver_spooled(self) -> None:
        """Upload artifacts spooled by this process once the server answers again."""
        with self._lock:
            todo = list(self._spooled.items())
        for sha, path in todo:
            try:
                self._upload(path, sha, os.path.getsize(path))
            except FileNotFoundError:  # `autotrack sync` got there first
                pass
            except OSError:
                return
            with self._lock:
                self._spooled.pop(sha, None)
            for name in (path, os.path.join(os.path.dirname(path), f".{sha}.uri")):
                try:
                    os.unlink(name)
                except OSError:
                    pass

    def _has(self, sha: str) -> bool:
        try:
            self._send("HEAD", f"/artifacts/{sha}").close()
        except FileNotFoundError:
            return False
        return True

    def delete_artifact(self, sha256: str) -> None:
        self._send("DELETE", f"/artifacts/{self._sha(sha256)}").close()

    # -- reads -----------------------------------------------------------------------------
    def list_runs(self) -> list[dict[str, Any]]:
        response = self._send("GET", "/runs", attempts=3)
        return response.json()

    def read_segments(self, run_id: str) -> list[dict[str, Any]]:
        response = self._send("GET", f"/runs/{quote(self._run(run_id))}/segments", attempts=3)
        return response.json()

    def open_artifact(self, sha256: str) -> IO[bytes]:
        response = self._send("GET", f"/artifacts/{self._sha(sha256)}", attempts=3, stream=True)
        return response.stream()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _httpx_missing() -> bool:
    """True when httpx cannot be imported (looked up without importing it)."""
    import sys

    if "httpx" in sys.modules:
        return sys.modules["httpx"] is None
    from importlib.util import find_spec

    return find_spec("httpx") is None
