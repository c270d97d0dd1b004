"""Delivery when the server dies, restarts, is absent, or runs several workers (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

import autotrack
from tests.core.helpers import python
from tests.server.helpers import ROOT, TOKEN, ServerProcess, child_env, free_port


def _client(uri, n, pause, tmp_path, *extra, **env):
    return subprocess.Popen([sys.executable, "-m", "tests.server.client_script", uri, str(n), str(pause), *extra],
                            cwd=ROOT, env=child_env(AUTOTRACK_TOKEN=TOKEN, AUTOTRACK_SPOOL_DIR=str(tmp_path / "spool"),
                                                    AUTOTRACK_FLUSH_SECONDS="0.2", **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_complete(run, n):
    assert run.status == "finished"
    points = run.metrics["loss"]
    assert [p.step for p in points] == list(range(n))  # every point, once, in order
    assert [p.value for p in points] == [float(i) for i in range(n)]


def test_server_killed_and_restarted_mid_run(tmp_path, token_env):
    server = ServerProcess(str(tmp_path / "store"), log=tmp_path / "server.log").start()
    client = _client(server.url, 400, 0.01, tmp_path)
    try:
        run_id = client.stdout.readline().strip()
        time.sleep(1.0)
        server.kill()  # SIGKILL: no goodbye
        time.sleep(1.5)
        server.start()
        out, err = client.communicate(timeout=90)
    finally:
        client.kill()
        server.stop()
    assert client.returncode == 0, err
    server.start()
    try:
        _assert_complete(autotrack.get_run(run_id, uri=server.url), 400)
    finally:
        server.stop()
    assert not (tmp_path / "spool" / run_id).exists()  # delivered while running, nothing left over


def test_dead_server_spools_and_sync_delivers(tmp_path, token_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    blob = tmp_path / "offline.bin"
    blob.write_bytes(b"logged while the server was down " * 1000)
    client = _client(url, 20_000, 0, tmp_path, str(blob), AUTOTRACK_EXIT_TIMEOUT="5")
    out, err = client.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert client.returncode == 0, err
    run_id, timing = out.split("\n")[0], out.split("\n")[1]
    assert float(timing.split()[1]) < 2.0  # 20k log_metrics calls; no network on the training thread
    assert elapsed < 20
    spooled = tmp_path / "spool" / run_id
    assert (spooled / "run.json").is_file() and list((spooled / "events").glob("*.json"))
    assert [p.read_bytes() for p in (spooled / "artifacts").iterdir()] == [blob.read_bytes()]
    assert "20000 metric point(s)), 1 artifact(s)" in err
    assert "autotrack sync" in err and str(spooled) in err

    server = ServerProcess(str(tmp_path / "store"), port=port).start()
    try:
        sync = subprocess.run([sys.executable, "-m", "autotrack", "sync", str(tmp_path / "spool")], cwd=ROOT,
                              env=child_env(AUTOTRACK_TOKEN=TOKEN), capture_output=True, text=True, timeout=60)
        assert sync.returncode == 0, sync.stderr
        assert "delivered 1 run" in sync.stdout
        assert not spooled.exists()
        run = autotrack.get_run(run_id, uri=url)
        _assert_complete(run, 20_000)
        assert run.artifacts[0].read_bytes() == blob.read_bytes()
        assert not list((tmp_path / "spool" / "artifacts").rglob("*[0-9a-f]"))
        again = subprocess.run([sys.executable, "-m", "autotrack", "sync", str(tmp_path / "spool")], cwd=ROOT,
                               env=child_env(AUTOTRACK_TOKEN=TOKEN), capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "nothing to sync" in again.stdout
    finally:
        server.stop()


def test_two_workers_one_store_lose_nothing(tmp_path, token_env):
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"w" * 300_000)
    server = ServerProcess(str(tmp_path / "store"), None, TOKEN, "--workers", "2", log=tmp_path / "server.log").start()
    try:
        clients = [_client(server.url, 300, 0.002, tmp_path, str(blob)) for _ in range(4)]
        ids = [c.stdout.readline().strip() for c in clients]
        for client in clients:
            _, err = client.communicate(timeout=90)
            assert client.returncode == 0, err
        listed = {r.id: r for r in autotrack.runs(uri=server.url)}
        assert set(listed) == set(ids)
        for run_id in ids:
            run = listed[run_id]
            _assert_complete(run, 300)
            assert run.artifacts[0].read_bytes() == blob.read_bytes()
        assert len(list((tmp_path / "store" / "artifacts").rglob("*"))) == 2  # one folder, one copy
    finally:
        server.stop()


def test_server_over_s3_store(s3_store, tmp_path, token_env):
    pytest.importorskip("s3fs")
    blob = tmp_path / "model.bin"
    blob.write_bytes(b"s3 model " * 1000)
    server = ServerProcess(s3_store, log=tmp_path / "server.log").start()
    try:
        client = _client(server.url, 200, 0, tmp_path, str(blob))
        run_id = client.stdout.readline().strip()
        _, err = client.communicate(timeout=90)
        assert client.returncode == 0, err
        over_http = autotrack.get_run(run_id, uri=server.url)
        _assert_complete(over_http, 200)
        assert over_http.artifacts[0].read_bytes() == blob.read_bytes()
        direct = autotrack.get_run(run_id, uri=s3_store)  # the same run, read from S3 itself
        _assert_complete(direct, 200)
        assert direct.artifacts[0].sha256 == over_http.artifacts[0].sha256
    finally:
        server.stop()


def test_artifact_logged_offline_is_retried_and_delivered_while_running(tmp_path, token_env, lenient):
    """The writer keeps and retries artifacts like segments (the HTTP client no longer spools
    on its own and reports success for bytes the server never received)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    blob = tmp_path / "ckpt.bin"
    blob.write_bytes(b"checkpoint " * 3000)
    run = autotrack.start_run(uri=url)
    run.log_artifact(blob, kind="checkpoint")
    run.log_metrics({"loss": 0.0}, step=0)
    assert run.flush(3) is False  # the server is down: not delivered, kept
    server = ServerProcess(str(tmp_path / "store"), port=port).start()
    try:
        assert run.flush(30) is True
        run.finish()
        rec = autotrack.get_run(run.id, uri=url)
        assert rec.status == "finished" and rec.artifacts[0].read_bytes() == blob.read_bytes()
    finally:
        server.stop()
    assert not (tmp_path / "spool" / run.id).exists()


@pytest.mark.parametrize("exit_timeout, http_timeout", [("3", "1"), ("2", "30")])
def test_hanging_server_bounded_exit_then_sync(tmp_path, token_env, exit_timeout, http_timeout):
    """A server that accepts connections and never answers: the process still ends within
    AUTOTRACK_EXIT_TIMEOUT (plus one HTTP timeout, or less when that is longer), saying with
    true numbers what it spooled; sync delivers all of it, the artifact and the status too."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    stop = threading.Event()

    def accept_forever():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        started = time.monotonic()
        blob = tmp_path / "model.bin"
        blob.write_bytes(b"model " * 5000)
        client = _client(url, 4000, 0.0002, tmp_path, str(blob), AUTOTRACK_EXIT_TIMEOUT=exit_timeout,
                         AUTOTRACK_HTTP_TIMEOUT=http_timeout)
        out, err = client.communicate(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
    assert client.returncode == 0, err
    assert elapsed < 12, elapsed
    run_id = out.split("\n")[0]
    assert "autotrack sync" in err and "(4000 metric point(s)), 1 artifact(s)" in err, err
    server = ServerProcess(str(tmp_path / "store")).start()
    try:
        sync = subprocess.run([sys.executable, "-m", "autotrack", "sync", "--uri", server.url, str(tmp_path / "spool")],
                              cwd=ROOT, env=child_env(AUTOTRACK_TOKEN=TOKEN), capture_output=True, text=True, timeout=60)
        assert sync.returncode == 0, sync.stderr
        run = autotrack.get_run(run_id, uri=server.url)
        _assert_complete(run, 4000)
        assert run.params == {"n": 4000} and run.artifacts[0].read_bytes() == blob.read_bytes()
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore::autotrack.AutotrackWarning")
def test_long_outage_spills_to_disk_then_delivers(tmp_path, token_env, monkeypatch):
    """Unsent batches beyond a bound wait on disk, not in memory; all arrive once the server is up."""
    import autotrack._outbox as outbox

    monkeypatch.setattr(outbox, "MAX_PENDING_IN_MEMORY", 4)
    monkeypatch.setenv("AUTOTRACK_FLUSH_SECONDS", "0.05")
    monkeypatch.delenv("AUTOTRACK_STRICT")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with autotrack.start_run(uri=url) as run:
        for i in range(30):
            run.log_metrics({"loss": float(i)}, step=i)
            time.sleep(0.03)
        run.flush(5)
        spilled = sorted((tmp_path / "spool" / run.id / "events").glob("*.json"))
        assert len(spilled) >= 4 and len(run._writer._outbox.pending) > len(spilled)
        server = ServerProcess(str(tmp_path / "store"), port=port).start()
        try:
            for i in range(30, 40):
                run.log_metrics({"loss": float(i)}, step=i)
            assert run.flush(20)
            run.finish()
            _assert_complete(autotrack.get_run(run.id, uri=url), 40)
        finally:
            server.stop()
    assert not (tmp_path / "spool" / run.id).exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_and_its_parent_do_not_share_a_connection(server, token_env):
    """The HTTP store keeps its connections open between requests, and stores are shared per
    URI in a process: a forked child that started a run of its own on the same server reused
    the parent's idle connection, so both processes wrote their requests into one socket and
    read each other's answers. A child now gets stores of its own (``backends.base``)."""
    tag = uuid.uuid4().hex[:8]
    proc = python(f"""
        import os, autotrack
        run = autotrack.start_run(uri={server.url!r}, name="parent-{tag}")
        run.log_metric("loss", 0.0, step=0)
        assert run.flush(30)  # an idle connection is now open, in the store's pool
        pid = os.fork()
        mine = "child" if pid == 0 else "parent"
        if pid == 0:
            run = autotrack.start_run(uri={server.url!r}, name="child-{tag}")
        for step in range(1, 200):
            run.log_metric("loss", float(step), step=step)
            if step % 10 == 0:
                assert run.flush(30), mine
        run.finish()
        assert run.flush(30), mine
        if pid == 0:
            os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    """, env={"AUTOTRACK_EXIT_TIMEOUT": "60"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = {r.name.split("-")[0]: r for r in autotrack.runs(uri=server.url) if r.name.endswith(tag)}
    assert runs["parent"].status == runs["child"].status == "finished"
    assert [p.step for p in runs["parent"].metrics["loss"]] == list(range(200))
    assert [p.step for p in runs["child"].metrics["loss"]] == list(range(1, 200))
