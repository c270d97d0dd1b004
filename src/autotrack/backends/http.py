"""The HTTP backend: the Backend protocol spoken to an ``autotrack serve`` server.

Selected by ``http://`` and ``https://`` URIs (``AUTOTRACK_URI=http://host:8080``; a path after
the host is kept, for a server behind a reverse proxy under a prefix). ``AUTOTRACK_TOKEN`` is
sent as a bearer token. Requests go through the standard library (``_http_transport``: kept-alive
connections, nothing imported before the first request, which the writer thread makes); only a
proxy named by the environment needs httpx (``pip install 'autotrack-ml[server]'``).

Each method is one request (an artifact: a HEAD, then a streamed PUT only if the server lacks
the content). Segments are the batches: the writer gathers events for ~2 s and sends them as one
gzip-compressed request, and the segment number is the batch id, so a retried batch is stored
once. Timeouts are short (2 s to connect) so a dead server costs the writer thread little. A
failure always raises: retrying, and spooling at exit what never got through (``autotrack
sync`` delivers it), is the writer's job, the same for every backend.

Errors are ``OSError``s as the protocol says: ``ConnectionError`` when the server cannot be
reached, ``PermissionError`` for a missing or wrong token, ``FileNotFoundError`` for absent
content, ``ValueError`` for ids the server (or this client) refuses.
"""

from __future__ import annotations

import gzip
import os
import re
import threading
import time
from typing import IO, Any
from urllib.parse import quote

from autotrack._errors import BackendUnavailableError

__all__ = ["HttpBackend"]

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INSTALL = "pip install 'autotrack-ml[server]'"
# errors the server names (``kind``) for a model event it refused, raised here as themselves
_REGISTRY_ERRORS = ("ModelNotFoundError", "RunNotFoundError", "AmbiguousRunError", "ArtifactNotFoundError",
                    "AmbiguousArtifactError")


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
        if status in (400, 409, 422):  # refused for what was sent: sending it again changes nothing
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

    def put_artifact(self, path: str, run_id: str | None = None) -> tuple[str, int]:
        """The run's reference first (``_refs``), then the bytes, only if the server lacks them.
        A failure raises: the writer keeps the artifact, retries, and spools it at the end."""
        from autotrack.backends.file import sha256_file

        sha, size = sha256_file(path)
        if run_id is not None:
            self._send("PUT", f"/runs/{self._run(run_id)}/refs/{sha}").close()
        if not self._has(sha):
            with open(path, "rb") as fh:
                self._send("PUT", f"/artifacts/{sha}", body=fh,
                           headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}).close()
        return sha, size

    def release_artifact(self, run_id: str, sha256: str) -> bool:
        """Drop the run's reference; the server frees the bytes only when no run references them."""
        response = self._send("DELETE", f"/runs/{self._run(run_id)}/refs/{self._sha(sha256)}")
        try:
            return bool(response.json().get("freed"))
        finally:
            response.close()

    def _has(self, sha: str) -> bool:
        try:
            self._send("HEAD", f"/artifacts/{sha}").close()
        except FileNotFoundError:
            return False
        return True

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

    # -- the model registry: the server numbers events and records who wrote them -------------
    @staticmethod
    def _model(name: str) -> str:
        from autotrack._registry_state import check_name

        return quote(check_name(name), safe="")

    def list_models(self) -> list[str]:
        response = self._send("GET", "/models", attempts=3)
        return [name for name in response.json() if isinstance(name, str)]

    def model_snapshot(self, name: str) -> dict[str, Any] | None:
        """The model's current state, replayed by the server (None: no such model)."""
        try:
            response = self._send("GET", f"/models/{self._model(name)}", attempts=3)
        except FileNotFoundError:
            return None
        return response.json()

    def read_model_events(self, name: str, start: int = 0, seqs: list[int] | None = None) -> list[dict[str, Any]]:
        path = f"/models/{self._model(name)}/events"
        if seqs is None:
            return self._send("GET", f"{path}?start={int(start)}", attempts=3).json()
        out: list[dict[str, Any]] = []
        wanted = sorted({int(s) for s in seqs})
        for i in range(0, len(wanted), 300):  # a URL stays a few KB however many versions are read
            query = "&".join(f"seq={s}" for s in wanted[i:i + 300])
            out += self._send("GET", f"{path}?{query}", attempts=3).json()
        return out

    def add_model_event(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """POST the request; the server numbers the event, sets ``by`` from the token, and answers
        with the event as stored. Sent once: a request that timed out may have been stored
        (``model_history`` says), so it is not resent blindly."""
        from autotrack import _errors
        from autotrack.backends._http_transport import TransportError

        path = f"/models/{self._model(name)}/events"
        try:
            response = self._client.request("POST", path, **self._json_body(request))
        except TransportError as exc:
            raise ConnectionError(f"cannot reach the autotrack server at {self.uri}: {exc}") from None
        if response.status_code < 400:
            return response.json()
        try:
            error = response.json()
        except Exception:  # noqa: BLE001 - not our JSON: the generic mapping below says what came
            error = {}
        kind, message = (error.get("kind"), error.get("error")) if isinstance(error, dict) else (None, None)
        if kind in _REGISTRY_ERRORS and isinstance(message, str):
            raise getattr(_errors, kind)(message)
        if response.status_code == 403 and isinstance(message, str):
            raise PermissionError(f"the autotrack server at {self.uri} refused: {message}")
        self._raise(response, "POST", path)
        raise AssertionError("unreachable")

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
