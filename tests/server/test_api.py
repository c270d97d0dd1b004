"""The REST API as a client sees it: auth, validation, limits, idempotency (live server)."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import httpx
import pytest

from autotrack.backends.http import HttpBackend
from tests.server.helpers import TOKEN, ServerProcess

ROUTES = [("GET", "/runs"), ("GET", "/runs/abc"), ("PUT", "/runs/abc"), ("GET", "/runs/abc/segments"),
          ("PUT", "/runs/abc/segments/0"), ("HEAD", "/artifacts/" + "0" * 64), ("GET", "/artifacts/" + "0" * 64),
          ("PUT", "/artifacts/" + "0" * 64), ("PUT", "/runs/abc/refs/" + "0" * 64),
          ("DELETE", "/runs/abc/refs/" + "0" * 64), ("GET", "/openapi.json")]


def _api(server, method, path, **kwargs):
    headers = dict(server.headers(), **kwargs.pop("headers", {}))
    return httpx.request(method, server.url + "/api/v1" + path, headers=headers, timeout=10, **kwargs)


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN])
def test_missing_or_wrong_token_is_401(server, auth):
    headers = {} if auth is None else {"Authorization": auth}
    for method, path in ROUTES:
        response = httpx.request(method, server.url + "/api/v1" + path, headers=headers, content=b"{}", timeout=10)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
    assert _api(server, "GET", "/health", headers={"Authorization": "Bearer wrong"}).status_code == 200


def test_client_without_token_gets_one_clear_error(server, monkeypatch):
    monkeypatch.delenv("AUTOTRACK_TOKEN", raising=False)
    with pytest.raises(PermissionError, match="AUTOTRACK_TOKEN"):
        HttpBackend(server.url).list_runs()
    assert HttpBackend(server.url, token=TOKEN).list_runs() is not None


def test_openapi_spec_at_stable_path(server):
    spec = _api(server, "GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/runs/{run_id}/segments/{seq}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("path", [
    "/runs/../segments", "/runs/..%2f..%2fetc/segments", "/runs/%2e%2e/segments", "/runs/%2E%2E",
    "/runs/%2fetc%2fpasswd/segments", "/runs/..%5c..%5cx/segments", "/runs/-x/segments", "/runs/a%00b/segments",
    "/runs/" + "a" * 200, "/runs/abc/segments/-1", "/runs/abc/segments/1e3",
    "/runs/abc/segments/%2e%2e", "/runs/abc/segments/999999999", "/artifacts/..%2f..%2fruns",
    "/artifacts/" + "A" * 64, "/artifacts/" + "0" * 63, "/artifacts/%2e%2e", "/artifacts/%2fetc%2fpasswd",
])
def test_traversal_and_bad_ids_refused(server, path):
    for method in ("GET", "PUT"):
        response = _api(server, method, path, content=b'{"format": 1}')
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert response.status_code != 401
    store = server.store
    import os

    # nothing was written outside the store, nor any odd name inside it
    for dirpath, dirs, files in os.walk(store):
        for name in dirs + files:
            assert ".." not in name and "etc" not in name and "passwd" not in name


@pytest.mark.parametrize("body, headers", [
    (b"{not json", {}), (b"", {}), (b"[1, 2]", {}), (b'"text"', {}), (b"\xff\xfe", {}),
    (b'{"x": NaN}', {}), (b"[" * 100_000, {}), (b"not gzip", {"Content-Encoding": "gzip"}),
    (gzip.compress(b"{bad"), {"Content-Encoding": "gzip"}), (gzip.compress(b"{}")[:-4], {"Content-Encoding": "gzip"}),
    (b"{}", {"Content-Encoding": "br"}),
])
def test_malformed_bodies_are_4xx(server, body, headers):
    run_id = uuid.uuid4().hex
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/segments/0"):
        response = _api(server, "PUT", path, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, body[:20], response.status_code, response.text)
        assert response.json()["error"]


def test_mismatched_ids_in_body_refused(server):
    run_id = uuid.uuid4().hex
    assert _api(server, "PUT", f"/runs/{run_id}", json={"id": "other"}).status_code == 422
    assert _api(server, "PUT", f"/runs/{run_id}/segments/1", json={"seq": 2}).status_code == 422
    assert _api(server, "PUT", f"/runs/{run_id}/segments/1", json={"run_id": "x"}).status_code == 422


def test_segment_put_twice_is_one_segment(server):
    run_id = uuid.uuid4().hex
    assert _api(server, "PUT", f"/runs/{run_id}", json={"id": run_id, "status": "running"}).status_code == 200
    segment = gzip.compress(json.dumps({"format": 1, "seq": 0, "metrics": {"x": {"step": [1], "epoch": [None],
                                        "value": [0.5], "time_ms": [1]}}}).encode())
    for _ in range(3):
        response = _api(server, "PUT", f"/runs/{run_id}/segments/0", content=segment,
                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert response.status_code == 200
    segments = _api(server, "GET", f"/runs/{run_id}/segments").json()
    assert [s["seq"] for s in segments] == [0] and segments[0]["run_id"] == run_id
    assert _api(server, "GET", f"/runs/{run_id}").json()["status"] == "running"
    assert _api(server, "GET", f"/runs/{uuid.uuid4().hex}").status_code == 404


def test_artifact_upload_verified_and_deduplicated(server):
    data = b"model weights " * 5000
    sha = hashlib.sha256(data).hexdigest()
    assert _api(server, "HEAD", f"/artifacts/{sha}").status_code == 404
    bad = _api(server, "PUT", f"/artifacts/{sha}", content=data + b"!")
    assert bad.status_code == 422 and "sha256" in bad.json()["error"]
    assert _api(server, "HEAD", f"/artifacts/{sha}").status_code == 404  # nothing half-stored
    assert _api(server, "PUT", f"/artifacts/{sha}", content=iter([data[:1000], data[1000:]])).status_code == 201
    again = _api(server, "PUT", f"/artifacts/{sha}", content=data)
    assert again.status_code == 200 and again.json()["status"] == "exists"
    assert _api(server, "GET", f"/artifacts/{sha}").content == data
    # no client can delete stored bytes: only a run's own reference, and the bytes go with the last one
    assert _api(server, "DELETE", f"/artifacts/{sha}").status_code == 405
    assert _api(server, "GET", f"/artifacts/{sha}").content == data
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    # bytes stored with no reference (as before reference records existed) are kept for good
    assert _api(server, "PUT", f"/runs/{a}/refs/{sha}").status_code == 200
    assert _api(server, "DELETE", f"/runs/{a}/refs/{sha}").json()["freed"] is False
    assert _api(server, "GET", f"/artifacts/{sha}").content == data
    # the client's way: each run's reference first, then the bytes; freed with the last reference
    data2 = b"other weights " * 100
    sha2 = hashlib.sha256(data2).hexdigest()
    for run_id in (a, b):
        assert _api(server, "PUT", f"/runs/{run_id}/refs/{sha2}").status_code == 200
    assert _api(server, "PUT", f"/artifacts/{sha2}", content=data2).status_code == 201
    assert _api(server, "DELETE", f"/runs/{a}/refs/{sha2}").json()["freed"] is False
    assert _api(server, "GET", f"/artifacts/{sha2}").content == data2
    assert _api(server, "DELETE", f"/runs/{b}/refs/{sha2}").json()["freed"] is True
    assert _api(server, "GET", f"/artifacts/{sha2}").status_code == 404


def test_body_limits_413(tmp_path):
    small = ServerProcess(str(tmp_path / "store"), None, TOKEN, "--max-json-mb", "1", "--max-artifact-mb", "1").start()
    try:
        run_id = uuid.uuid4().hex
        big = json.dumps({"format": 1, "pad": "x" * (2 * 1024 * 1024)}).encode()
        assert _api(small, "PUT", f"/runs/{run_id}/segments/0", content=big).status_code == 413
        # no Content-Length (chunked) and a gzip bomb are bounded too
        assert _api(small, "PUT", f"/runs/{run_id}/segments/0", content=iter([big])).status_code == 413
        bomb = gzip.compress(b'{"pad": "' + b"0" * (50 * 1024 * 1024) + b'"}')
        response = _api(small, "PUT", f"/runs/{run_id}", content=bomb, headers={"Content-Encoding": "gzip"})
        assert response.status_code == 413 and len(bomb) < 1024 * 1024
        blob = b"\0" * (2 * 1024 * 1024)
        response = _api(small, "PUT", f"/artifacts/{hashlib.sha256(blob).hexdigest()}", content=iter([blob]))
        assert response.status_code == 413
        assert not list((tmp_path / "store").rglob("*.json")) if (tmp_path / "store").exists() else True
    finally:
        small.stop()


def test_unknown_routes_and_methods_are_4xx(server):
    assert _api(server, "GET", "/nope").status_code == 404
    assert _api(server, "POST", "/runs").status_code == 405
    assert httpx.get(server.url + "/nope", timeout=5).status_code == 404
    assert httpx.post(server.url + "/", timeout=5).status_code == 405
    page = httpx.get(server.url + "/", timeout=5)  # the dashboard (docs/ui.md)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
