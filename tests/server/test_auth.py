"""The server's security model (issue 14): tokens with scopes, runs append-only for their writer,
validated documents, no deleting of shared bytes, the Host check of an open server, audit log."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest
from starlette.testclient import TestClient

import autotrack
from autotrack.backends import backend_for
from autotrack.backends._admin import get_doc, list_docs
from autotrack.cli import main as cli
from autotrack.server.app import create_app
from tests.store_conformance import make_doc

ADMIN = "legacy-admin-token"


@pytest.fixture
def served(tmp_path):
    """A server over a fresh store with the legacy admin token and one token per scope."""
    store = str(tmp_path / "store")
    tokens = {}
    for name, scope in (("reader", "read"), ("alice", "write"), ("bob", "write"), ("ops", "admin")):
        tokens[name] = _create(store, name, scope)
    client = TestClient(create_app(store, ADMIN), base_url="http://127.0.0.1")
    return store, client, tokens


def _create(store, name, scope):
    from autotrack.server._auth import Tokens

    return Tokens(backend_for(store)).create(name, scope)[0]


def _h(token):
    return {"Authorization": f"Bearer {token}"}


def _put(client, path, body, token):
    data = gzip.compress(json.dumps(body).encode())
    return client.put("/api/v1" + path, content=data, headers={**_h(token), "Content-Encoding": "gzip",
                                                                 "Content-Type": "application/json"})


def test_scopes(served):
    store, c, t = served
    run = make_doc()
    assert c.get("/api/v1/runs", headers=_h(t["reader"])).status_code == 200
    refused = _put(c, f"/runs/{run['id']}", run, t["reader"])
    assert refused.status_code == 403 and "read scope" in refused.json()["error"]
    assert _put(c, f"/runs/{run['id']}", run, t["alice"]).status_code == 200
    assert c.delete(f"/api/v1/runs/{run['id']}", headers=_h(t["alice"])).status_code == 403
    assert c.get("/api/v1/runs", headers=_h("atk_000000000000_" + "x" * 40)).status_code == 401
    assert c.get("/api/v1/whoami", headers=_h(t["bob"])).json() == {"id": c.get(
        "/api/v1/whoami", headers=_h(t["bob"])).json()["id"], "name": "bob", "scope": "write"}
    assert c.get("/api/v1/whoami", headers=_h(ADMIN)).json()["scope"] == "admin"


def test_a_second_writer_cannot_change_a_run_it_does_not_own(served):
    store, c, t = served
    run = make_doc()
    rid = run["id"]
    assert _put(c, f"/runs/{rid}", run, t["alice"]).status_code == 200
    segment = {"format": 1, "seq": 0, "params": [["lr", 0.1, 1.0]]}
    assert _put(c, f"/runs/{rid}/segments/0", segment, t["alice"]).status_code == 200
    for path, body in ((f"/runs/{rid}", dict(run, status="failed")), (f"/runs/{rid}/segments/1", dict(segment, seq=1))):
        refused = _put(c, path, body, t["bob"])
        assert refused.status_code == 403 and "belongs to token 'alice'" in refused.json()["error"]
    assert c.put(f"/api/v1/runs/{rid}/refs/{'0' * 64}", headers=_h(t["bob"])).status_code == 403
    assert _put(c, f"/runs/{rid}", dict(run, status="finished"), t["ops"]).status_code == 200  # admin may
    rec = autotrack.get_run(rid, uri=store)
    assert rec.owner == "alice" and rec.status == "finished" and rec.params == {"lr": 0.1}


def test_the_owner_is_the_servers_to_say(served):
    store, c, t = served
    run = make_doc(owner={"id": "forged", "name": "somebody else"})
    assert _put(c, f"/runs/{run['id']}", run, t["bob"]).status_code == 200
    assert autotrack.get_run(run["id"], uri=store).owner == "bob"


def test_segments_are_immutable(served):
    store, c, t = served
    run = make_doc()
    rid = run["id"]
    _put(c, f"/runs/{rid}", run, t["alice"])
    segment = {"format": 1, "seq": 0, "metrics": {"x": {"step": [0], "epoch": [None], "value": [1.0], "time_ms": [1]}}}
    assert _put(c, f"/runs/{rid}/segments/0", segment, t["alice"]).json()["status"] == "stored"
    again = _put(c, f"/runs/{rid}/segments/0", segment, t["alice"])
    assert again.status_code == 200 and again.json()["status"] == "exists"  # an idempotent resend
    other = json.loads(json.dumps(segment))
    other["metrics"]["x"]["value"] = [2.0]
    refused = _put(c, f"/runs/{rid}/segments/0", other, t["alice"])
    assert refused.status_code == 409 and "immutable" in refused.json()["error"]
    assert _put(c, f"/runs/{rid}/segments/0", other, t["ops"]).status_code == 409  # not even an admin
    assert autotrack.get_run(rid, uri=store).metrics["x"][0].value == 1.0


def test_a_run_document_only_moves_forward(served):
    store, c, t = served
    run = make_doc(name="first")
    rid = run["id"]
    _put(c, f"/runs/{rid}", run, t["alice"])
    for field, value in (("start_time", "2020-01-01T00:00:00+00:00"), ("name", "renamed"), ("experiment", "x")):
        refused = _put(c, f"/runs/{rid}", dict(run, **{field: value}), t["alice"])
        assert refused.status_code == 409 and field in refused.json()["error"]
    ended = dict(run, status="finished", end_time=run["start_time"])
    assert _put(c, f"/runs/{rid}", ended, t["alice"]).status_code == 200
    refused = _put(c, f"/runs/{rid}", dict(ended, status="failed"), t["alice"])
    assert refused.status_code == 409 and "reopened" in refused.json()["error"]
    assert _put(c, f"/runs/{rid}", dict(run, status="running"), t["alice"]).status_code == 200  # reopen
    assert _put(c, f"/runs/{rid}", dict(ended, status="failed"), t["alice"]).status_code == 200
    assert autotrack.get_run(rid, uri=store).status == "failed"


@pytest.mark.parametrize("field, value", [("start_time", "soon"), ("start_time", "2026-01-01T00:00:00"),
                                          ("heartbeat", "now"), ("name", 5), ("summary", {"metrics": []})])
def test_invalid_run_documents_are_refused_and_never_stored(served, field, value):
    store, c, t = served
    run = make_doc()
    refused = _put(c, f"/runs/{run['id']}", dict(run, **{field: value}), t["alice"])
    assert refused.status_code == 422 and field in refused.json()["error"]
    assert autotrack.runs(uri=store) == []
    assert cli(["runs", "--uri", store]) == 0


def test_invalid_segments_are_refused(served):
    store, c, t = served
    run = make_doc()
    _put(c, f"/runs/{run['id']}", run, t["alice"])
    refused = _put(c, f"/runs/{run['id']}/segments/0", {"metrics": {"x": {"step": [1, 2], "value": [1.0]}}}, t["alice"])
    assert refused.status_code == 422 and "metrics" in refused.json()["error"]


def test_no_client_deletes_bytes_and_an_admin_deletes_a_run_leaving_others_intact(served, tmp_path):
    store, c, t = served
    blob = tmp_path / "shared.bin"
    blob.write_bytes(b"shared bytes")
    unique = tmp_path / "unique.bin"
    unique.write_bytes(b"only the doomed run's")
    runs = []
    for files in ((blob, unique), (blob,)):
        with autotrack.start_run(uri=store) as run:
            for f in files:
                run.log_artifact(f)
        runs.append(run.id)
    doomed, kept = runs
    sha = hashlib.sha256(b"shared bytes").hexdigest()
    assert c.delete(f"/api/v1/artifacts/{sha}", headers=_h(ADMIN)).status_code == 405
    assert c.delete(f"/api/v1/runs/{doomed}", headers=_h(t["alice"])).status_code == 403
    gone = c.delete(f"/api/v1/runs/{doomed}", headers=_h(t["ops"]))
    assert gone.status_code == 200 and gone.json()["artifacts_freed"] == 1
    assert [r.id for r in autotrack.runs(uri=store)] == [kept]
    assert autotrack.get_run(kept, uri=store).artifacts[0].read_bytes() == b"shared bytes"
    assert c.get(f"/api/v1/artifacts/{hashlib.sha256(unique.read_bytes()).hexdigest()}",
                 headers=_h(ADMIN)).status_code == 404
    assert c.delete(f"/api/v1/runs/{doomed}", headers=_h(t["ops"])).status_code == 404


def test_audit_log_says_who_created_ended_and_deleted(served):
    store, c, t = served
    run = make_doc()
    rid = run["id"]
    _put(c, f"/runs/{rid}", run, t["alice"])
    _put(c, f"/runs/{rid}", dict(run, status="finished"), t["alice"])
    c.delete(f"/api/v1/runs/{rid}", headers=_h(t["ops"]))
    backend = backend_for(store)
    events = [get_doc(backend, "audit", day, name) for day in list_dirs(backend) for name in list_docs(backend, "audit", day)]
    assert [(e["action"], e["by"]["name"]) for e in events if e.get("run") == rid] == [
        ("run_create", "alice"), ("run_end", "alice"), ("run_delete", "ops")]


def list_dirs(backend):
    import os

    return sorted(os.listdir(os.path.join(backend.root, "_server", "audit")))


def test_revoked_token_stops_working(served):
    store, c, t = served
    assert c.get("/api/v1/runs", headers=_h(t["bob"])).status_code == 200
    assert cli(["token", "revoke", "bob", "--uri", store]) == 0
    c2 = TestClient(create_app(store, ADMIN), base_url="http://127.0.0.1")  # a fresh process's view
    assert c2.get("/api/v1/runs", headers=_h(t["bob"])).status_code == 401


def test_token_commands(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert cli(["token", "create", "ci-job", "--scope", "write", "--uri", store]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("atk_")
    assert cli(["token", "create", "ci-job", "--uri", store]) == 1  # names are unique
    assert "exists already" in capsys.readouterr().err
    assert cli(["token", "list", "--json", "--uri", store]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["name"] == "ci-job" and listed["scope"] == "write" and "hash" not in listed
    stored = (tmp_path / "store" / "_server" / "tokens" / f"{listed['id']}.json").read_text()
    assert token.split("_")[2] not in stored  # only a hash is kept
    c = TestClient(create_app(store), base_url="http://127.0.0.1")
    assert c.get("/api/v1/runs").status_code == 401  # tokens in the store: the server needs one
    assert c.get("/api/v1/runs", headers=_h(token)).status_code == 200


def test_open_server_checks_the_host_header(tmp_path):
    """Bound to loopback without a token: a DNS-rebinding page (Host: attacker.example) gets 400."""
    store = str(tmp_path / "store")
    app = create_app(store, hosts=("127.0.0.1",))
    for host, status in (("127.0.0.1:8080", 200), ("localhost:8080", 200), ("[::1]:8080", 200),
                         ("attacker.example:8080", 400), ("evil.test", 400)):
        got = TestClient(app, base_url=f"http://{host}").get("/api/v1/runs")
        assert got.status_code == status, host
        if status == 400:
            assert "Host" in got.json()["error"]
    everywhere = create_app(store, hosts=("0.0.0.0",))  # served to the network on purpose (it warns)
    assert TestClient(everywhere, base_url="http://tracker.lan:8080").get("/api/v1/runs").status_code == 200
    with_token = TestClient(create_app(store, ADMIN), base_url="http://anything.example")
    assert with_token.get("/api/v1/runs", headers=_h(ADMIN)).status_code == 200  # the token is the check


def test_cors_is_closed(served):
    store, c, t = served
    got = c.get("/api/v1/runs", headers={**_h(ADMIN), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in got.headers
    assert c.options("/api/v1/runs", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "PUT"}).status_code in (401, 405)


def test_a_real_client_with_a_write_token_records_its_run(served, tmp_path, monkeypatch):
    """The HTTP client end to end over the in-process app is covered by the server process tests;
    here the writer's documents must pass the server's own validation as they are."""
    from autotrack._schema import run_doc_problem

    store, c, t = served
    with autotrack.start_run(uri=str(tmp_path / "local")) as run:
        run.log_metric("x", 1.0)
    doc = json.loads((tmp_path / "local" / "runs" / run.id / "run.json").read_text())
    assert run_doc_problem(doc) is None
    assert _put(c, f"/runs/{run.id}", doc, t["alice"]).status_code == 200
    rid = uuid.uuid4().hex
    assert _put(c, f"/runs/{rid}/segments/0", {"format": 1, "seq": 0}, t["bob"]).status_code == 200  # before its doc
