"""The model registry over HTTP: who may register and move which alias, who wrote each event (the
server says, from the token), the Python API against real server processes (one of them with two
workers numbering events into one store), and a deleted run that frees no registered bytes.
The cases every backend runs, HTTP included, are in tests/store_registry.py."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.testclient import TestClient

import autotrack
from autotrack.backends import backend_for
from autotrack.backends import base as _base
from autotrack.server.app import ENV_PROTECTED, create_app, protected_from_env
from tests.server.helpers import TOKEN, ServerProcess
from tests.store_registry import at_once, logged_run


def _tokens(store: str) -> dict[str, str]:
    from autotrack.server._auth import Tokens

    tokens = Tokens(backend_for(store))
    return {name: tokens.create(name, scope)[0] for name, scope in
            (("reader", "read"), ("alice", "write"), ("ops", "admin"))}


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.fixture
def served(tmp_path):
    store = str(tmp_path / "store")
    run = logged_run(store, tmp_path / "r", {"model.joblib": (b"weights", "model"), "e.ckpt": (b"c", "checkpoint")})
    tokens = _tokens(store)
    app = create_app(store, TOKEN, protected_aliases=("production", "champion"))
    return store, TestClient(app, base_url="http://127.0.0.1"), tokens, run


def _post(client, token, body, name="churn"):
    return client.post(f"/api/v1/models/{name}/events", content=json.dumps(body), headers=_h(token))


def test_scopes_and_protected_aliases(served):
    store, c, t, run = served
    register = {"action": "register", "run_id": run.id, "artifact": "model.joblib", "by": "mallory"}
    refused = _post(c, t["reader"], register)
    assert refused.status_code == 403 and "read scope" in refused.json()["error"]
    made = _post(c, t["alice"], register)
    assert made.status_code == 201, made.text
    event = made.json()
    assert (event["seq"], event["version"], event["by"]) == (0, 1, "alice")  # never the client's "by"
    assert _post(c, t["alice"], {"action": "set_alias", "alias": "staging", "version": 1}).status_code == 201
    for alias in ("production", "champion"):
        refused = _post(c, t["alice"], {"action": "set_alias", "alias": alias, "version": 1})
        assert refused.status_code == 403
        assert f"alias {alias!r} is protected on this server" in refused.json()["error"]
        assert "admin" in refused.json()["error"]
        assert _post(c, t["ops"], {"action": "set_alias", "alias": alias, "version": 1}).status_code == 201
    refused = _post(c, t["alice"], {"action": "delete_alias", "alias": "production"})
    assert refused.status_code == 403  # deleting a protected alias: the same rule
    assert _post(c, t["alice"], {"action": "delete_alias", "alias": "staging"}).status_code == 201
    assert _post(c, t["ops"], {"action": "delete_alias", "alias": "production"}).status_code == 201
    history = autotrack.model_history("churn", uri=store)
    assert [(e.action, e.alias, e.by) for e in history] == [
        ("register", None, "alice"), ("set_alias", "staging", "alice"), ("set_alias", "production", "ops"),
        ("set_alias", "champion", "ops"), ("delete_alias", "staging", "alice"), ("delete_alias", "production", "ops")]
    state = c.get("/api/v1/models/churn", headers=_h(t["reader"])).json()
    assert (state["aliases"], state["versions"], state["upto"]) == ({"champion": 1}, {"1": 0}, 6)
    assert c.get("/api/v1/models", headers=_h(t["reader"])).json() == ["churn"]
    events = c.get("/api/v1/models/churn/events?start=4", headers=_h(t["reader"])).json()
    assert [e["seq"] for e in events] == [4, 5]
    events = c.get("/api/v1/models/churn/events?seq=0&seq=3", headers=_h(t["reader"])).json()
    assert [e["seq"] for e in events] == [0, 3]


def test_default_protects_production_only(tmp_path):
    store = str(tmp_path / "store")
    run = logged_run(store, tmp_path / "r", {"m.bin": (b"m", "model")})
    t = _tokens(store)
    c = TestClient(create_app(store, TOKEN), base_url="http://127.0.0.1")
    assert _post(c, t["alice"], {"action": "register", "run_id": run.id}).status_code == 201
    assert _post(c, t["alice"], {"action": "set_alias", "alias": "champion", "version": 1}).status_code == 201
    assert _post(c, t["alice"], {"action": "set_alias", "alias": "production", "version": 1}).status_code == 403
    none = TestClient(create_app(store, TOKEN, protected_aliases=()), base_url="http://127.0.0.1")
    assert _post(none, t["alice"], {"action": "set_alias", "alias": "production", "version": 1}).status_code == 201


def test_protected_aliases_reach_the_workers(monkeypatch):
    monkeypatch.delenv(ENV_PROTECTED, raising=False)
    assert protected_from_env() == ("production",)
    monkeypatch.setenv(ENV_PROTECTED, "production, champion")
    assert protected_from_env() == ("production", "champion")
    monkeypatch.setenv(ENV_PROTECTED, "")
    assert protected_from_env() == ()
    with pytest.raises(ValueError, match="invalid protected alias"):
        create_app("unused-store", protected_aliases=("prod uction",))


def test_serve_takes_protected_aliases(tmp_path, monkeypatch, capsys):
    """``autotrack serve --protected-aliases`` reaches every worker (through the environment);
    a bad alias is one line before anything is served."""
    import uvicorn

    from autotrack import _cli_server
    from autotrack.cli import main
    from autotrack.server import app as _app

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(protected_from_env()))
    monkeypatch.setattr(_cli_server, "check_bind", lambda host, port: None)
    for name in (ENV_PROTECTED, _app.ENV_STORE, _app.ENV_TOKEN, _app.ENV_HOSTS):
        monkeypatch.setenv(name, "")  # serve() sets them: put back after the test
    store = str(tmp_path / "store")
    for given, expected in ((["--protected-aliases", "production, champion"], ("production", "champion")),
                            (["--protected-aliases", ""], ()), ([], ("production",))):
        assert main(["serve", "--uri", store, *given]) == 0
        assert served[-1] == expected
    assert main(["serve", "--uri", store, "--protected-aliases", "prod uction"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("autotrack: error:") and "invalid protected alias 'prod uction'" in err
    assert len(served) == 3


def test_refusals_name_what_is_wrong(served):
    store, c, t, run = served
    cases = [
        ({"action": "register", "run_id": "f" * 32}, 404, "RunNotFoundError"),
        ({"action": "register", "run_id": run.id, "artifact": "nope.bin"}, 404, "ArtifactNotFoundError"),
        ({"action": "register", "run_id": run.id, "sha256": "0" * 64}, 409, "ValueError"),
        ({"action": "set_alias", "alias": "staging", "version": 1}, 404, "ModelNotFoundError"),
    ]
    for body, status, kind in cases:
        got = _post(c, t["alice"], body)
        assert (got.status_code, got.json().get("kind")) == (status, kind), got.text
    for body in ({"action": "rename"}, {"action": "register"}, {"action": "set_alias", "alias": "latest", "version": 1},
                 {"action": "set_alias", "alias": "a b", "version": 1}, {"action": "set_alias", "alias": "x",
                                                                         "version": 0}, [1], {"action": "register",
                                                                                              "run_id": None}):
        got = _post(c, t["alice"], body)
        assert got.status_code == 422, (body, got.text)
    assert _post(c, t["alice"], {"action": "register", "run_id": run.id}, name="-bad").status_code == 400
    assert c.get("/api/v1/models/nope", headers=_h(t["reader"])).status_code == 404
    for query in ("start=-1", "start=x", "seq=1e3", "seq=", "start=1000000000", "start=0&limit=5", "x=1"):
        assert c.get(f"/api/v1/models/churn/events?{query}", headers=_h(t["reader"])).status_code == 400, query
    assert c.get("/api/v1/models/nope/events", headers=_h(t["reader"])).json() == []
    assert not (autotrack.models(uri=store))  # nothing refused was stored


def test_openapi_documents_the_registry(served):
    _store, c, t, _run = served
    spec = c.get("/api/v1/openapi.json", headers=_h(t["reader"])).json()
    assert {"/api/v1/models", "/api/v1/models/{name}", "/api/v1/models/{name}/events"} <= set(spec["paths"])
    assert spec["paths"]["/api/v1/models/{name}/events"]["post"]["requestBody"]["content"]["application/json"]
    assert {"ModelEvent", "ModelEventRequest", "ModelState"} <= set(spec["components"]["schemas"])


@pytest.fixture
def scoped_server(tmp_path):
    store = str(tmp_path / "store")
    tokens = _tokens(store)
    proc = ServerProcess(store, token=TOKEN, log=tmp_path / "server.log").start()
    yield proc, store, tokens
    proc.stop()


def _as(monkeypatch, url: str, token: str) -> None:
    """The Python API with another token (one client per URI is kept: drop it)."""
    monkeypatch.setenv("AUTOTRACK_TOKEN", token)
    _base._instances.pop(url, None)


def test_python_api_over_a_server_with_scoped_tokens(scoped_server, tmp_path, monkeypatch):
    proc, store, t = scoped_server
    url = proc.url
    _as(monkeypatch, url, t["alice"])
    with autotrack.start_run(uri=url) as run:
        (tmp_path / "model.pt").write_bytes(b"served weights")
        run.log_artifact(str(tmp_path / "model.pt"), kind="model")
    v = autotrack.register_model("churn", run=run.id, uri=url)
    assert (v.version, v.by, v.uri) == (1, "alice", url)
    assert autotrack.set_alias("churn", "staging", 1, uri=url).aliases == ["staging"]
    with pytest.raises(PermissionError, match="alias 'production' is protected on this server"):
        autotrack.set_alias("churn", "production", 1, uri=url)
    with pytest.raises(autotrack.ModelNotFoundError):
        autotrack.set_alias("churn", "staging", 5, uri=url)
    _as(monkeypatch, url, t["reader"])
    with pytest.raises(PermissionError):
        autotrack.register_model("churn", run=run.id, uri=url)
    assert autotrack.get_model("churn@staging", uri=url).read_bytes() == b"served weights"
    _as(monkeypatch, url, t["ops"])
    autotrack.set_alias("churn", "production", 1, uri=url)
    assert [(e.action, e.by) for e in autotrack.model_history("churn", uri=url)] == [
        ("register", "alice"), ("set_alias", "alice"), ("set_alias", "ops")]
    assert autotrack.get_model("churn@production", uri=store).by == "alice"  # the same log, read off the store

    # deleting the run (admin) releases its references; the registered version keeps its bytes
    deleted = httpx.delete(f"{url}/api/v1/runs/{run.id}", headers=_h(t["ops"]))
    assert deleted.status_code == 200 and deleted.json()["artifacts_freed"] == 0
    mv = autotrack.get_model("churn@production", uri=url)
    assert mv.read_bytes() == b"served weights"
    with pytest.raises(autotrack.RunNotFoundError, match="no longer in the store"):
        mv.run


def test_two_server_workers_number_events_into_one_store(tmp_path, monkeypatch):
    """Two server processes over one store: each event a conditional create, so concurrent
    registrations through both get distinct numbers and none is lost."""
    store = str(tmp_path / "store")
    runs = [logged_run(store, tmp_path / str(i), {"m.bin": (f"m{i}".encode(), "model")}) for i in range(4)]
    proc = ServerProcess(store, None, TOKEN, "--workers", "2", log=tmp_path / "server.log").start()
    try:
        _as(monkeypatch, proc.url, TOKEN)
        got = at_once(lambda i: [autotrack.register_model("m", run=runs[i].id, uri=proc.url).version
                                 for _ in range(4)], 4)
    finally:
        proc.stop()
    assert sorted(n for ns in got.values() for n in ns) == list(range(1, 17))
    assert [e.seq for e in autotrack.model_history("m", uri=store)] == list(range(16))
