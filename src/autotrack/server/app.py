"""The ASGI application: the Backend protocol over HTTP, in front of one autotrack store.

Routes (all under ``/api/v1``, all behind the bearer token when one is set, but ``health``):

=======  ===================================  ==============================================
PUT      /runs/{run_id}                       create or replace the run document
PUT      /runs/{run_id}/segments/{seq}        store event segment ``seq`` (idempotent)
GET      /runs                                every run document
GET      /runs/{run_id}                       one run document
GET      /runs/{run_id}/segments              the run's segments in ``seq`` order
HEAD     /artifacts/{sha256}                  200 if the store has that content, else 404
PUT      /artifacts/{sha256}                  upload raw bytes, streamed and verified
GET      /artifacts/{sha256}                  download (streamed)
PUT      /runs/{run_id}/refs/{sha256}         the run references that content (before uploading it)
DELETE   /runs/{run_id}/refs/{sha256}         drop the reference; bytes go when no run references them
GET      /openapi.json                        the OpenAPI document of all this
GET      /health                              ``{"status": "ok"}``, no token needed
=======  ===================================  ==============================================

The store does the storing (atomic writes, content addressing); this module validates what
comes in (ids, sizes, JSON) so malformed input is a 4xx with a message, never a 500.
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import os
import re
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from autotrack._errors import ArtifactNotFoundError, RunNotFoundError
from autotrack.server._body import HTTPError, _unlink, read_json, receive_file
from autotrack.server.openapi import API_PREFIX, openapi_spec

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("autotrack.server")

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_SEQ = 10**8 - 1  # segment files are named with 8 digits
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ARTIFACT_BYTES = 1024**4
_CHUNK = 1024 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def _json(request: Request, data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {}
    if len(body) > 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"error": message}).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _run_id(request: Request) -> str:
    run_id = request.path_params["run_id"]
    if not RUN_ID.fullmatch(run_id):
        raise HTTPError(400, f"invalid run id {run_id!r}: 1-128 characters of A-Z a-z 0-9 _ -, not starting with _ or -")
    return run_id


def _sha(request: Request) -> str:
    sha = request.path_params["sha256"]
    if not SHA256.fullmatch(sha):
        raise HTTPError(400, f"invalid sha256 {sha!r}: 64 lowercase hex digits")
    return sha


def _seq(request: Request) -> int:
    raw = request.path_params["seq"]
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_SEQ:
        raise HTTPError(400, f"invalid segment number {raw!r}: 0 to {MAX_SEQ}")
    return int(raw)


class _Api:
    def __init__(self, store: Any, token: str | None, max_json_bytes: int, max_artifact_bytes: int,
                 tmp_dir: str | None) -> None:
        self.store = store
        self.token = token.encode("utf-8") if token else None
        self.max_json = max_json_bytes
        self.max_artifact = max_artifact_bytes
        self.tmp_dir = tmp_dir

    # -- the guard around every endpoint ---------------------------------------------------
    def route(self, path: str, endpoint: Handler, methods: list[str], public: bool = False) -> Route:
        return Route(API_PREFIX + path, self.guard(endpoint, public), methods=methods)

    def guard(self, endpoint: Handler, public: bool = False) -> Handler:
        """The token check and the error-to-status mapping every endpoint shares (the UI's too)."""
        async def guarded(request: Request) -> Response:
            if not public and self.token is not None and not self._authorized(request):
                return _error(401, "missing or wrong token (send 'Authorization: Bearer <token>')",
                              **{"WWW-Authenticate": "Bearer"})
            try:
                return await endpoint(request)
            except HTTPError as exc:
                return _error(exc.status, exc.message)
            except ValueError as exc:  # the store refused an id or a value
                return _error(400, str(exc))
            except (FileNotFoundError, RunNotFoundError, ArtifactNotFoundError) as exc:
                return _error(404, f"not found: {exc}")
            except OSError as exc:
                log.warning("store error on %s %s: %s", request.method, request.url.path, exc)
                return _error(503, f"the store failed: {exc}")

        return guarded

    def _authorized(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        assert self.token is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"), self.token)

    # -- runs --------------------------------------------------------------------------------
    async def put_run(self, request: Request) -> Response:
        run_id = _run_id(request)
        doc = await read_json(request, self.max_json)
        if not isinstance(doc, dict):
            raise HTTPError(422, "a run document is a JSON object")
        if doc.setdefault("id", run_id) != run_id:
            raise HTTPError(422, f"the document's id {doc['id']!r} is not the run id in the URL")
        await run_in_threadpool(self.store.create_run, doc)
        return _json(request, {"id": run_id, "status": "stored"})

    # The store hands back a marker for a file it cannot read (docs/format.md, "Validation"):
    # these pass it on as it is, for the client's reader to judge, and never fail a whole
    # listing for one document.
    @staticmethod
    def _stored(request: Request, data: Any) -> Response:
        """Text with no UTF-8 form (a lone surrogate, kept by the writer from an undecodable file
        name, read back from its ``\\udcxx`` escape) is sent escaped the same way."""
        try:
            return _json(request, data)
        except UnicodeEncodeError:
            body = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
            return Response(body, media_type="application/json")

    async def list_runs(self, request: Request) -> Response:
        return self._stored(request, await run_in_threadpool(self.store.list_runs))

    async def get_run(self, request: Request) -> Response:
        run_id = _run_id(request)
        for doc in await run_in_threadpool(self.store.list_runs):
            if isinstance(doc, dict) and doc.get("id") == run_id:
                return self._stored(request, doc)
        raise HTTPError(404, f"no run {run_id!r}")

    async def put_segment(self, request: Request) -> Response:
        run_id, seq = _run_id(request), _seq(request)
        segment = await read_json(request, self.max_json)
        if not isinstance(segment, dict):
            raise HTTPError(422, "a segment is a JSON object")
        if segment.setdefault("seq", seq) != seq:
            raise HTTPError(422, f"the segment's seq {segment['seq']!r} is not {seq} as in the URL")
        if segment.setdefault("run_id", run_id) != run_id:
            raise HTTPError(422, "the segment's run_id is not the run id in the URL")
        # Writing the same (run_id, seq) again replaces the file with the same content: one
        # segment. That is what makes a retried batch count once.
        await run_in_threadpool(self.store.append, run_id, seq, segment)
        return _json(request, {"run_id": run_id, "seq": seq, "status": "stored"})

    async def read_segments(self, request: Request) -> Response:
        run_id = _run_id(request)
        return self._stored(request, await run_in_threadpool(self.store.read_segments, run_id))

    # -- artifacts ---------------------------------------------------------------------------
    def _has(self, sha: str) -> bool:
        try:
            self.store.open_artifact(sha).close()
        except FileNotFoundError:
            return False
        return True

    async def head_artifact(self, request: Request) -> Response:
        sha = _sha(request)
        if await run_in_threadpool(self._has, sha):
            return Response(status_code=200)
        return Response(status_code=404)

    async def put_artifact(self, request: Request) -> Response:
        sha = _sha(request)
        if await run_in_threadpool(self._has, sha):
            return _json(request, {"sha256": sha, "status": "exists"})
        path, got, size = await receive_file(request, self.max_artifact, self.tmp_dir)
        try:
            if got != sha:
                raise HTTPError(422, f"the content's sha256 is {got}, not {sha} as in the URL")
            await run_in_threadpool(self.store.put_artifact, path)
        finally:
            _unlink(path)
        return _json(request, {"sha256": sha, "size": size, "status": "created"}, status=201)

    async def get_artifact(self, request: Request) -> Response:
        sha = _sha(request)
        fh = await run_in_threadpool(self.store.open_artifact, sha)

        def chunks() -> Any:
            with fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    # -- references: no client can delete bytes another run references (backends/_refs.py) --
    def _refs_call(self, name: str) -> Any:
        method = getattr(self.store, name, None)
        if method is None:
            raise HTTPError(405, "this store keeps no reference records")
        return method

    async def add_ref(self, request: Request) -> Response:
        run_id, sha = _run_id(request), _sha(request)
        await run_in_threadpool(self._refs_call("add_ref"), run_id, sha)
        return _json(request, {"run_id": run_id, "sha256": sha, "status": "stored"})

    async def release_ref(self, request: Request) -> Response:
        run_id, sha = _run_id(request), _sha(request)
        freed = await run_in_threadpool(self._refs_call("release_artifact"), run_id, sha)
        return _json(request, {"run_id": run_id, "sha256": sha, "freed": bool(freed)})

    async def spec(self, request: Request) -> Response:
        return _json(request, openapi_spec())

    async def health(self, request: Request) -> Response:
        return _json(request, {"status": "ok"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail or "error", **(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, f"internal error: {type(exc).__name__}")


def create_app(store_uri: str, token: str | None = None, *, max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
               max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES, tmp_dir: str | None = None,
               read_only: bool = False, ui: bool = True) -> Starlette:
    """The tracking server over the store at ``store_uri`` (any URI the file store accepts).

    ``ui`` adds the dashboard at ``/`` (docs/ui.md); ``read_only`` (``autotrack ui``) keeps only
    the API's reading routes, so nothing can be written through it.
    """
    from autotrack.backends.base import backend_for, scheme_of

    if scheme_of(store_uri) in ("http", "https"):
        raise ValueError("the server stores into a file store (a folder, s3://...), not another server")
    api = _Api(backend_for(store_uri), token or None, max_json_bytes, max_artifact_bytes, tmp_dir)
    routes: list[BaseRoute] = [
        api.route("/runs", api.list_runs, ["GET"]),
        api.route("/runs/{run_id}", api.get_run, ["GET"]),
        api.route("/runs/{run_id}", api.put_run, ["PUT"]),
        api.route("/runs/{run_id}/segments", api.read_segments, ["GET"]),
        api.route("/runs/{run_id}/segments/{seq}", api.put_segment, ["PUT"]),
        api.route("/artifacts/{sha256}", api.head_artifact, ["HEAD"]),
        api.route("/artifacts/{sha256}", api.get_artifact, ["GET"]),
        api.route("/artifacts/{sha256}", api.put_artifact, ["PUT"]),
        api.route("/runs/{run_id}/refs/{sha256}", api.add_ref, ["PUT"]),
        api.route("/runs/{run_id}/refs/{sha256}", api.release_ref, ["DELETE"]),
        api.route("/openapi.json", api.spec, ["GET"]),
        api.route("/health", api.health, ["GET"], public=True),
    ]
    if read_only:
        routes = [r for r in routes if isinstance(r, Route) and not (r.methods or set()) - {"GET", "HEAD"}]
    if ui:
        from autotrack.ui._routes import ui_routes

        routes += ui_routes(api.store, api.guard, token_required=api.token is not None, read_only=read_only)
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception, Exception: _unexpected})


# Settings for worker processes (uvicorn --workers imports the app by name in each process).
ENV_STORE = "AUTOTRACK_SERVER_STORE"
ENV_TOKEN = "AUTOTRACK_SERVER_TOKEN"
ENV_MAX_JSON = "AUTOTRACK_SERVER_MAX_JSON_BYTES"
ENV_MAX_ARTIFACT = "AUTOTRACK_SERVER_MAX_ARTIFACT_BYTES"


def create_app_from_env() -> Starlette:
    """The app as ``autotrack serve`` configured it (through the environment, for each worker)."""
    return create_app(
        os.environ[ENV_STORE],
        os.environ.get(ENV_TOKEN) or None,
        max_json_bytes=int(os.environ.get(ENV_MAX_JSON) or DEFAULT_MAX_JSON_BYTES),
        max_artifact_bytes=int(os.environ.get(ENV_MAX_ARTIFACT) or DEFAULT_MAX_ARTIFACT_BYTES),
    )
