"""Optuna adapter: real studies (tiny objectives, XGBoost trainings inside trials), asserted
through what autotrack reads back."""

from __future__ import annotations

import numpy as np
import pytest

import autotrack
from autotrack._autolog import is_on
from tests.core.helpers import python

optuna = pytest.importorskip("optuna")
ORIGINAL = optuna.study.Study.__dict__["optimize"]  # before the adapter is imported

from autotrack.integrations.optuna import AutotrackCallback  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert optuna.study.Study.__dict__["optimize"] is ORIGINAL and not is_on("optuna")


def objective(trial):
    """Trial 1 is pruned at step 1, trial 2 raises (caught), trial 3 returns NaN (Optuna fails it)."""
    x = trial.suggest_float("x", -4, 4)
    trial.set_user_attr("kind", "quadratic")
    for step in range(3):
        trial.report((x - 1) ** 2 + 3 - step, step)
        if trial.number == 1 and step == 1:
            raise optuna.TrialPruned()
    if trial.number == 2:
        raise ValueError("bad trial")
    if trial.number == 3:
        return float("nan")
    return (x - 1) ** 2


def by_trial(runs):
    parents = [r for r in runs if r.parent_id is None]
    children = {r.tags["optuna.trial_number"]: r for r in runs if r.parent_id is not None}
    return parents, children


def check_trials(parent, children, study, tracked=True):
    assert sorted(children) == [t.number for t in study.trials]
    for t in study.trials:
        run = children[t.number]
        assert run.parent_id == parent.id and run.experiment == parent.experiment
        assert run.params == t.params and run.tags["optuna.user_attr.kind"] == "quadratic"
        assert run.tags["optuna.state"] == t.state.name
        steps = sorted(t.intermediate_values)
        assert [p.step for p in run.metrics["intermediate_value"]] == steps
        assert [p.value for p in run.metrics["intermediate_value"]] == [t.intermediate_values[s] for s in steps]
    states = {n: r.status for n, r in children.items()}
    assert states == {0: "finished", 1: "killed", 2: "failed", 3: "failed", 4: "finished"}
    assert [p.value for p in children[0].metrics["value"]] == [study.trials[0].value]
    assert ("ValueError: bad trial" if tracked else "raised") in children[2].error  # the callback sees no traceback
    assert "nan" in children[3].error or not tracked
    assert "value" not in children[3].metrics
    assert children[0].environment["python"]  # a run like any other: environment captured
    assert "optuna" in children[0].environment["frameworks"]


def test_callback_alone_records_the_study_and_each_trial():
    cb = AutotrackCallback(experiment="search")
    study = optuna.create_study(study_name="quad", sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=5, callbacks=[cb], catch=(ValueError,))
    cb.close()  # else the study's run ends with the program
    parents, children = by_trial(autotrack.runs())
    [parent] = parents
    assert (parent.name, parent.framework, parent.status, parent.experiment) == ("quad", "optuna", "finished", "search")
    assert parent.params["directions"] == ["minimize"] and parent.params["sampler"] == "RandomSampler"
    check_trials(parent, children, study, tracked=False)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert [(p.step, p.value) for p in parent.metrics["value"]] == [(t.number, t.value) for t in complete]
    assert parent.params["best_trial"] == study.best_trial.number
    assert parent.params["best_params/x"] == study.best_params["x"]
    assert all(r.framework == "optuna" for r in children.values())


def test_autolog_tracks_trials_and_a_framework_inside_a_trial_records_into_it():
    xgb = pytest.importorskip("xgboost")
    autotrack.autolog(frameworks=["optuna", "xgboost"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] > 0).astype(int)
    dtrain, dval = xgb.DMatrix(x[:60], y[:60]), xgb.DMatrix(x[60:], y[60:])

    def train(trial):
        params = {"objective": "binary:logistic", "max_depth": trial.suggest_int("max_depth", 1, 3),
                  "eval_metric": "logloss", "seed": 0}
        assert autotrack.active_run().name == f"trial-{trial.number}"
        evals = {}
        xgb.train(params, dtrain, 4, evals=[(dval, "val")], evals_result=evals, verbose_eval=False)
        autotrack.active_run().log_metrics({"my_metric": 1.0})  # the user's own line lands in the trial's run
        return evals["val"]["logloss"][-1]

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(train, n_trials=3)
    assert autotrack.active_run() is None
    runs = autotrack.runs()
    assert len(runs) == 4  # the study and its three trials: no XGBoost run of its own
    parents, children = by_trial(runs)
    [parent] = parents
    assert parent.status == "finished" and parent.params["optimize/n_trials"] == 3
    assert parent.metrics["trials_complete"][-1].value == 3
    assert parent.metrics["best_value"][-1].value == study.best_value
    for t in study.trials:
        run = children[t.number]
        assert run.framework == "xgboost" and run.parent_id == parent.id and run.status == "finished"
        assert run.params["max_depth"] == t.params["max_depth"]  # the trial's param
        assert "config/learner/generic_param/seed" in run.params  # XGBoost's own record
        assert len(run.metrics["val-logloss"]) == 4 and run.metrics["value"][-1].value == t.value
        assert "my_metric" in run.metrics and any(a.name == "model.ubj" for a in run.artifacts)


def test_autolog_an_uncaught_error_fails_the_trial_and_the_study_and_propagates():
    autotrack.autolog(frameworks=["optuna"])

    def boom(trial):
        trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise RuntimeError("objective broke")
        return 1.0

    study = optuna.create_study()
    with pytest.raises(RuntimeError, match="objective broke"):
        study.optimize(boom, n_trials=4)
    parents, children = by_trial(autotrack.runs())
    assert [p.status for p in parents] == ["failed"] and "objective broke" in parents[0].error
    assert {n: r.status for n, r in children.items()} == {0: "finished", 1: "failed"}
    assert autotrack.active_run() is None


def test_track_with_the_callback_and_optimize_again_continues_the_study_run():
    cb = AutotrackCallback()
    seen = []

    def f(trial):
        seen.append(autotrack.active_run().id)
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study()
    study.optimize(cb.track(f), n_trials=2, callbacks=[cb])
    study.optimize(cb.track(f), n_trials=1, callbacks=[cb])
    cb.close()
    parents, children = by_trial(autotrack.runs())
    assert len(parents) == 1 and sorted(children) == [0, 1, 2]
    assert seen == [children[n].id for n in range(3)]


def test_a_run_you_started_is_the_parent_and_threads_make_no_trial_run_active():
    autotrack.autolog(frameworks=["optuna"])
    active = []

    def f(trial):
        active.append(autotrack.active_run())
        return trial.suggest_float("x", 0, 1)

    with autotrack.start_run(name="mine") as mine:
        study = optuna.create_study()
        study.optimize(f, n_trials=6, n_jobs=2)
        assert autotrack.active_run() is mine
    runs = autotrack.runs()
    assert len(runs) == 7
    parents, children = by_trial(runs)
    assert [p.id for p in parents] == [mine.id] and parents[0].status == "finished"
    assert all(r.parent_id == mine.id and r.status == "finished" for r in children.values())
    assert all(a is None or a is mine for a in active)  # no trial's run is active when trials share a process


def test_disabled_records_nothing(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_DISABLE", "1")
    cb = AutotrackCallback()
    optuna.create_study().optimize(cb.track(lambda t: t.suggest_float("x", 0, 1)), n_trials=2, callbacks=[cb])
    monkeypatch.delenv("AUTOTRACK_DISABLE")
    assert autotrack.runs() == []


WORKER = """
    import sys, optuna, autotrack
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    autotrack.autolog(uri=sys.argv[1] if len(sys.argv) > 1 else {uri!r})
    study = optuna.create_study(study_name="shared", storage={storage!r}, load_if_exists=True)
    study.optimize(lambda t: (t.suggest_float("x", -1, 1)) ** 2, n_trials=3)
"""


def test_processes_sharing_an_rdb_storage_record_one_parent_run(tmp_path):
    """Three processes at once on one SQLite study (Optuna's distributed mode): one study run."""
    storage, uri = f"sqlite:///{tmp_path / 'study.db'}", str(tmp_path / "runs")
    optuna.create_study(study_name="shared", storage=storage)  # created once, as Optuna's docs do
    procs = [python(WORKER.format(uri=uri, storage=storage), wait=False) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    runs = autotrack.runs(uri=uri)
    parents, children = by_trial(runs)
    assert len(parents) == 1 and len(children) == 9 and len(runs) == 10
    assert {r.parent_id for r in children.values()} == {parents[0].id}
    study = optuna.load_study(study_name="shared", storage=storage)
    assert study._storage.get_study_system_attrs(study._study_id)["autotrack:run"]["id"] == parents[0].id
    assert sorted(children) == list(range(9))


def test_a_store_that_fails_every_call_cannot_stop_the_study(lenient, monkeypatch):
    import warnings

    from autotrack.backends import register_backend
    from tests.dead_store import DeadStore

    monkeypatch.setenv("AUTOTRACK_EXIT_TIMEOUT", "2")
    register_backend("dead", DeadStore, clobber=True)
    autotrack.autolog(uri="dead://x", frameworks=["optuna"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert autotrack.active_run() is None
