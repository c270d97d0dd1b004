"""Heartbeats: one timer thread per store keeps every live run of it fresh (``_beats``, issue 20);
a short run starts no thread of its own, and a killed run still reads ``killed``."""

from __future__ import annotations

import threading
import time

import pytest

import autotrack
from autotrack import _beats


def heartbeat_threads():
    return [t for t in threading.enumerate() if t.name.startswith("autotrack-heartbeat")]


@pytest.fixture
def fast_beats(monkeypatch):
    # readers call a run killed after four intervals without a beat: 1 s here, so that a busy
    # machine's pause in the timer thread does not read as a dead run
    monkeypatch.setenv("AUTOTRACK_HEARTBEAT_SECONDS", "0.25")


def test_short_runs_start_no_heartbeat_thread_each(store, fast_beats, monkeypatch):
    started = []
    real_start = threading.Thread.start

    def start(self):  # noqa: ANN001, ANN202
        started.append(self.name)
        return real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    for i in range(30):
        with autotrack.start_run(uri=store, params={"i": i}) as run:
            run.log_metric("loss", 1.0)
    assert len(autotrack.runs(uri=store)) == 30
    beats = [name for name in started if name.startswith("autotrack-heartbeat")]
    assert len(beats) <= 1, f"one timer thread for the store, not one a run: {len(beats)}"


def test_one_timer_keeps_every_live_run_of_a_store_running(store, fast_beats):
    runs = [autotrack.start_run(uri=store, name=f"r{i}") for i in range(3)]
    try:
        for run in runs:
            run.flush()
        first = {r.id: r.heartbeat for r in autotrack.runs(uri=store)}
        time.sleep(2.0)  # eight intervals: without beats every run would read killed
        found = {r.id: r for r in autotrack.runs(uri=store)}
        assert all(found[run.id].status == "running" for run in runs)
        assert all(found[run.id].heartbeat > first[run.id] for run in runs), "each was beaten"
        assert len([t for t in heartbeat_threads() if t.is_alive()]) >= 1
    finally:
        for run in runs:
            run.finish()
    assert {r.status for r in autotrack.runs(uri=store)} == {"finished"}


def test_an_idle_timer_thread_ends_and_a_later_run_starts_one_again(store, fast_beats, monkeypatch):
    monkeypatch.setattr(_beats, "IDLE_SECONDS", 0.2)
    with autotrack.start_run(uri=store) as run:
        run.flush()
        time.sleep(0.3)
        timer = _beats.timer_of(run.backend)
        first = timer.thread
        assert first.alive()
    deadline = time.time() + 5
    while first.alive() and time.time() < deadline:
        time.sleep(0.05)
    assert not first.alive(), "no run to beat: the thread ended"
    with autotrack.start_run(uri=store) as run:
        run.flush()
        time.sleep(1.5)  # six intervals: running only if beaten
        assert autotrack.get_run(run.id, uri=store).status == "running"
        assert _beats.timer_of(run.backend).thread is not first and _beats.timer_of(run.backend).thread.alive()


def test_a_beat_waits_for_no_writer_and_stops_after_the_final_document(store, fast_beats):
    """While the writer holds the document (a slow store call), a beat is skipped, not waited for:
    the timer serves other runs too. After the final document no beat writes."""
    run = autotrack.start_run(uri=store)
    run.flush()
    doc = run._writer._rundoc
    got = []
    with doc._lock:  # the writer in the middle of writing the document (a Lock: a wait never ends)
        beat = threading.Thread(target=lambda: got.append(doc.beat()))
        beat.start()
        beat.join(10)
        assert not beat.is_alive() and got == [True], "the beat waited for the writer"
    run.finish()
    run.flush()
    assert doc.beat() is False
    assert autotrack.get_run(run.id, uri=store).status == "finished"
