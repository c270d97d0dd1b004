"""LightGBM adapter: real tiny trainings (``lgb.train``, ``lgb.cv``, the scikit-learn API), asserted
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
from tests.core.helpers import only_run, python, training_thread_file_calls
from tests.dead_store import DeadStore

lgb = pytest.importorskip("lightgbm")
from lightgbm import engine as lgb_engine  # noqa: E402
from lightgbm import sklearn as lgb_sklearn  # noqa: E402

PATCHED = [(lgb_engine, "train"), (lgb, "train"), (lgb_engine, "cv"), (lgb, "cv"),
           *((cls, "fit") for cls in vars(lgb_sklearn).values()
             if isinstance(cls, type) and issubclass(cls, lgb_sklearn.LGBMModel) and "fit" in cls.__dict__)]
assert len(PATCHED) >= 8, PATCHED  # LGBMModel, LGBMClassifier, LGBMRegressor, LGBMRanker
ORIGINALS = {(owner, attr): owner.__dict__[attr] for owner, attr in PATCHED}  # before the adapter is imported

from autotrack.integrations.lightgbm import AutotrackCallback  # noqa: E402


def unpatched():
    return all(owner.__dict__[attr] is fn for (owner, attr), fn in ORIGINALS.items())


def data(n=240, seed=0):
    """Two noisy features decide the label; two are noise. Train and validation parts."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = ((x[:, 0] + x[:, 1] + 0.8 * rng.normal(size=n)) > 0).astype("int64")
    return x[: 2 * n // 3], y[: 2 * n // 3], x[2 * n // 3:], y[2 * n // 3:]


XT, YT, XV, YV = data()
PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "learning_rate": 0.5, "num_leaves": 7,
          "min_data_in_leaf": 5, "verbose": -1, "seed": 5, "num_threads": 1}  # OpenMP threads spin on 2 busy cores


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("lightgbm")


@pytest.fixture
def on(store):
    autotrack.autolog(uri=store, frameworks=["lightgbm", "sklearn"])
    return store



def datasets():
    return lgb.Dataset(XT, YT, feature_name=["a", "b", "c", "d"]), lgb.Dataset(XV, YV)


def download(run, name, tmp_path):
    path = tmp_path / name
    run.artifact(name).download(path)
    return str(path)


def test_train_records_params_metrics_seeds_data_early_stopping_importance_and_model(on, tmp_path):
    dtrain, dval = datasets()
    booster = lgb.train(PARAMS, dtrain, 200, valid_sets=[dtrain, dval], valid_names=["train", "val"],
                        callbacks=[lgb.early_stopping(3, verbose=False)])
    run = only_run(on)
    n = len(run.metrics["val-auc"])  # rounds trained: LightGBM keeps the trees up to the best one only
    assert n < 200 and booster.current_iteration() == booster.best_iteration == n - 3, "early stopping must trigger"
    assert (run.framework, run.status) == ("lightgbm", "finished")
    assert "lightgbm" in run.environment["frameworks"]
    p = run.params
    assert (p["objective"], p["learning_rate"], p["metric"]) == ("binary", 0.5, ["binary_logloss", "auc"])
    assert p["num_boost_round"] == 200 and p["early_stopping_rounds"] == 3
    assert p["config/num_leaves"] == 7 and p["config/boosting"] == "gbdt"  # LightGBM's resolved configuration
    assert run.seeds["lightgbm.seed"] == 5 and "lightgbm.bagging_seed" in run.seeds
    for name in ("train-binary_logloss", "train-auc", "val-binary_logloss", "val-auc"):
        assert [pt.step for pt in run.metrics[name]] == list(range(n)), name
    evals = {}
    lgb.train(PARAMS, datasets()[0], n, valid_sets=[datasets()[1]], valid_names=["val"],
              callbacks=[lgb.record_evaluation(evals)])
    assert [pt.value for pt in run.metrics["val-auc"]] == pytest.approx(evals["val"]["auc"])
    final = run.final_metrics
    assert final["num_boosted_rounds"] == n and final["best_iteration"] == booster.best_iteration == n - 3
    assert final["best_score/val-auc"] == pytest.approx(booster.best_score["val"]["auc"])
    assert run.data["train_set"]["shape"] == [160, 4] and run.data["train_set"]["type"] == "lightgbm.Dataset"
    assert run.data["train_set"]["sha256"] == fingerprint(XT)["sha256"]
    assert run.data["train_set"]["label"]["sha256"] == fingerprint(YT)["sha256"] and set(run.data) == {"train_set", "val"}
    importance = json.loads(run.artifact("feature_importance.json").read_bytes())
    assert importance["gain"] == pytest.approx(dict(zip("abcd", booster.feature_importance("gain"))))
    assert importance["split"] == dict(zip("abcd", booster.feature_importance("split").tolist()))
    model = run.artifact("model.txt")
    assert model.kind == "model" and model.metadata["class"] == "lightgbm.Booster"
    loaded = lgb.Booster(model_file=download(run, "model.txt", tmp_path))
    np.testing.assert_array_equal(loaded.predict(XV), booster.predict(XV))


def test_sklearn_api_is_one_lightgbm_run(on, tmp_path):
    est = lgb.LGBMClassifier(n_estimators=6, num_leaves=5, random_state=9, verbose=-1, n_jobs=1)
    est.fit(XT, YT, eval_X=(XT, XV), eval_y=(YT, YV), eval_metric="auc")  # LightGBM 4.7's form of eval_set
    run = only_run(on)  # the scikit-learn adapter is on too: one run, not two
    assert (run.framework, run.name, run.status) == ("lightgbm", "LGBMClassifier", "finished")
    assert run.params["n_estimators"] == 6 and run.params["estimator_class"] == "lightgbm.LGBMClassifier"
    assert run.params["num_iterations"] == 6 and run.seeds["lightgbm.seed"] == 9
    assert [pt.step for pt in run.metrics["valid_1-auc"]] == list(range(6))
    assert [pt.value for pt in run.metrics["valid_0-binary_logloss"]] == \
        pytest.approx(est.evals_result_["valid_0"]["binary_logloss"])
    assert run.data["X"]["sha256"] == fingerprint(XT)["sha256"]
    assert run.data["valid_1"]["parts"][0]["sha256"] == fingerprint(XV)["sha256"]
    assert run.artifact("model.txt").metadata["class"] == "lightgbm.LGBMClassifier"
    loaded = lgb.Booster(model_file=download(run, "model.txt", tmp_path))
    np.testing.assert_allclose(loaded.predict(XV), est.predict_proba(XV)[:, 1])


def test_cv_records_lightgbms_mean_and_stdv_names(on):
    result = lgb.cv(PARAMS, lgb.Dataset(np.vstack([XT, XV]), np.concatenate([YT, YV])), 200, nfold=3,
                    callbacks=[lgb.early_stopping(3, verbose=False)], return_cvbooster=True)
    run = only_run(on)
    assert run.status == "finished" and run.params["nfold"] == 3 and run.params["num_boost_round"] == 200
    best = result["cvbooster"].best_iteration
    assert run.final_metrics["best_iteration"] == best and len(result["valid auc-mean"]) == best
    values = [pt.value for pt in run.metrics["valid auc-mean"]]
    assert values[:best] == pytest.approx(result["valid auc-mean"]) and len(values) == best + 3
    assert "valid binary_logloss-stdv" in run.metrics and not [a for a in run.artifacts if a.kind == "model"]


def test_callback_alone_records_a_complete_run_and_joins_nothing_after(store, tmp_path):
    """No autolog: nothing wrapped; the callback's own calls record the whole run and end it."""
    dtrain, dval = datasets()
    cb = AutotrackCallback(uri=store, experiment="boost")
    assert unpatched(), "making a callback wraps nothing"
    booster = lgb.train(PARAMS, dtrain, 200, valid_sets=[dval], callbacks=[lgb.early_stopping(3, verbose=False), cb])
    assert autotrack.active_run() is None
    run = only_run(store)
    assert (run.experiment, run.framework, run.status) == ("boost", "lightgbm", "finished")
    assert len(run.metrics["valid_0-auc"]) == booster.best_iteration + 3 == run.final_metrics["num_boosted_rounds"]
    assert run.final_metrics["best_iteration"] == booster.best_iteration and run.params["objective"] == "binary"
    assert run.seeds["lightgbm.seed"] == 5 and "num_boost_round" not in run.params and run.data == {}
    loaded = lgb.Booster(model_file=download(run, "model.txt", tmp_path))
    np.testing.assert_array_equal(loaded.predict(XV), booster.predict(XV))
    lgb.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1).fit(XT, YT.astype(float), callbacks=[cb])  # reused: a new run
    runs = autotrack.runs(uri=store)
    assert len(runs) == 2 and runs[0].status == "finished" and runs[0].final_metrics["num_boosted_rounds"] == 3
    assert unpatched()


def test_callback_alone_an_early_stopped_cv_ends_at_the_next_training_and_is_never_active(store):
    cb = AutotrackCallback(uri=store, log_models=False)
    full = lgb.Dataset(np.vstack([XT, XV]), np.concatenate([YT, YV]))
    lgb.cv(PARAMS, full, 200, nfold=3, callbacks=[lgb.early_stopping(3, verbose=False), cb])
    assert autotrack.active_run() is None, "a run the callback cannot end yet is nobody's active run"
    with autotrack.start_run(uri=store, name="mine") as mine:
        assert mine.parent_id is None
    lgb.train(PARAMS, datasets()[0], 2, callbacks=[cb])
    train, manual, cv = autotrack.runs(uri=store)
    assert (manual.name, manual.parent_id) == ("mine", None)
    assert cv.status == "finished" and cv.final_metrics["best_iteration"] > 0 and train.status == "finished"


def test_callback_alone_ends_its_runs_at_the_programs_end(store):
    proc = python(f"""
        import numpy as np, lightgbm as lgb
        from autotrack.integrations.lightgbm import AutotrackCallback
        rng = np.random.default_rng(0)
        x = rng.normal(size=(150, 3)); y = (x[:, 0] + rng.normal(size=150) > 0).astype(int)
        params = {{"objective": "binary", "verbose": -1, "learning_rate": 0.5, "min_data_in_leaf": 5, "num_threads": 1}}
        lgb.cv(params, lgb.Dataset(x, y), 100, nfold=3, callbacks=[lgb.early_stopping(2, verbose=False),
               AutotrackCallback(uri={store!r}, experiment="cv")])
        calls = []
        def metric(preds, data):
            calls.append(1)
            if len(calls) > 2:
                raise ValueError("bad metric")
            return "zero", 0.0, False
        try:
            lgb.train(params, lgb.Dataset(x, y), 5, valid_sets=[lgb.Dataset(x, y)], feval=metric,
                      callbacks=[AutotrackCallback(uri={store!r}, experiment="raised")])
        except ValueError:
            pass  # the program goes on, and ends normally
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {r.experiment: r for r in autotrack.runs(uri=store)}
    assert runs["cv"].status == "finished" and runs["cv"].final_metrics["best_iteration"] > 0
    assert runs["raised"].status == "failed" and "did not complete" in runs["raised"].error


def test_callback_under_autolog_is_one_run_with_its_settings(on):
    dtrain, dval = datasets()
    lgb.train(PARAMS, dtrain, 5, valid_sets=[dval], callbacks=[AutotrackCallback(experiment="mine", log_every_n_steps=2)])
    run = only_run(on)
    assert run.experiment == "mine" and run.params["num_boost_round"] == 5 and "train_set" in run.data
    assert [pt.step for pt in run.metrics["valid_0-auc"]] == [1, 3, 4]  # every 2nd iteration, and the last
    lgb.LGBMClassifier(n_estimators=2, verbose=-1, n_jobs=1).fit(XT, YT, callbacks=[AutotrackCallback(experiment="mine")])
    assert len(autotrack.runs(uri=on)) == 2 and autotrack.runs(uri=on)[0].name == "LGBMClassifier"


def test_inside_a_users_run_and_a_search(on):
    from sklearn.model_selection import GridSearchCV

    with autotrack.start_run(uri=on, name="mine") as mine:
        lgb.train(PARAMS, datasets()[0], 3)
    assert only_run(on).id == mine.id and only_run(on).framework == "lightgbm"
    GridSearchCV(lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1), {"num_leaves": [3, 7]}, cv=2).fit(XT, YT)
    runs = autotrack.runs(uri=on)
    search = next(r for r in runs if r.name == "GridSearchCV")
    children = [r for r in runs if r.parent_id == search.id]
    assert search.framework == "sklearn" and len(children) == 2 and len(runs) == 4  # no LightGBM run per fold


def test_user_exception_propagates_unchanged_and_run_fails(on):
    def metric(preds, data):
        raise ValueError("bad metric")

    dtrain, dval = datasets()
    with pytest.raises(ValueError, match="bad metric"):
        lgb.train(PARAMS, dtrain, 3, valid_sets=[dval], feval=metric)
    run = only_run(on)
    assert run.status == "failed" and "ValueError: bad metric" in run.error


def test_failing_backend_cannot_stop_training(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("dead", DeadStore, clobber=True)
    expected = lgb.train(PARAMS, datasets()[0], 4).predict(XV)
    autotrack.autolog(uri="dead://x", frameworks=["lightgbm"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = lgb.train(PARAMS, datasets()[0], 4, valid_sets=[datasets()[1]])
        est = lgb.LGBMClassifier(n_estimators=4, verbose=-1, n_jobs=1).fit(XT, YT)
    np.testing.assert_array_equal(booster.predict(XV), expected)
    assert est.predict(XV).shape == (80,)
    assert any(issubclass(w.category, AutotrackWarning) for w in caught)


def test_wrappers_only_while_autolog_is_on(store):
    assert unpatched()
    AutotrackCallback()
    assert unpatched()
    autotrack.autolog(uri=store, frameworks=["lightgbm"])
    assert all(owner.__dict__[attr] is not fn for (owner, attr), fn in ORIGINALS.items()) and is_on("lightgbm")
    lgb.train(PARAMS, datasets()[0], 2)
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("lightgbm")
    lgb.train(PARAMS, datasets()[0], 2)
    assert len(autotrack.runs(uri=store)) == 1


def test_the_model_and_importances_are_written_off_the_training_thread(store):
    """Made on the training thread (``model_to_string``: the text ``save_model`` writes) and
    written by the run's writer thread: no temporary folder, file, link or removal there."""
    proc = python(training_thread_file_calls(f"""
        import json, numpy as np, lightgbm as lgb, autotrack
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 4)); y = (X[:, 0] > 0).astype(int)
        autotrack.autolog(uri={store!r})
        watch()
        booster = lgb.train({{"objective": "binary", "verbose": -1}}, lgb.Dataset(X, label=y), 8)
        assert seen == [], seen
        booster.save_model("expected.txt")
        run = autotrack.last_run({store!r})
        assert run.artifact("model.txt").read_bytes() == open("expected.txt", "rb").read()
        importance = json.loads(run.artifact("feature_importance.json").read_bytes())
        assert importance["split"] == dict(zip(booster.feature_name(), booster.feature_importance("split").tolist()))
        print("ok")
    """, "model.txt", "feature_importance", "autotrack-gbm", "autotrack-lightgbm"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
