"""Test-wide settings: strict mode (autotrack's own errors raise), fast flushes and heartbeats,
and a private spool folder so no test writes to the real home directory."""

from __future__ import annotations

import os

import pytest

os.environ["AUTOTRACK_STRICT"] = "1"
os.environ.setdefault("AUTOTRACK_FLUSH_SECONDS", "0.2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Each test gets its own default store, spool dir and working directory."""
    monkeypatch.setenv("AUTOTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("AUTOTRACK_URI", raising=False)
    monkeypatch.delenv("AUTOTRACK_EXPERIMENT", raising=False)
    monkeypatch.chdir(tmp_path)
    import autotrack._safety as _safety

    _safety._warned.clear()  # "warned once per kind" is per process; each test starts afresh
    yield
    import autotrack._run as _run

    for run in _run.active_runs():  # a failing test must not leak its run into the next
        try:
            run.finish("failed", "test ended with the run open")
        except Exception:
            pass
    from autotrack import _autolog

    if _autolog._settings is not None or _autolog._wanted:  # nor its autolog(): patches would stay on
        import autotrack

        autotrack.autolog(disable=True)


@pytest.fixture
def lenient(monkeypatch):
    """Non-strict mode, as users run: autotrack's errors are warnings, never exceptions."""
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")


@pytest.fixture
def store(tmp_path):
    """A fresh local store URI."""
    return str(tmp_path / "store")


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server for the whole session (see tests/s3_server.py); skipped without moto/s3fs."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    from tests.s3_server import S3Server

    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(s3_server):
    """A fresh bucket on the moto server; the store URI is ``s3://<bucket>/runs``."""
    return f"s3://{s3_server.make_bucket()}/runs"
