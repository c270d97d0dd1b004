"""The ASGI application: the Backend protocol over HTTP, in front of one autotrack store.

Routes (all under ``/api/v1``; the scope each needs is in brackets, see ``_auth``):

=======  ===================================  ==============================================
PUT      /runs/{run_id}                       create [write] or update [owner/admin] the run document
PUT      /runs/{run_id}/segments/{seq}        store event segment ``seq`` [owner/admin]; immutable
DELETE   /runs/{run_id}                       delete a run and release its artifacts [admin]
GET      /runs                                every run document [read]
GET      /runs/{run_id}                       one run document [read]
GET      /runs/{run_id}/segments              the run's segments in ``seq`` order [read]
HEAD     /artifacts/{sha256}                  200 if the store has that content, else 404 [read]
PUT      /artifacts/{sha256}                  upload raw bytes, streamed and verified [write]
GET      /artifacts/{sha256}                  download (streamed) [read]
PUT      /runs/{run_id}/refs/{sha256}         the run references that content [owner/admin]
DELETE   /runs/{run_id}/refs/{sha256}         drop the reference; bytes go when no run references them
GET      /models                              the names of the registered models [read]
GET      /models/{name}                       one model's current state (versions, aliases) [read]
GET      /models/{name}/events                its events, ``?start=N`` or ``?seq=N&seq=M`` [read]
POST     /models/{name}/events                register a version, move or delete an alias [write;
                                              admin for a protected alias]; numbered here
GET      /whoami                              the caller's token name and scope [read]
GET      /openapi.json                        the OpenAPI document of all this [read]
GET      /health                              ``{"status": "ok"}``, no token needed
=======  ===================================  ==============================================

What is written is checked first (``_rules``): every document against the readers' schema,
runs append-only for the token that created them, segments immutable.

The store does the storing (atomic writes, content addressing); this module validates what
comes in (ids, sizes, JSON) so malformed input is a 4xx with a message, never a 500.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from autotrack.backends import _admin
from autotrack.server._auth import Principal, Tokens, audit
from autotrack.server._body import HTTPError, _unlink, read_json, receive_file
from autotrack.server._gate import LOOPBACK_NAMES, Gate, error_response, host_name, json_response
from autotrack.server._models import ModelsApi
from autotrack.server._rules import DEFAULT_PROTECTED_ALIASES, check_segment, checked_run_doc, may_write
from autotrack.server.openapi import openapi_spec

__all__ = ["create_app", "create_app_from_env"]

log = logging.getLogger("autotrack.server")

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_SEQ = 10**8 - 1  # segment files are named with 8 digits
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ARTIFACT_BYTES = 1024**4
_CHUNK = 1024 * 1024



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
    def __init__(self, store: Any, max_json_bytes: int, max_artifact_bytes: int, tmp_dir: str | None) -> None:
        self.store = store
        self.max_json = max_json_bytes
        self.max_artifact = max_artifact_bytes
        self.tmp_dir = tmp_dir
        self._locks = [threading.Lock() for _ in range(64)]  # one run's read-modify-writes in turn

    def _lock(self, run_id: str) -> threading.Lock:
        return self._locks[hash(run_id) % len(self._locks)]

    async def whoami(self, request: Request) -> Response:
        who = Gate.caller(request)
        return json_response(request, {"id": who.id, "name": who.name, "scope": who.scope})

    # -- runs --------------------------------------------------------------------------------
    def _current(self, run_id: str) -> Any:
        """The stored document of a run: None when there is none; a bare marker when it cannot
        be read (then only an admin may write over it)."""
        try:
            return _admin.read_run(self.store, run_id)
        except ValueError:
            return {"id": run_id, "corrupt": True}

    async def put_run(self, request: Request) -> Response:
        run_id = _run_id(request)
        doc = await read_json(request, self.max_json)
        who = Gate.caller(request)

        def write() -> None:
            with self._lock(run_id):
                current = self._current(run_id)
                new = checked_run_doc(doc, current, who, run_id)
                self.store.update_run(run_id, new)
            was = current.get("status") if isinstance(current, dict) else None
            if current is None:
                audit(self.store, who, "run_create", run=run_id)
            elif new.get("status") != was and new.get("status") != "running":
                audit(self.store, who, "run_end", run=run_id, status=new.get("status"))
            elif new.get("status") != was:
                audit(self.store, who, "run_reopen", run=run_id)

        await run_in_threadpool(write)
        return json_response(request, {"id": run_id, "status": "stored"})

    def _writable(self, run_id: str, who: Principal) -> None:
        """A run's segments and references: its owner's (or an admin's); a run whose document
        has not arrived yet (segments may come first) takes any write token."""
        current = self._current(run_id)
        if current is not None:
            may_write(who, current)

    async def delete_run(self, request: Request) -> Response:
        run_id = _run_id(request)
        who = Gate.caller(request)

        def delete() -> int:
            with self._lock(run_id):
                if self._current(run_id) is None:
                    raise HTTPError(404, f"no run {run_id!r}")
                shas = {art.get("sha256") for seg in self.store.read_segments(run_id) if isinstance(seg, dict)
                        for art in (seg.get("artifacts") or ()) if isinstance(art, dict)}
                freed = sum(bool(self.store.release_artifact(run_id, sha)) for sha in shas if isinstance(sha, str))
                _admin.delete_run(self.store, run_id)
            audit(self.store, who, "run_delete", run=run_id)
            return freed

        freed = await run_in_threadpool(delete)
        return json_response(request, {"id": run_id, "status": "deleted", "artifacts_freed": freed})

    # The store hands back a marker for a file it cannot read (docs/format.md, "Validation"):
    # these pass it on as it is, for the client's reader to judge, and never fail a whole
    # listing for one document.
    @staticmethod
    def _stored(request: Request, data: Any) -> Response:
        """Text with no UTF-8 form (a lone surrogate, kept by the writer from an undecodable file
        name, read back from its ``\\udcxx`` escape) is sent escaped the same way."""
        try:
            return json_response(request, data)
        except UnicodeEncodeError:
            body = json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")
            return Response(body, media_type="application/json")

    async def list_runs(self, request: Request) -> Response:
        return self._stored(request, await run_in_threadpool(self.store.list_runs))

    async def get_run(self, request: Request) -> Response:
        run_id = _run_id(request)
        current = await run_in_threadpool(self._current, run_id)
        if isinstance(current, dict) and not current.get("corrupt"):
            return self._stored(request, current)
        for doc in await run_in_threadpool(self.store.list_runs):  # the store's marker says why
            if isinstance(doc, dict) and doc.get("id") == run_id:
                return self._stored(request, doc)
        raise HTTPError(404, f"no run {run_id!r}")

    async def put_segment(self, request: Request) -> Response:
        run_id, seq = _run_id(request), _seq(request)
        segment = await read_json(request, self.max_json)
        who = Gate.caller(request)

        def write() -> str:
            with self._lock(run_id):
                self._writable(run_id, who)
                stored = _admin.read_segment(self.store, run_id, seq) if _admin.segment_exists(
                    self.store, run_id, seq) else None
                if not check_segment(segment, run_id, seq, stored):
                    return "exists"  # a retried batch, stored once
                self.store.append(run_id, seq, segment)
                return "stored"

        status = await run_in_threadpool(write)
        return json_response(request, {"run_id": run_id, "seq": seq, "status": status})

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
            return json_response(request, {"sha256": sha, "status": "exists"})
        path, got, size = await receive_file(request, self.max_artifact, self.tmp_dir)
        try:
            if got != sha:
                raise HTTPError(422, f"the content's sha256 is {got}, not {sha} as in the URL")
            await run_in_threadpool(self.store.put_artifact, path)
        finally:
            _unlink(path)
        return json_response(request, {"sha256": sha, "size": size, "status": "created"}, status=201)

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
        call, who = self._refs_call("add_ref"), Gate.caller(request)

        def add() -> None:
            self._writable(run_id, who)
            call(run_id, sha)

        await run_in_threadpool(add)
        return json_response(request, {"run_id": run_id, "sha256": sha, "status": "stored"})

    async def release_ref(self, request: Request) -> Response:
        run_id, sha = _run_id(request), _sha(request)
        call, who = self._refs_call("release_artifact"), Gate.caller(request)

        def release() -> bool:
            self._writable(run_id, who)
            return bool(call(run_id, sha))

        freed = await run_in_threadpool(release)
        return json_response(request, {"run_id": run_id, "sha256": sha, "freed": freed})

    async def spec(self, request: Request) -> Response:
        return json_response(request, openapi_spec())

    async def health(self, request: Request) -> Response:
        return json_response(request, {"status": "ok"})


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail or "error", **(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}")


def create_app(store_uri: str, token: str | None = None, *, max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
               max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES, tmp_dir: str | None = None,
               read_only: bool = False, ui: bool = True, hosts: tuple[str, ...] = (),
               protected_aliases: tuple[str, ...] = DEFAULT_PROTECTED_ALIASES) -> Starlette:
    """The tracking server over the store at ``store_uri`` (any URI the file store accepts).

    ``token`` is an admin token (``AUTOTRACK_TOKEN``); more tokens, with scopes, live in the store
    (``autotrack token``). With none at all the server is open; bound to loopback (``hosts``: the
    addresses it is bound to), it then answers only requests whose ``Host`` is a loopback name. ``ui`` adds the
    dashboard at ``/`` (docs/ui.md); ``read_only`` (``autotrack ui``) keeps only the API's reading
    routes, so nothing can be written through it. ``protected_aliases``: the model aliases only
    an admin token may move or delete (docs/server.md).
    """
    from autotrack.backends.base import backend_for, scheme_of

    if scheme_of(store_uri) in ("http", "https"):
        raise ValueError("the server stores into a file store (a folder, s3://...), not another server")
    store = backend_for(store_uri)
    names = [host_name(h).lower() for h in hosts if h]
    # Bound to loopback (the default), an open server answers only to loopback names: a web page
    # cannot reach it through DNS rebinding. Bound to another address it is open to whoever
    # reaches it, by any name (``autotrack serve`` warns).
    allowed = None if any(n not in LOOPBACK_NAMES for n in names) else LOOPBACK_NAMES
    gate = Gate(Tokens(store, token or None), allowed)
    api = _Api(store, max_json_bytes, max_artifact_bytes, tmp_dir)
    models = ModelsApi(store, max_json_bytes, protected_aliases, api._lock)
    read, write, admin = "read", "write", "admin"
    resources = [
        ("/runs", {"GET": (api.list_runs, read)}),
        ("/runs/{run_id}", {"GET": (api.get_run, read), "PUT": (api.put_run, write), "DELETE": (api.delete_run, admin)}),
        ("/runs/{run_id}/segments", {"GET": (api.read_segments, read)}),
        ("/runs/{run_id}/segments/{seq}", {"PUT": (api.put_segment, write)}),
        ("/artifacts/{sha256}", {"HEAD": (api.head_artifact, read), "GET": (api.get_artifact, read),
                                 "PUT": (api.put_artifact, write)}),
        ("/runs/{run_id}/refs/{sha256}", {"PUT": (api.add_ref, write), "DELETE": (api.release_ref, write)}),
        *models.resources(read, write),
        ("/whoami", {"GET": (api.whoami, read)}),
        ("/openapi.json", {"GET": (api.spec, read)}),
    ]
    routes: list[BaseRoute] = []
    for path, methods in resources:
        if read_only:  # ``autotrack ui``: nothing can be written through it
            methods = {m: h for m, h in methods.items() if m in ("GET", "HEAD")}
        if methods:
            routes.append(gate.resource(path, methods))
    routes.append(gate.resource("/health", {"GET": (api.health, read)}, public=True))
    if ui:
        from autotrack.ui._routes import ui_routes

        routes += ui_routes(api.store, gate.guard, token_required=gate.tokens.required, read_only=read_only)
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception, Exception: _unexpected})


# Settings for worker processes (uvicorn --workers imports the app by name in each process).
ENV_STORE = "AUTOTRACK_SERVER_STORE"
ENV_TOKEN = "AUTOTRACK_SERVER_TOKEN"
ENV_MAX_JSON = "AUTOTRACK_SERVER_MAX_JSON_BYTES"
ENV_MAX_ARTIFACT = "AUTOTRACK_SERVER_MAX_ARTIFACT_BYTES"
ENV_HOSTS = "AUTOTRACK_SERVER_HOSTS"
ENV_PROTECTED = "AUTOTRACK_SERVER_PROTECTED_ALIASES"


def create_app_from_env() -> Starlette:
    """The app as ``autotrack serve`` configured it (through the environment, for each worker)."""
    return create_app(
        os.environ[ENV_STORE],
        os.environ.get(ENV_TOKEN) or None,
        max_json_bytes=int(os.environ.get(ENV_MAX_JSON) or DEFAULT_MAX_JSON_BYTES),
        max_artifact_bytes=int(os.environ.get(ENV_MAX_ARTIFACT) or DEFAULT_MAX_ARTIFACT_BYTES),
        hosts=tuple(h for h in os.environ.get(ENV_HOSTS, "").split(",") if h),
        protected_aliases=protected_from_env(),
    )


def protected_from_env() -> tuple[str, ...]:
    """The protected aliases ``autotrack serve`` passed its workers (unset: the default)."""
    raw = os.environ.get(ENV_PROTECTED)
    if raw is None:
        return DEFAULT_PROTECTED_ALIASES
    return tuple(a.strip() for a in raw.split(",") if a.strip())
