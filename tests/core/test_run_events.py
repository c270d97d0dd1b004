"""``autotrack._events``: the run-life moments adapters listen to instead of patching the core
(a plain-PyTorch loop's run ends where the next run starts). Real runs, read back."""

from __future__ import annotations

import pytest

import autotrack
from autotrack import _events
from autotrack._safety import error_counts
from autotrack.integrations._common import FitRecorder, resolve_options


@pytest.fixture
def heard():
    calls: list[tuple] = []
    listeners = {"run_starting": lambda: calls.append(("run_starting",)),
                 "fit_beginning": lambda recorder: calls.append(("fit_beginning", recorder.framework)),
                 "run_finishing": lambda run, status: calls.append(("run_finishing", run.name, status, run.status))}
    for event, fn in listeners.items():
        _events.on(event, fn)
        _events.on(event, fn)  # idempotent
    yield calls
    for event, fn in listeners.items():
        _events.off(event, fn)
        assert fn not in _events.listeners(event)


def test_each_moment_once_in_order_and_the_run_still_takes_totals(store, heard):
    def totals(run, status):
        run.log_metrics({"steps": 3}, step=3)  # a finishing run still records

    _events.on("run_finishing", totals)
    try:
        with autotrack.start_run(name="a", uri=store) as run:
            pass
        run.finish()  # again: no second event
        recorder = FitRecorder("xgboost", resolve_options(uri=store))
        recorder.begin(name="b")
        recorder.end(ValueError("boom"))
    finally:
        _events.off("run_finishing", totals)
    assert heard == [("run_starting",), ("run_finishing", "a", "finished", "finished"),
                     ("fit_beginning", "xgboost"), ("run_starting",), ("run_finishing", "b", "failed", "failed")]
    runs = {r.name: r for r in autotrack.runs(uri=store)}
    assert runs["a"].status == "finished" and runs["a"].metrics["steps"][-1].value == 3
    assert runs["b"].status == "failed"


def test_a_failing_listener_is_reported_and_never_stops_the_run(store, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    later: list[str] = []

    def broken(*args):
        raise RuntimeError("listener bug")

    for event in _events.EVENTS:
        _events.on(event, broken)
    _events.on("run_finishing", lambda run, status: later.append(status))
    try:
        with pytest.warns(autotrack.AutotrackWarning):
            with autotrack.start_run(name="ok", uri=store):
                pass
    finally:
        for event in _events.EVENTS:
            _events.off(event, broken)
        _events.off("run_finishing", _events.listeners("run_finishing")[-1])
    assert later == ["finished"]  # the next listener still ran
    assert autotrack.runs(uri=store)[0].status == "finished"
    assert error_counts()["an autotrack run_starting listener"] >= 1


def test_strict_mode_raises_after_the_run_has_ended(store):
    def broken(run, status):
        raise RuntimeError("listener bug")

    _events.on("run_finishing", broken)
    try:
        run = autotrack.start_run(name="strict", uri=store)
        with pytest.raises(RuntimeError, match="listener bug"):
            run.finish()
    finally:
        _events.off("run_finishing", broken)
    assert run.status == "finished" and autotrack.active_run() is None
    assert autotrack.runs(uri=store)[0].status == "finished"


def test_deactivate_keeps_recording_but_is_no_parent(store):
    from autotrack._run import deactivate

    search = autotrack.start_run(name="search", uri=store)
    deactivate(search)
    assert autotrack.active_run() is None
    with autotrack.start_run(name="after", uri=store) as after:
        search.log_metrics({"best": 1.0}, step=0)
    search.finish()
    runs = {r.name: r for r in autotrack.runs(uri=store)}
    assert after.parent_id is None and runs["search"].metrics["best"][0].value == 1.0


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown event"):
        _events.on("run_started", print)
