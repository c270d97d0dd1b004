"""The dashboard's routes: the page, its static files, and the read-only JSON it draws from.

Mounted by ``autotrack serve`` next to the tracking API and by ``autotrack ui`` alone. Every
``/ui/api`` call goes through the server's guard (bearer token, errors as JSON with a status);
the page and its scripts are public (they hold no data) so that the page can ask for the token.
The page is strict about what it runs (a Content-Security-Policy allowing only its own scripts):
even if an escaping bug slipped in, an injected ``<script>`` would not execute.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from autotrack.ui._data import RunIndex, compare, run_detail, run_series
from autotrack.ui._models import ModelIndex, badges_for, model_detail, model_diff, models_list

__all__ = ["ui_routes", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"
Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler, bool], Handler]
log = logging.getLogger("autotrack.server")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_PAGE_HEADERS = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _json(data: Any, status: int = 200) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from an undecodable file name) has no UTF-8 form:
        # escaped as JSON writes it (\udcxx), not a failed page for every run in the table
        body = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str).encode("ascii")
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


async def _found(work: Awaitable[Any]) -> Any:
    """A model or version that does not exist is a 404 with the registry's message (the guard
    maps the run and artifact errors itself)."""
    from autotrack._errors import ModelNotFoundError
    from autotrack.server._body import HTTPError

    try:
        return await work
    except ModelNotFoundError as exc:
        raise HTTPError(404, f"not found: {exc}") from None


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise ValueError(f"{name} must be a whole number, not {raw!r}")
    return max(low, min(high, int(raw)))


def ui_routes(backend: Any, guard: Guard, *, token_required: bool, read_only: bool) -> list[BaseRoute]:
    """Routes for the dashboard over ``backend``; ``guard(endpoint, public)`` wraps each one."""
    index = RunIndex(backend)
    registry = ModelIndex(backend)

    def badges(run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The "churn v3, production" badges of these runs; a registry that cannot be read costs
        the badges, never the runs table."""
        try:
            return badges_for(registry, run_ids)
        except Exception as exc:  # noqa: BLE001 - logged; the table is what was asked for
            log.warning("model badges left out: %s: %s", type(exc).__name__, exc)
            return {}

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers=_PAGE_HEADERS)

    async def info(request: Request) -> Response:
        from autotrack import __version__

        return _json({"version": __version__, "token_required": token_required, "read_only": read_only})

    async def runs(request: Request) -> Response:
        q = request.query_params
        result = await run_in_threadpool(
            index.page, experiment=q.get("experiment") or None, status=q.get("status") or None,
            framework=q.get("framework") or None, text=q.get("q") or None, sort=q.get("sort") or "start_time",
            descending=q.get("order", "desc") != "asc", offset=_int(request, "offset", 0, 0, 10**9),
            limit=_int(request, "limit", 50, 1, 500), fresh=q.get("fresh") == "1")
        found = await run_in_threadpool(badges, [r["id"] for r in result["rows"]])
        for row in result["rows"]:
            if row["id"] in found:
                row["models"] = found[row["id"]]
        return _json(result)

    def _children(run_id: str) -> list[str]:
        return [r["id"] for r in index.refresh() if r.get("parent_id") == run_id]

    async def run(request: Request) -> Response:
        def build() -> dict[str, Any]:
            record = index.record(request.path_params["run_id"])
            return {**run_detail(record, _children(record.id)), "models": badges([record.id]).get(record.id, [])}

        return _json(await run_in_threadpool(build))

    async def series(request: Request) -> Response:
        names = request.query_params.getlist("name") or None
        buckets = _int(request, "buckets", 1000, 10, 5000)

        def build() -> dict[str, Any]:
            return run_series(index.record(request.path_params["run_id"]), names, buckets)

        return _json(await run_in_threadpool(build))

    async def compare_runs(request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 20:
            raise ValueError("compare needs 1 to 20 run ids: ?ids=ID,ID,...")

        def build() -> dict[str, Any]:
            return compare([index.record(i) for i in ids])

        return _json(await run_in_threadpool(build))

    async def artifact(request: Request) -> Response:
        sha = request.path_params["sha256"]

        def find() -> Any:
            record = index.record(request.path_params["run_id"])
            for art in record.artifacts:
                if art.sha256 == sha:
                    return art, art.open()
            raise FileNotFoundError(f"run {record.id[:8]} has no artifact with sha256 {sha}")

        art, fh = await run_in_threadpool(find)

        def chunks() -> Any:  # the reader checks the sha256 as the bytes go out
            with fh:
                while chunk := fh.read(1 << 20):
                    yield chunk

        filename = _SAFE_NAME.sub("_", os.path.basename(art.name)) or "artifact"
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(art.size),
            "X-Content-Type-Options": "nosniff", "X-Autotrack-Sha256": art.sha256})

    async def models(request: Request) -> Response:
        return _json(await run_in_threadpool(models_list, registry, request.query_params.get("fresh") == "1"))

    async def model(request: Request) -> Response:
        name = request.path_params["name"]
        return _json(await _found(run_in_threadpool(lambda: model_detail(registry, index.refresh(), name))))

    async def model_compare(request: Request) -> Response:
        q, name = request.query_params, request.path_params["name"]
        return _json(await _found(run_in_threadpool(model_diff, registry, index.record, name, q.get("a", ""),
                                                    q.get("b", ""))))

    public, private = (lambda h: guard(h, True)), (lambda h: guard(h, False))
    return [
        Route("/", page, methods=["GET"]),
        Route("/ui", page, methods=["GET"]),
        Route("/ui/api/info", public(info), methods=["GET"]),
        Route("/ui/api/runs", private(runs), methods=["GET"]),
        Route("/ui/api/runs/{run_id}", private(run), methods=["GET"]),
        Route("/ui/api/runs/{run_id}/series", private(series), methods=["GET"]),
        Route("/ui/api/runs/{run_id}/artifacts/{sha256}", private(artifact), methods=["GET"]),
        Route("/ui/api/compare", private(compare_runs), methods=["GET"]),
        Route("/ui/api/models", private(models), methods=["GET"]),
        Route("/ui/api/models/{name}", private(model), methods=["GET"]),
        Route("/ui/api/models/{name}/diff", private(model_compare), methods=["GET"]),
        Mount("/ui/static", app=StaticFiles(directory=STATIC_DIR), name="ui-static"),
    ]
