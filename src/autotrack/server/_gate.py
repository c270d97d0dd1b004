"""The door of every endpoint: who is calling (a token, or anyone on an open loopback server),
whether their scope allows the call (401/403), and errors mapped to statuses, the same for the
API and the dashboard. What each scope may do is ``_auth``'s; what a write may change, ``_rules``'.
"""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autotrack._errors import ArtifactNotFoundError, RunNotFoundError
from autotrack.server._auth import ANONYMOUS, Principal, Tokens
from autotrack.server._body import HTTPError
from autotrack.server.openapi import API_PREFIX

__all__ = ["Gate", "json_response", "error_response", "host_name", "LOOPBACK_NAMES"]

log = logging.getLogger("autotrack.server")
Handler = Callable[[Request], Awaitable[Response]]


def json_response(request: Request, data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {}
    if len(body) > 1024 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"error": message}).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)



LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def host_name(host: str) -> str:
    """``name`` of a Host header ``name:port`` (``[::1]:8080`` -> ``[::1]``)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host



class Gate:
    def __init__(self, tokens: Tokens, allowed_hosts: tuple[str, ...] | None) -> None:
        self.tokens = tokens
        self.allowed_hosts = allowed_hosts

    # -- the guard around every endpoint ---------------------------------------------------
    def resource(self, path: str, methods: dict[str, tuple[Handler, str]], public: bool = False) -> Route:
        """One route per path whatever its methods (``{"GET": (handler, scope)}``), so that a 405
        lists in ``Allow`` every method the path has, as the OpenAPI document says."""
        guarded = {method: self.guard(handler, public, scope) for method, (handler, scope) in methods.items()}

        async def dispatch(request: Request) -> Response:
            handler = guarded.get(request.method) or guarded["GET"]  # HEAD without its own: GET's
            return await handler(request)

        return Route(API_PREFIX + path, dispatch, methods=list(methods))

    def guard(self, endpoint: Handler, public: bool = False, scope: str = "read") -> Handler:
        """Who is calling and may they (401/403), and the error-to-status mapping every endpoint
        shares (the dashboard's too)."""
        async def guarded(request: Request) -> Response:
            try:
                principal = await run_in_threadpool(self._principal, request)
                if principal is None and not public:
                    return error_response(401, "missing or wrong token (send 'Authorization: Bearer <token>')",
                                  **{"WWW-Authenticate": "Bearer"})
                if principal is not None and not public and not principal.allows(scope):
                    return error_response(403, f"token {principal.name!r} has the {principal.scope} scope; "
                                       f"this needs {scope}")
                request.state.principal = principal
                return await endpoint(request)
            except HTTPError as exc:
                return error_response(exc.status, exc.message)
            except ValueError as exc:  # the store refused an id or a value
                return error_response(400, str(exc))
            except (FileNotFoundError, RunNotFoundError, ArtifactNotFoundError) as exc:
                return error_response(404, f"not found: {exc}")
            except OSError as exc:
                log.warning("store error on %s %s: %s", request.method, request.url.path, exc)
                return error_response(503, f"the store failed: {exc}")

        return guarded

    def _principal(self, request: Request) -> Principal | None:
        if not self.tokens.required:
            # an open server (no token): only for this machine, so the Host must be one of its
            # names, or a web page elsewhere could reach it through DNS rebinding
            host = host_name(request.headers.get("host", "")).lower()
            if self.allowed_hosts is not None and host not in self.allowed_hosts:
                raise HTTPError(400, f"invalid Host header {host!r}: a server without a token answers "
                                     "only to the names it is bound to (set a token to serve others)")
            return ANONYMOUS
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        return self.tokens.check(given)

    @staticmethod
    def caller(request: Request) -> Principal:
        return getattr(request.state, "principal", None) or ANONYMOUS
