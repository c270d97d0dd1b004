"""Reading through the server: the Python API and the CLI; configuration errors in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import autotrack
from autotrack import BackendUnavailableError
from autotrack.backends import backend_for
from autotrack.cli import main
from tests.server.helpers import ROOT, TOKEN, child_env


def test_python_api_and_cli_read_through_server(server, token_env, tmp_path, capsys):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights" * 100)
    with autotrack.start_run(uri=server.url, name="via-http", params={"lr": 0.01}, tags={"team": "a"}) as run:
        run.log_metrics({"loss": 0.5}, step=1)
        run.log_artifact(model, kind="model")
    assert run.id in [r.id for r in autotrack.runs(uri=server.url)]
    record = autotrack.get_run(run.id[:10], uri=server.url)
    assert (record.name, record.params, record.tags) == ("via-http", {"lr": 0.01}, {"team": "a"})

    assert main(["runs", "--uri", server.url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert run.id in [r["id"] for r in listed]
    assert main(["show", run.id, "--uri", server.url]) == 0
    assert "via-http" in capsys.readouterr().out
    assert main(["get", run.id, "model.pt", "--uri", server.url, "-o", str(tmp_path / "out.pt")]) == 0
    assert (tmp_path / "out.pt").read_bytes() == model.read_bytes()


def test_cli_wrong_token_is_one_line(server):
    result = subprocess.run([sys.executable, "-m", "autotrack", "runs", "--uri", server.url], cwd=ROOT,
                            env=child_env(AUTOTRACK_TOKEN="wrong"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "token" in result.stderr and "Traceback" not in result.stderr


def test_missing_httpx_matters_only_behind_a_proxy(monkeypatch):
    """The client speaks HTTP with the standard library; httpx is needed only for a proxy."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setitem(sys.modules, "httpx", None)
    assert backend_for("http://127.0.0.1:9/direct-" + TOKEN) is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    with pytest.raises(BackendUnavailableError, match=r"HTTPS_PROXY .*pip install 'autotrack-ml\[server\]'"):
        backend_for("https://127.0.0.1:9/nowhere-" + TOKEN)


def test_serve_refuses_a_server_uri_as_store(capsys):
    assert main(["serve", "--uri", "http://127.0.0.1:9"]) == 1
    assert "not a server URI" in capsys.readouterr().err


def test_sync_with_nothing_to_do(tmp_path, capsys):
    (tmp_path / "empty").mkdir()  # a spool folder named that does not exist is an error (tests/core/test_cli_errors.py)
    assert main(["sync", str(tmp_path / "empty"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == []


def test_serve_defaults_to_the_local_store_but_never_a_server_uri(server, capsys, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_URI", "http://127.0.0.1:1")  # a client setting: not a store to serve
    assert main(["serve", "--port", str(server.port)]) == 1
    assert "not a server URI" in capsys.readouterr().err
    monkeypatch.delenv("AUTOTRACK_URI")
    assert main(["serve", "--port", str(server.port)]) == 1  # ./autotrack-runs; the port is taken
    assert "cannot listen" in capsys.readouterr().err


def test_serve_port_in_use_is_one_line(server, capsys):
    assert main(["serve", "--uri", "store", "--port", str(server.port)]) == 1
    assert "cannot listen" in capsys.readouterr().err
