"""The ``summary`` in ``run.json``: latest params and tags, each metric's last/min/max/count,
kept by the writer so that a table of 10,000 runs reads nothing but run documents."""

from __future__ import annotations

import json
import math
import os

import autotrack


def _doc(uri: str, run_id: str) -> dict:
    with open(os.path.join(uri, "runs", run_id, "run.json"), encoding="utf-8") as fh:
        return json.load(fh)  # plain json: the summary is strict JSON like the rest


def test_summary_follows_the_segments(store) -> None:
    with autotrack.start_run(uri=store, params={"lr": 0.1, "layers": [64, 64], "blurb": "x" * 1000}) as run:
        run.set_tags({"team": "vision"})
        for step in range(10):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 10}, step=step, epoch=step // 5)
        run.flush()
        run.log_metrics({"loss": float("nan")}, step=10)
        run.log_params({"lr": 0.05, "bad": float("inf")})
    summary = _doc(store, run.id)["summary"]
    assert summary["params"]["lr"] == 0.05 and summary["params"]["layers"] == [64, 64]
    assert summary["params"]["bad"] == {"$float": "Infinity"}  # tagged, as params are everywhere
    assert len(summary["params"]["blurb"]) == 301 and summary["params"]["blurb"].endswith("…")
    assert summary["tags"] == {"team": "vision"}
    loss = summary["metrics"]["loss"]
    assert loss == ["NaN", 0.1, 1.0, 11, 10, None]  # last, min, max, count, step, epoch
    assert summary["metrics"]["acc"] == [0.9, 0.0, 0.9, 10, 9, 1]
    record = autotrack.get_run(run.id, uri=store)  # the segments stay the record: nothing cut there
    assert len(record.params["blurb"]) == 1000 and math.isinf(record.params["bad"])


def test_reopened_run_continues_its_summary(store) -> None:
    run = autotrack.start_run(uri=store)
    run.log_metrics({"loss": 3.0}, step=0)
    run.finish()
    run.reopen()
    run.log_metrics({"loss": 2.0}, step=1)
    run.finish()
    loss = _doc(store, run.id)["summary"]["metrics"]["loss"]
    assert loss == [2.0, 2.0, 3.0, 2, 1, None]


def test_final_metrics_of_an_ended_run_come_from_the_summary(store) -> None:
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 0.5, "acc": 1}, step=0)
        run.log_metrics({"loss": float("nan")}, step=1)
    listed = autotrack.runs(uri=store)[0]
    finals = listed.final_metrics
    assert finals["acc"] == 1 and math.isnan(finals["loss"])
    assert listed._loaded is False  # no segment was read for it
    fresh = autotrack.get_run(run.id, uri=store)
    fresh.metrics  # loaded: the points say the same
    assert fresh.final_metrics.keys() == finals.keys() and fresh.final_metrics["acc"] == 1
