"""The HTTP backend's standard-library transport (backends/_http_transport.py), against small
fake servers on loopback (and the real one for a streamed download), plus the proxy rule."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from autotrack import BackendUnavailableError
from autotrack.backends._http_transport import TransportError, proxy_for
from autotrack.backends.http import HttpBackend
from tests.server.helpers import ROOT, TOKEN, child_env, free_port


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)


class FakeServer:
    """A threaded HTTP/1.1 server; ``answer(handler, body)`` returns (status, headers, body)."""

    def __init__(self, answer, close_after_each=False):
        self.requests: list[dict] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": body})
                status, headers, payload = answer(self, body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                if close_after_each:  # a server that drops idle connections without saying so
                    self.close_connection = True

            do_GET = do_PUT = do_HEAD = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(status, data, **headers):
    return lambda handler, body: (status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode())


def test_connection_refused_is_a_connection_error_fast():
    backend = HttpBackend(f"http://127.0.0.1:{free_port()}", token="t")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot reach the autotrack server"):
        backend.update_run("a" * 32, {"id": "a" * 32})
    assert time.monotonic() - started < 1.5


def test_slow_server_read_timeout(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_HTTP_TIMEOUT", "0.5")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never answers
    try:
        backend = HttpBackend(f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="timed out"):
            backend.update_run("a" * 32, {"id": "a" * 32})
        assert 0.4 < time.monotonic() - started < 3
    finally:
        listener.close()


def test_gzip_body_token_header_and_kept_alive_connection():
    with FakeServer(_json(200, {"ok": True})) as fake:
        backend = HttpBackend(fake.url + "/prefix/", token=" secret ")
        doc = {"id": "a" * 32, "params": {"lr": 0.01}, "name": "ü"}
        backend.update_run("a" * 32, doc)
        backend.append("a" * 32, 7, {"format": 1, "seq": 7})
        assert backend.release_artifact("a" * 32, "0" * 64) is False
        first, second, third = fake.requests
        assert (first["method"], first["path"]) == ("PUT", "/prefix/api/v1/runs/" + "a" * 32)
        assert second["path"] == "/prefix/api/v1/runs/" + "a" * 32 + "/segments/7"
        assert (third["method"], third["path"]) == ("DELETE", "/prefix/api/v1/runs/" + "a" * 32 + "/refs/" + "0" * 64)
        for req in (first, second):
            assert req["headers"]["Content-Encoding"] == "gzip"
            assert req["headers"]["Content-Type"] == "application/json"
        assert json.loads(gzip.decompress(first["body"])) == doc
        assert all(r["headers"]["Authorization"] == "Bearer secret" for r in fake.requests)
        assert fake.connections == 1  # one kept-alive connection for all three
        backend.close()


def test_gzip_response_is_decoded():
    runs = [{"id": f"{i:032x}", "name": "x" * 50} for i in range(100)]

    def answer(handler, body):
        assert "gzip" in handler.headers.get("Accept-Encoding", "")
        return 200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(json.dumps(runs).encode())

    with FakeServer(answer) as fake:
        assert HttpBackend(fake.url).list_runs() == runs


def test_connection_closed_by_the_server_while_idle_is_replaced():
    with FakeServer(_json(200, []), close_after_each=True) as fake:
        backend = HttpBackend(fake.url)
        assert backend.list_runs() == [] and backend.list_runs() == [] and backend.list_runs() == []
        assert fake.connections == 3


@pytest.mark.parametrize("status, error, match", [
    (401, PermissionError, r"refused the token \(set AUTOTRACK_TOKEN\): bad token"),
    (403, PermissionError, "refused the token"),
    (404, FileNotFoundError, r"PUT /runs/a+: HTTP 404: bad token"),
    (400, ValueError, "HTTP 400: bad token"),
    (422, ValueError, "HTTP 422: bad token"),
    (413, OSError, "HTTP 413: bad token"),
    (500, OSError, "HTTP 500: bad token"),
])
def test_http_errors_map_to_the_protocol_errors(status, error, match):
    with FakeServer(_json(status, {"error": "bad token"})) as fake:
        with pytest.raises(error, match=match) as caught:
            HttpBackend(fake.url).update_run("a" * 32, {"id": "a" * 32})
        assert not isinstance(caught.value, ConnectionError)


def test_non_json_error_page_and_retried_503():
    with FakeServer(lambda h, b: (503, {"Content-Type": "text/html"}, b"<html>proxy says no</html>")) as fake:
        with pytest.raises(OSError, match=r"GET /runs: HTTP 503: <html>proxy says no</html>"):
            HttpBackend(fake.url).list_runs()
        assert len(fake.requests) == 3  # reads retry 502/503/504 with backoff


def test_redirects_are_not_followed():
    with FakeServer(lambda h, b: (301, {"Location": "http://elsewhere.invalid/"}, b"")) as fake:
        HttpBackend(fake.url).update_run("a" * 32, {"id": "a" * 32})  # taken as an answer, never followed
        assert len(fake.requests) == 1


def test_streamed_upload_and_download_verified(server, token_env, tmp_path):
    blob = tmp_path / "weights.bin"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several chunks
    backend = HttpBackend(server.url)
    sha, size = backend.put_artifact(str(blob))
    assert (sha, size) == (hashlib.sha256(blob.read_bytes()).hexdigest(), blob.stat().st_size)
    digest = hashlib.sha256()
    with backend.open_artifact(sha) as fh:
        assert fh.readable()
        while chunk := fh.read(100_000):
            digest.update(chunk)
    assert digest.hexdigest() == sha
    with backend.open_artifact(sha) as fh:  # closed half-read: that connection is not reused
        fh.read(10)
    assert backend.list_runs() is not None
    with pytest.raises(FileNotFoundError):
        backend.open_artifact("f" * 64)


def test_download_cut_short_is_an_oserror():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve_once():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        conn.close()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        with HttpBackend(f"http://127.0.0.1:{listener.getsockname()[1]}").open_artifact("0" * 64) as fh:
            with pytest.raises(OSError, match="artifact download broke off"):
                fh.read()
    finally:
        thread.join(5)
        listener.close()


def test_proxy_rule(monkeypatch):
    assert proxy_for("http://tracker:8080") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert proxy_for("http://tracker:8080") is None  # only https goes through it
    assert proxy_for("https://tracker") == ("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy:1080")
    assert proxy_for("http://tracker:8080") == ("ALL_PROXY", "socks5://proxy:1080")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal,10.0.0.5")
    assert proxy_for("https://tracker.internal") is None
    assert proxy_for("http://10.0.0.5:8080") is None
    assert proxy_for("https://tracker.example.com") == ("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_for("https://tracker") is None


def test_a_proxy_goes_through_httpx(monkeypatch):
    pytest.importorskip("httpx")
    with FakeServer(_json(200, [])) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        backend = HttpBackend("http://tracker.invalid:8080", token=TOKEN)
        assert backend.list_runs() == []
        assert backend._client._httpx is not None
        assert proxy.requests[0]["path"] == "http://tracker.invalid:8080/api/v1/runs"  # absolute URI: a proxy request
        assert proxy.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_a_proxy_without_httpx_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    with pytest.raises(BackendUnavailableError, match=r"https_proxy sends https://tracker through a proxy, which needs httpx: "
                                      r"pip install 'autotrack-ml\[server\]' \(or add the host to NO_PROXY\)"):
        HttpBackend("https://tracker")
    monkeypatch.setenv("no_proxy", "tracker")
    assert HttpBackend("https://tracker") is not None


_NO_HTTPX = """
import sys
sys.modules["httpx"] = None  # as if not installed
import autotrack
with autotrack.start_run(uri=sys.argv[1], name="stdlib") as run:
    run.log_metrics({"loss": 0.5}, step=1)
    run.log_artifact(sys.argv[2])
record = autotrack.get_run(run.id, uri=sys.argv[1])
assert record.metrics["loss"][0].value == 0.5, record.metrics
assert record.artifacts[0].read_bytes() == open(sys.argv[2], "rb").read()
assert "httpx" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""


def test_client_works_without_httpx(server, tmp_path):
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"bytes" * 1000)
    env = {k: v for k, v in child_env(AUTOTRACK_TOKEN=TOKEN, AUTOTRACK_SPOOL_DIR=str(tmp_path / "spool")).items()
           if not k.lower().endswith("_proxy")}
    result = subprocess.run([sys.executable, "-c", _NO_HTTPX, server.url, str(blob)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_transport_error_is_an_oserror():
    assert issubclass(TransportError, OSError)


def test_https_verifies_the_server_with_the_system_store(tmp_path, monkeypatch):
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    with FakeServer(_json(200, [{"id": "a" * 32}])) as fake:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        fake.httpd.socket = context.wrap_socket(fake.httpd.socket, server_side=True)
        url = fake.url.replace("http://", "https://")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the CA store that ssl.create_default_context() loads
        assert HttpBackend(url).list_runs() == [{"id": "a" * 32}]
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            HttpBackend(url).list_runs()
