"""The model registry over HTTP (docs/server.md, "Model registry").

The server writes a model's events itself (``_registry_store.commit`` over its store): it numbers
them with the store's conditional create, as any writer does, and records who wrote each (``by``,
the calling token's name), so no client can forge either. Registering a version and moving an
alias need ``write``; moving or deleting a protected alias (``--protected-aliases``, default
``production``) needs ``admin`` (``_rules.may_write_model``). A refusal for what the event names
(no such model, version, alias, run or artifact) carries the error's class as ``kind``, so the
client raises what the Python API raises over a file store.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from autotrack.server._body import HTTPError, read_json
from autotrack.server._gate import Gate, json_response
from autotrack.server._rules import may_write_model

__all__ = ["ModelsApi"]

Handler = Callable[[Request], Awaitable[Response]]


def _name(request: Request) -> str:
    from autotrack._registry_state import NAME

    name = request.path_params["name"]
    if not NAME.fullmatch(name):
        raise HTTPError(400, f"invalid model name {name!r}: 1-128 characters of A-Z a-z 0-9 . _ -, starting with "
                             "a letter or digit")
    return name


def _number(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) > 999_999_999:
        raise HTTPError(400, f"invalid {what} {raw!r}: 0 to 999999999")
    return int(raw)


def _refused(status: int, exc: Exception) -> Response:
    body = json.dumps({"error": str(exc), "kind": type(exc).__name__}).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json")


def _stored(request: Request, data: Any) -> Response:
    """As stored; text with no UTF-8 form (a lone surrogate) escaped as JSON escapes it."""
    try:
        return json_response(request, data)
    except UnicodeEncodeError:
        return Response(json.dumps(data, ensure_ascii=True).encode("ascii"), media_type="application/json")


class ModelsApi:
    def __init__(self, store: Any, max_json_bytes: int, protected: tuple[str, ...],
                 lock: Callable[[str], threading.Lock]) -> None:
        from autotrack._registry_state import check_name

        self.store = store
        self.max_json = max_json_bytes
        self.protected = tuple(check_name(a, "protected alias") for a in protected)
        self._lock = lock

    def resources(self, read: str, write: str) -> list[tuple[str, dict[str, tuple[Handler, str]]]]:
        return [("/models", {"GET": (self.list_models, read)}),
                ("/models/{name}", {"GET": (self.get_model, read)}),
                ("/models/{name}/events", {"GET": (self.events, read), "POST": (self.add_event, write)})]

    async def list_models(self, request: Request) -> Response:
        return json_response(request, await run_in_threadpool(self.store.list_models))

    async def get_model(self, request: Request) -> Response:
        """The current state (the newest snapshot and the events after it, replayed here)."""
        from autotrack._registry_state import state_doc
        from autotrack._registry_store import state_of

        name = _name(request)
        state = await run_in_threadpool(state_of, self.store, name)
        if state["last_seq"] < 0:
            raise HTTPError(404, f"no model {name!r}")
        return _stored(request, state_doc(state))

    async def events(self, request: Request) -> Response:
        name = _name(request)
        query = request.query_params
        unknown = sorted(set(query) - {"start", "seq"})
        if unknown:
            raise HTTPError(400, f"unknown query parameter(s) {', '.join(map(repr, unknown))}: this takes 'start' and 'seq'")
        start = _number(query.get("start", "0"), "start")
        seqs = [_number(raw, "seq") for raw in query.getlist("seq")] or None
        return _stored(request, await run_in_threadpool(self.store.read_model_events, name, start, seqs))

    async def add_event(self, request: Request) -> Response:
        from autotrack._errors import ArtifactNotFoundError, ModelNotFoundError, RunNotFoundError
        from autotrack._registry_store import check_request, commit

        name = _name(request)
        body = await read_json(request, self.max_json)
        who = Gate.caller(request)
        try:
            body = check_request(body)
        except ValueError as exc:
            raise HTTPError(422, f"invalid model event: {exc}") from None
        may_write_model(who, body, self.protected)

        def write() -> dict[str, Any]:
            with self._lock(f"model:{name}"):  # this process's writers in turn; other processes meet at the store
                return commit(self.store, name, body, who.name)

        try:
            event = await run_in_threadpool(write)
        except (ModelNotFoundError, RunNotFoundError, ArtifactNotFoundError) as exc:
            return _refused(404, exc)
        except ValueError as exc:  # the artifact was logged again since the client looked (sha256)
            return _refused(409, exc)
        return json_response(request, event, status=201)
