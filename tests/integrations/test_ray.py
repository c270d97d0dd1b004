"""Ray Tune adapter: real Tune experiments on a local Ray cluster (``ray.init(num_cpus=2)``), each
trial trained in a Ray worker process, asserted through what autotrack reads back."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np
import pytest

import autotrack
from autotrack._autolog import is_on

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")
import ray.tune.tune as tune_module  # noqa: E402
from ray.tune.impl import tuner_internal  # noqa: E402

ORIGINALS = {m: m.__dict__["run"] for m in (tune_module, tuner_internal, ray.tune)}

from autotrack.integrations.ray import AutotrackLoggerCallback  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import the tests
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert all(m.__dict__["run"] is fn for m, fn in ORIGINALS.items()) and not is_on("ray")


def train_fn(config):
    """Three reports, a checkpoint with the last; lr > 0.05 raises after them."""
    for i in range(3):
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if i == 2:
                with open(os.path.join(folder, "state.json"), "w") as f:
                    json.dump({"i": i, "lr": config["lr"]}, f)
                checkpoint = tune.Checkpoint.from_directory(folder)
            tune.report({"loss": config["lr"] * (3 - i), "acc": 0.5 + i / 10, "note": "text", "nested": {"a": i}},
                        checkpoint=checkpoint)
    if config["lr"] > 0.05:
        raise ValueError("lr too high")


def tuner(trainable, tmp_path, callbacks=None):
    return tune.Tuner(trainable, param_space={"lr": tune.grid_search([0.01, 0.1])},
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "ray_results"),
                                                callbacks=callbacks, verbose=0))


def family(runs):
    [parent] = [r for r in runs if r.parent_id is None]
    children = {r.params["lr"]: r for r in runs if r.parent_id is not None}
    return parent, children


def test_callback_records_the_experiment_and_each_trial_from_its_worker(cluster, tmp_path):
    tuner(train_fn, tmp_path, [AutotrackLoggerCallback(experiment="tune")]).fit()
    runs = autotrack.runs()
    assert len(runs) == 3
    parent, children = family(runs)
    assert (parent.name, parent.framework, parent.status, parent.experiment) == ("exp", "ray", "finished", "tune")
    assert parent.params["total_num_samples"] == 2
    assert parent.metrics["trials_terminated"][-1].value == 1 and parent.metrics["trials_error"][-1].value == 1
    good, bad = children[0.01], children[0.1]
    assert good.status == "finished" and bad.status == "failed" and "lr too high" in bad.error
    for run in (good, bad):
        assert run.parent_id == parent.id and run.experiment == "tune" and run.framework == "ray"
        assert set(run.metrics) - {m for m in run.metrics if m.startswith("system/")} == {"loss", "acc", "nested/a"}
        assert [p.step for p in run.metrics["loss"]] == [1, 2, 3]
        assert run.tags["ray.trial_id"] in run.name
        assert "default_worker.py" in " ".join(run.environment["command"]["argv"])  # recorded in the worker
        [checkpoint] = [a for a in run.artifacts if a.kind == "checkpoint"]
        assert checkpoint.name == "checkpoints/checkpoint_000000/state.json"
        assert json.loads(checkpoint.open().read()) == {"i": 2, "lr": run.params["lr"]}
    assert [p.value for p in good.metrics["loss"]] == pytest.approx([0.03, 0.02, 0.01])
    assert autotrack.active_run() is None


def train_xgb(config):
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    dtrain = xgb.DMatrix(x, y)
    evals = {}
    xgb.train({"objective": "binary:logistic", "eta": config["lr"], "seed": 0}, dtrain, 3,
              evals=[(dtrain, "train")], evals_result=evals, verbose_eval=False)
    tune.report({"logloss": evals["train"]["logloss"][-1]})


def test_autolog_adds_the_callback_and_a_fit_inside_a_trial_records_into_its_run(cluster, tmp_path):
    pytest.importorskip("xgboost")
    autotrack.autolog(frameworks=["ray", "xgboost"])
    tuner(train_xgb, tmp_path).fit()
    runs = autotrack.runs()
    assert len(runs) == 3  # the experiment and two trials: no XGBoost run of its own
    parent, children = family(runs)
    assert parent.framework == "ray" and parent.status == "finished"
    for lr, run in children.items():
        assert run.framework == "xgboost" and run.status == "finished" and run.parent_id == parent.id
        assert run.params["eta"] == lr and len(run.metrics["train-logloss"]) == 3  # XGBoost's own record
        assert run.metrics["logloss"][-1].value == run.metrics["train-logloss"][-1].value  # the report
