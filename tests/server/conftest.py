"""Servers for the server tests: real processes on 127.0.0.1, one per session where possible."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from tests.server.helpers import ROOT, TOKEN, ServerProcess  # noqa: E402


@pytest.fixture(scope="session")
def multi_server(tmp_path_factory):
    """One process serving a fresh store per URL prefix (for the conformance suite)."""
    root = tmp_path_factory.mktemp("multistore")
    port_server = ServerProcess(str(root), token=TOKEN)
    port_server.command = [sys.executable, "-m", "tests.server.multistore", str(root), str(port_server.port)]
    port_server.start()
    port_server.root = root
    yield port_server
    port_server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """``autotrack serve`` with a token over a local store, shared by the API tests."""
    store = tmp_path_factory.mktemp("served") / "store"
    proc = ServerProcess(str(store), token=TOKEN, log=store.parent / "server.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_TOKEN", TOKEN)
    return TOKEN


__all__ = ["ROOT"]
