"""finish() does not wait for the store: reads, exit and SIGTERM do (docs/api.md, "How runs end")."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import autotrack
from autotrack import _pending
from autotrack._writer import Writer

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def _background(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")  # strict mode waits in finish() to raise the writer's errors
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS", "1")  # the sampler's last sample comes after finish()
    yield
    _pending.wait_all()  # nothing of this test's runs is still being written in the next test


def test_finish_returns_before_the_store_and_a_read_sees_the_run(store):
    runs = []
    for i in range(6):
        run = autotrack.start_run(uri=store, params={"i": i})
        for step in range(50):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        t0 = time.perf_counter()
        run.finish()
        assert time.perf_counter() - t0 < 0.5
        runs.append(run)
    found = {r.id: r for r in autotrack.runs(uri=store)}  # waits for this store's pending writers
    assert not _pending.pending()
    for i, run in enumerate(runs):
        record = found[run.id]
        assert record.status == "finished" and record.params["i"] == i
        assert len(record.metrics["loss"]) == 50 and record.environment
    assert autotrack.get_run(runs[-1].id, uri=store).status == "finished"
    assert runs[0].flush() is True  # after finish: answers once delivered


def test_the_next_runs_capture_does_not_wait_for_the_last_flush(store, monkeypatch):
    """A store that takes 0.5 s per write: finish() and the next start_run do not wait for it."""
    warm = autotrack.start_run(uri=store)
    warm.finish()
    backend = warm.backend
    real = backend.append

    def slow(*args):  # noqa: ANN002
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(backend, "append", slow)
    first = autotrack.start_run(uri=store)
    first.log_metrics({"loss": 1.0})
    t0 = time.perf_counter()
    first.finish()
    second = autotrack.start_run(uri=store)
    assert time.perf_counter() - t0 < 0.4
    second.finish()
    assert {r.id for r in autotrack.runs(uri=store)} >= {first.id, second.id}
    assert autotrack.get_run(first.id, uri=store).metrics["loss"][0].value == 1.0


def test_a_thousand_runs_hold_no_more_than_a_few_runs_buffers(store, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS", "0")
    gc.collect()
    before = sum(1 for o in gc.get_objects() if type(o) is Writer)  # runs earlier tests left open
    kept = []
    for i in range(1000):
        run = autotrack.start_run(uri=store)
        run.log_metrics({"loss": float(i)})
        run.finish()
        kept.append(run)  # even a caller that keeps every Run object
        assert len(_pending.pending()) <= _pending.MAX_PENDING
        assert sum(w.holding() for w in _pending.pending()) <= _pending.MAX_HOLDING + 1  # + this one
    _pending.wait_all()
    gc.collect()
    holding = [r._writer for r in kept if r._writer.queue or r._writer._segment.pending() or r._writer._start]
    assert holding == []
    assert sum(1 for o in gc.get_objects() if type(o) is Writer) == before + 1000  # one each, all emptied
    assert len(autotrack.runs(uri=store)) == 1000


def _child(code: str, store: Path, **env: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC, AUTOTRACK_URI=str(store), AUTOTRACK_STRICT="0", **env)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


SLOW_STORE = """
    import time, autotrack
    run = autotrack.start_run(params={"a": 1})
    real = run.backend.append
    def slow(*args):
        time.sleep(0.4)
        return real(*args)
    run.backend.append = slow
    for step in range(100):
        run.log_metrics({"loss": step * 0.5}, step=step)
    run.finish()
    print(run.id, flush=True)
"""


def test_exit_waits_for_runs_ended_in_the_background(tmp_path):
    proc = _child(SLOW_STORE, tmp_path / "runs")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    record = autotrack.get_run(out.split()[0], uri=str(tmp_path / "runs"))
    assert record.status == "finished" and len(record.metrics["loss"]) == 100


def test_an_exception_after_finish_still_delivers_the_ended_run(tmp_path):
    proc = _child(SLOW_STORE + "\n    raise SystemExit('boom')\n", tmp_path / "runs")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "boom" in err
    record = autotrack.get_run(out.split()[0], uri=str(tmp_path / "runs"))
    assert record.status == "finished" and len(record.metrics["loss"]) == 100


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_sigterm_after_finish_still_delivers_the_ended_run(tmp_path):
    proc = _child(SLOW_STORE + "\n    time.sleep(60)\n", tmp_path / "runs")
    run_id = proc.stdout.readline().split()[0]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    record = autotrack.get_run(run_id, uri=str(tmp_path / "runs"))
    assert record.status == "finished" and len(record.metrics["loss"]) == 100


def test_a_capture_that_ends_after_the_last_segment_is_still_written(store, monkeypatch):
    """The run's status went out in a segment of its own before the environment capture ended:
    the environment then travels alone, in one more segment, and is not dropped."""
    import autotrack._capture.environment as environment

    real = environment.capture_environment
    released = threading.Event()

    def late(*args, **kwargs):  # noqa: ANN002, ANN003
        released.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(environment, "capture_environment", late)
    monkeypatch.setenv("AUTOTRACK_FLUSH_SECONDS", "0")
    run = autotrack.start_run(uri=store)
    run.log_metrics({"loss": 1.0})
    run.finish()
    time.sleep(0.3)  # the writer writes the status segment while the capture still runs
    released.set()
    record = autotrack.get_run(run.id, uri=store)
    assert record.status == "finished" and record.environment.get("python")


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="thread signal masks")
def test_autotrack_threads_leave_sigterm_and_sigint_to_the_main_thread():
    """Delivered to one of our threads, a SIGTERM left a main thread asleep in ``time.sleep``
    until it woke by itself (the SIGTERM test above timed out under load): every thread we
    start blocks them, down to the threads those start."""
    import threading

    from autotrack import _launch

    masks = []

    def inner():  # noqa: ANN202
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    def outer():  # noqa: ANN202
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        child = threading.Thread(target=inner)
        child.start()
        child.join()

    _launch.launch(outer, "autotrack-test").join(10)
    assert len(masks) == 2
    assert all({signal.SIGTERM, signal.SIGINT} <= set(mask) for mask in masks)
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the main thread's is untouched
