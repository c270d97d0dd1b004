"""CatBoost adapter: real tiny fits (the estimators, ``catboost.train``, the callbacks API), asserted
through what autotrack reads back."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import autotrack
from autotrack._autolog import is_on
from autotrack._capture.data import fingerprint
from autotrack._safety import AutotrackWarning
from autotrack.backends import register_backend
from tests.core.helpers import only_run, python
from tests.dead_store import DeadStore

catboost = pytest.importorskip("catboost")
from catboost import core as cb_core  # noqa: E402

PATCHED = [(cb_core, "train"), (catboost, "train"),
           *((cls, "fit") for cls in vars(cb_core).values()
             if isinstance(cls, type) and issubclass(cls, cb_core.CatBoost) and "fit" in cls.__dict__)]
assert len(PATCHED) >= 6, PATCHED  # CatBoost, CatBoostClassifier, CatBoostRegressor, CatBoostRanker
ORIGINALS = {(owner, attr): owner.__dict__[attr] for owner, attr in PATCHED}  # before the adapter is imported

from autotrack.integrations.catboost import AutotrackCallback  # noqa: E402


def unpatched():
    return all(owner.__dict__[attr] is fn for (owner, attr), fn in ORIGINALS.items())


def data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = ((x[:, 0] + x[:, 1] + 0.8 * rng.normal(size=n)) > 0).astype("int64")
    return x[: 2 * n // 3], y[: 2 * n // 3], x[2 * n // 3:], y[2 * n // 3:]


XT, YT, XV, YV = data()
QUIET = {"verbose": False, "thread_count": 1, "allow_writing_files": False}


def classifier(**kwargs):
    return catboost.CatBoostClassifier(**{"iterations": 8, "depth": 3, "random_seed": 7, **QUIET, **kwargs})


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("catboost")


@pytest.fixture
def on(store):
    autotrack.autolog(uri=store, frameworks=["catboost", "sklearn"])
    return store



def test_fit_records_params_metrics_early_stopping_seed_data_importance_and_model(on, tmp_path):
    model = classifier(iterations=300, learning_rate=0.5, eval_metric="AUC")
    model.fit(XT, YT, eval_set=(XV, YV), early_stopping_rounds=4)
    run = only_run(on)
    assert "catboost" in run.environment["frameworks"]
    assert (run.framework, run.name, run.status) == ("catboost", "CatBoostClassifier", "finished")
    p = run.params
    assert (p["iterations"], p["depth"], p["eval_metric"], p["early_stopping_rounds"]) == (300, 3, "AUC", 4)
    assert p["estimator_class"] == "catboost.CatBoostClassifier" and p["config/loss_function"] == "Logloss"
    assert p["config/l2_leaf_reg"] == 3 and run.seeds["catboost.random_seed"] == 7
    history = model.get_evals_result()
    trained = len(history["validation"]["AUC"])
    assert trained < 300, "the data must make early stopping trigger"
    for name, values in (("learn-Logloss", history["learn"]["Logloss"]), ("validation-AUC", history["validation"]["AUC"])):
        assert [pt.step for pt in run.metrics[name]] == list(range(trained)), name
        assert [pt.value for pt in run.metrics[name]] == pytest.approx(values)
    final = run.final_metrics
    assert final["best_iteration"] == model.get_best_iteration() == trained - 5
    assert final["tree_count"] == model.tree_count_ and final["best_score/validation-AUC"] == pytest.approx(
        model.get_best_score()["validation"]["AUC"])
    assert run.data["X"]["sha256"] == fingerprint(XT)["sha256"] and run.data["validation"]["parts"][1]["sha256"] == \
        fingerprint(YV)["sha256"]
    importance = json.loads(run.artifact("feature_importance.json").read_bytes())["PredictionValuesChange"]
    assert list(importance.values()) == pytest.approx(model.get_feature_importance().tolist())
    assert run.artifact("model.cbm").metadata["class"] == "catboost.CatBoostClassifier"
    run.artifact("model.cbm").download(tmp_path / "model.cbm")
    loaded = catboost.CatBoostClassifier().load_model(str(tmp_path / "model.cbm"))
    np.testing.assert_array_equal(loaded.predict_proba(XV), model.predict_proba(XV))


def test_pools_train_snapshot_and_metric_period(on, tmp_path):
    train, valid = catboost.Pool(XT, YT), catboost.Pool(XV, YV)
    catboost.train(train, {"loss_function": "Logloss", "iterations": 7, "metric_period": 3, "thread_count": 1,
                           "verbose": False, "train_dir": str(tmp_path / "info"), "save_snapshot": True},
                   eval_set=valid)
    run = only_run(on)  # catboost.train fits from CatBoost's own code: still the user's fit
    assert (run.name, run.params["estimator_class"]) == ("CatBoost", "catboost.CatBoost")
    assert [pt.step for pt in run.metrics["validation-Logloss"]] == [0, 3, 6]  # every 3rd and the last
    assert run.data["X"]["type"] == "catboost.Pool" and run.data["X"]["shape"] == [160, 4]
    assert run.data["X"]["sha256"] == fingerprint(XT.astype("float32"))["sha256"]
    snapshot = run.artifact("checkpoints/experiment.cbsnapshot")
    assert snapshot.kind == "checkpoint" and snapshot.read_bytes() == (tmp_path / "info" / "experiment.cbsnapshot").read_bytes()


def test_callback_under_autolog_logs_live_into_the_one_run(on):
    classifier(iterations=6).fit(XT, YT, eval_set=(XV, YV),
                                 callbacks=[AutotrackCallback(experiment="mine", log_every_n_steps=4)])
    run = only_run(on)
    assert run.experiment == "mine" and run.params["iterations"] == 6
    assert [pt.step for pt in run.metrics["validation-Logloss"]] == [3, 5]  # every 4th iteration, and the last
    assert run.final_metrics["tree_count"] == 6 and run.artifact("model.cbm") is not None


def test_callback_alone_logs_metrics_is_never_active_and_ends_at_the_next_fit(store):
    cb = AutotrackCallback(uri=store)
    model = classifier(iterations=5)
    model.fit(XT, YT, eval_set=(XV, YV), callbacks=[cb])
    assert unpatched() and autotrack.active_run() is None, "a run the callback cannot end is nobody's active run"
    with autotrack.start_run(uri=store, name="mine") as mine:
        assert mine.parent_id is None
    catboost.CatBoostRegressor(iterations=3, **QUIET).fit(XT, YT.astype(float), callbacks=[cb])
    second, manual, first = autotrack.runs(uri=store)
    assert manual.name == "mine" and first.status == "finished" and first.framework == "catboost"
    assert second.status == "running", "the second fit's run is open until the next fit or the program's end"
    assert [pt.value for pt in first.metrics["validation-Logloss"]] == pytest.approx(
        model.get_evals_result()["validation"]["Logloss"])
    assert first.artifacts == [] and first.params == {}  # CatBoost shows a callback metrics only


def test_callback_alone_runs_end_with_the_program(store):
    proc = python(f"""
        import numpy as np, catboost
        from autotrack.integrations.catboost import AutotrackCallback
        x = np.arange(60, dtype=float).reshape(30, 2); y = (x[:, 0] > 30).astype(int)
        catboost.CatBoostClassifier(iterations=4, verbose=False, allow_writing_files=False, thread_count=1).fit(
            x, y, callbacks=[AutotrackCallback(uri={store!r})])
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(store)
    assert run.status == "finished" and len(run.metrics["learn-Logloss"]) == 4


def test_search_and_pipeline_are_scikit_learn_runs(on):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    GridSearchCV(classifier(iterations=3), {"depth": [2, 3]}, cv=2).fit(XT, YT)
    make_pipeline(StandardScaler(), classifier(iterations=3)).fit(XT, YT)
    runs = {r.name: r for r in autotrack.runs(uri=on)}
    search, pipeline = runs.pop("GridSearchCV"), runs.pop("Pipeline")
    assert search.framework == pipeline.framework == "sklearn" and "catboostclassifier__depth" in pipeline.params
    assert len(runs) == 2 and {c.parent_id for c in runs.values()} == {search.id}  # no CatBoost run per fold


def test_user_exception_propagates_unchanged_and_run_fails(on):
    class Boom(Exception):
        pass

    class Explode:
        def after_iteration(self, info):
            if info.iteration == 2:
                raise Boom("in the user's callback")
            return True

    with pytest.raises(catboost.CatBoostError, match="in the user's callback"):  # as CatBoost raises it
        classifier().fit(XT, YT, callbacks=[Explode()])
    run = only_run(on)
    assert run.status == "failed" and "CatBoostError" in run.error and "Boom" in run.error


def test_failing_backend_cannot_stop_training(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("dead", DeadStore, clobber=True)
    expected = classifier().fit(XT, YT, eval_set=(XV, YV)).predict_proba(XV)
    autotrack.autolog(uri="dead://x", frameworks=["catboost"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = classifier().fit(XT, YT, eval_set=(XV, YV), callbacks=[AutotrackCallback()])
    np.testing.assert_array_equal(model.predict_proba(XV), expected)
    assert any(issubclass(w.category, AutotrackWarning) for w in caught)


def test_wrappers_only_while_autolog_is_on(store):
    assert unpatched()
    AutotrackCallback()
    assert unpatched()
    autotrack.autolog(uri=store, frameworks=["catboost"])
    assert all(owner.__dict__[attr] is not fn for (owner, attr), fn in ORIGINALS.items()) and is_on("catboost")
    classifier(iterations=2).fit(XT, YT)
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("catboost")
    classifier(iterations=2).fit(XT, YT)
    assert len(autotrack.runs(uri=store)) == 1
