"""XGBoost adapter: real tiny trainings (``xgb.train`` and the scikit-learn API), asserted through
what autotrack reads back."""

from __future__ import annotations

import copy
import json
import pickle
import time
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

xgb = pytest.importorskip("xgboost")
from xgboost import sklearn as xgb_sklearn  # noqa: E402
from xgboost import training as xgb_training  # noqa: E402

PATCHED = [(xgb_training, "train"), (xgb, "train"),  # and every fit of the scikit-learn API
           *((cls, "fit") for cls in vars(xgb_sklearn).values()
             if isinstance(cls, type) and issubclass(cls, xgb_sklearn.XGBModel) and "fit" in cls.__dict__)]
assert len(PATCHED) >= 7, PATCHED  # XGBModel, XGBClassifier, XGBRanker, XGBRFClassifier, XGBRFRegressor
ORIGINALS = {(owner, attr): owner.__dict__[attr] for owner, attr in PATCHED}  # before the adapter is imported

from autotrack.integrations import _xgboost_wrap  # noqa: E402
from autotrack.integrations.xgboost import AutotrackCallback  # noqa: E402


def unpatched():
    return all(owner.__dict__[attr] is fn for (owner, attr), fn in ORIGINALS.items())


def data(n=160, seed=0):
    """Two noisy features decide the label; two are noise. Train and validation halves."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = ((x[:, 0] + x[:, 1] + 0.8 * rng.normal(size=n)) > 0).astype("int64")
    return x[: n // 2], y[: n // 2], x[n // 2:], y[n // 2:]


XT, YT, XV, YV = data()
PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 2, "eta": 0.3, "seed": 5}


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("xgboost")


@pytest.fixture
def on(store):
    autotrack.autolog(uri=store, frameworks=["xgboost", "sklearn"])
    return store



class Boom(Exception):
    pass


def dmatrices():
    names = ["a", "b", "c", "d"]
    return xgb.DMatrix(XT, label=YT, feature_names=names), xgb.DMatrix(XV, label=YV, feature_names=names)


def download(run, name, tmp_path):
    path = tmp_path / name
    run.artifact(name).download(path)
    return path


def test_train_records_params_metrics_seeds_data_importance_and_model(on, tmp_path):
    dtrain, dval = dmatrices()
    booster = xgb.train(PARAMS, dtrain, num_boost_round=6, evals=[(dtrain, "train"), (dval, "val")], verbose_eval=False)
    run = only_run(on)
    assert (run.framework, run.status) == ("xgboost", "finished")
    p = run.params
    assert (p["objective"], p["max_depth"], p["eta"]) == ("binary:logistic", 2, 0.3)
    assert p["eval_metric"] == ["logloss", "auc"]
    assert p["num_boost_round"] == 6 and p["early_stopping_rounds"] is None
    assert p["config/learner/gradient_booster/tree_train_param/max_depth"] == "2"  # the booster's full configuration
    assert p["config/learner/objective/name"] == "binary:logistic"
    assert run.seeds["xgboost.seed"] == 5
    for name in ("train-logloss", "train-auc", "val-logloss", "val-auc"):
        assert [pt.step for pt in run.metrics[name]] == list(range(6)), name
    assert run.final_metrics["num_boosted_rounds"] == 6
    evals = {}
    xgb.train(PARAMS, dtrain, 6, evals=[(dval, "val")], evals_result=evals, verbose_eval=False)
    assert [pt.value for pt in run.metrics["val-auc"]] == pytest.approx(evals["val"]["auc"])
    assert run.data["dtrain"]["type"] == "xgboost.DMatrix" and run.data["dtrain"]["shape"] == [80, 4]
    assert run.data["dtrain"]["feature_names"] == ["a", "b", "c", "d"]
    assert run.data["dtrain"]["label"]["sha256"] == fingerprint(YT.astype("float32"))["sha256"]
    assert run.data["val"]["sha256"] != run.data["dtrain"]["sha256"]
    importance = json.loads(run.artifact("feature_importance.json").read_bytes())
    assert importance["gain"] == pytest.approx(booster.get_score(importance_type="gain"))
    assert importance["weight"] == booster.get_score(importance_type="weight")
    model = run.artifact("model.ubj")
    assert model.kind == "model" and model.metadata["format"] == "ubj"
    loaded = xgb.Booster(model_file=str(download(run, "model.ubj", tmp_path)))
    np.testing.assert_array_equal(loaded.predict(dval), booster.predict(dval))


def test_train_early_stopping_best_iteration(on):
    dtrain, dval = dmatrices()
    booster = xgb.train({**PARAMS, "eta": 1.0, "max_depth": 6}, dtrain, 200, evals=[(dval, "val")],
                        early_stopping_rounds=3, verbose_eval=False)
    run = only_run(on)
    assert booster.num_boosted_rounds() < 200, "the data must make early stopping trigger"
    assert run.params["early_stopping_rounds"] == 3
    assert run.final_metrics["best_iteration"] == booster.best_iteration
    assert run.final_metrics["best_score"] == pytest.approx(booster.best_score)
    assert len(run.metrics["val-auc"]) == booster.num_boosted_rounds() == booster.best_iteration + 4


def test_sklearn_api_is_one_xgboost_run(on, tmp_path):
    est = xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=9, eval_metric="logloss")
    est.fit(XT, YT, eval_set=[(XT, YT), (XV, YV)], verbose=False)
    run = only_run(on)
    assert (run.framework, run.name, run.status) == ("xgboost", "XGBClassifier", "finished")
    assert est.callbacks is None, "the estimator's callbacks are put back"
    assert run.params["n_estimators"] == 5 and run.params["estimator_class"] == "xgboost.XGBClassifier"
    assert run.params["num_boost_round"] == 5 and run.params["callbacks"] is None
    assert run.params["config/learner/generic_param/seed"] == "9"
    assert run.seeds["xgboost.seed"] == 9  # the seed the booster used
    assert [pt.step for pt in run.metrics["validation_1-logloss"]] == list(range(5))
    last = est.evals_result()["validation_0"]["logloss"][-1]
    assert run.metrics["validation_0-logloss"][-1].value == pytest.approx(last)
    assert run.data["X"]["sha256"] == fingerprint(XT)["sha256"]
    assert run.data["validation_1"]["parts"][0]["sha256"] == fingerprint(XV)["sha256"]
    assert run.artifact("model.ubj").metadata["class"] == "xgboost.XGBClassifier"
    loaded = xgb.XGBClassifier()
    loaded.load_model(download(run, "model.ubj", tmp_path))
    np.testing.assert_array_equal(loaded.predict_proba(XV), est.predict_proba(XV))
    np.testing.assert_array_equal(loaded.predict(XV), est.predict(XV))


def test_sklearn_api_early_stopping_and_rf(on):
    est = xgb.XGBRegressor(n_estimators=300, learning_rate=1.0, max_depth=6, early_stopping_rounds=2)
    est.fit(XT, YT.astype("float32"), eval_set=[(XV, YV.astype("float32"))], verbose=False)
    xgb.XGBRFClassifier(n_estimators=4, max_depth=2).fit(XT, YT, eval_set=[(XV, YV)], verbose=False)
    rf, reg = autotrack.runs(uri=on)
    assert reg.final_metrics["best_iteration"] == est.best_iteration
    assert reg.params["early_stopping_rounds"] == 2 and len(reg.metrics["validation_0-rmse"]) == est.best_iteration + 3
    assert rf.name == "XGBRFClassifier" and rf.status == "finished"  # it refuses callbacks: recorded after fit
    assert "validation_0-logloss" in rf.metrics and "config/learner/objective/name" in rf.params
    assert {a.name for a in rf.artifacts} == {"model.ubj", "feature_importance.json"}


def test_callback_alone_records_a_complete_run_from_its_hooks(store, tmp_path):
    """No autolog: no wrapper anywhere; the callback's own hooks record the whole run."""
    dtrain, dval = dmatrices()
    cb = AutotrackCallback(uri=store, experiment="boost")
    assert unpatched(), "making a callback wraps nothing"
    assert cb.after_iteration(None, 0, {}) is False
    booster = xgb.train(PARAMS, dtrain, 4, evals=[(dval, "val")], callbacks=[cb], verbose_eval=False)
    run = only_run(store)
    assert (run.experiment, run.framework, run.status) == ("boost", "xgboost", "finished")
    assert [pt.step for pt in run.metrics["val-logloss"]] == [0, 1, 2, 3]
    assert run.params["config/learner/objective/name"] == "binary:logistic" and run.seeds["xgboost.seed"] == 5
    assert run.final_metrics["num_boosted_rounds"] == 4
    assert "num_boost_round" not in run.params and run.data == {}  # the train arguments: autolog's wrapper
    assert {a.name for a in run.artifacts} == {"feature_importance.json", "model.ubj"}
    loaded = xgb.Booster(model_file=str(download(run, "model.ubj", tmp_path)))
    np.testing.assert_array_equal(loaded.predict(dval), booster.predict(dval))
    xgb.train(PARAMS, dtrain, 3, evals=[(dval, "val")], callbacks=[cb], verbose_eval=False)  # reused: a new run
    assert [len(r.metrics["val-auc"]) for r in autotrack.runs(uri=store)] == [3, 4]
    assert unpatched()


def test_callback_alone_a_training_that_raised_is_failed_by_the_next_one(store):
    dtrain, dval = dmatrices()
    cb = AutotrackCallback(uri=store, log_models=False)

    def metric(predt, dmat):
        raise Boom("bad metric")

    with pytest.raises(Boom):  # XGBoost has no exception hook: after_training never comes
        xgb.train(PARAMS, dtrain, 3, evals=[(dval, "val")], custom_metric=metric, callbacks=[cb], verbose_eval=False)
    deadline = time.monotonic() + 10  # the run's writer thread creates it in the store; wait for it
    while not autotrack.runs(uri=store) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert only_run(store).status == "running"
    xgb.train(PARAMS, dtrain, 2, evals=[(dval, "val")], callbacks=[cb], verbose_eval=False)
    second, first = autotrack.runs(uri=store)
    assert first.status == "failed" and "did not reach after_training" in first.error
    assert second.status == "finished" and len(second.metrics["val-auc"]) == 2


def test_callback_alone_a_training_that_raised_is_failed_at_the_programs_end(store):
    proc = python(f"""
        import numpy as np, xgboost as xgb
        from autotrack.integrations.xgboost import AutotrackCallback
        x = np.arange(40, dtype="float32").reshape(20, 2)
        d = xgb.DMatrix(x, label=(x[:, 0] > 20).astype("float32"))
        def metric(predt, dmat):
            raise ValueError("bad metric")
        try:
            xgb.train({{"objective": "binary:logistic"}}, d, 3, evals=[(d, "train")], custom_metric=metric,
                      verbose_eval=False, callbacks=[AutotrackCallback(uri={store!r})])
        except ValueError:
            pass  # the program goes on, and ends normally
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(store)
    assert run.status == "failed" and "xgboost fit did not complete" in run.error


def test_positional_evals_as_in_xgboosts_demos(store):
    """``xgb.train(param, dtrain, num_round, watchlist)``: XGBoost 3 takes it with a FutureWarning."""
    dtrain, dval = dmatrices()
    watchlist = [(dval, "eval"), (dtrain, "train")]
    with pytest.warns(FutureWarning, match="evals"):  # XGBoost's own warning, passed on
        xgb.train(PARAMS, dtrain, 3, watchlist, callbacks=[AutotrackCallback(uri=store)])
    alone = only_run(store)  # without autolog: the callback's hooks
    assert [pt.step for pt in alone.metrics["eval-auc"]] == [0, 1, 2] and "train-auc" in alone.metrics
    autotrack.autolog(uri=store, frameworks=["xgboost"])
    with pytest.warns(FutureWarning, match="evals"):
        xgb.train(PARAMS, dtrain, 4, watchlist)
    run = autotrack.runs(uri=store)[0]
    assert run.id != alone.id and run.status == "finished"
    assert run.params["num_boost_round"] == 4 and run.params["max_depth"] == 2
    assert len(run.metrics["eval-auc"]) == 4 and set(run.data) == {"dtrain", "eval"}


def test_a_call_the_wrapper_cannot_read_is_passed_on_and_recorded_by_the_callback(store, monkeypatch):
    dtrain, dval = dmatrices()
    autotrack.autolog(uri=store, frameworks=["xgboost"])
    # as if XGBoost had grown a parameter the wrapper does not know
    monkeypatch.setattr(_xgboost_wrap, "_TRAIN", _xgboost_wrap._TRAIN.replace(
        parameters=[p for p in _xgboost_wrap._TRAIN.parameters.values() if p.name != "custom_metric"]))

    def metric(predt, dmat):
        return "zero", 0.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rounds in (3, 2):
            xgb.train(PARAMS, dtrain, rounds, evals=[(dval, "val")], custom_metric=metric, verbose_eval=False,
                      callbacks=[AutotrackCallback()])
        xgb.train(PARAMS, dtrain, 2, evals=[(dval, "val")], custom_metric=metric, verbose_eval=False)
    ours = [w for w in caught if issubclass(w.category, AutotrackWarning)]
    assert len(ours) == 1 and "could not read the arguments of xgboost.train" in str(ours[0].message)
    second, first = autotrack.runs(uri=store)  # the two with a callback; the third ran unrecorded
    assert len(first.metrics["val-zero"]) == 3 and len(second.metrics["val-zero"]) == 2
    assert "num_boost_round" not in first.params and first.status == "finished"


def test_xgboost_checkpoints_are_recorded(on, tmp_path):
    dtrain, dval = dmatrices()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model_3.ubj").write_bytes(b"from an older training")  # not this training's: not recorded
    xgb.train(PARAMS, dtrain, 7, evals=[(dval, "val")], verbose_eval=False,
              callbacks=[xgb.callback.TrainingCheckPoint(folder, interval=2)])  # writes at 2, 4, 6
    run = only_run(on)
    saved = {a.name: a for a in run.artifacts if a.kind == "checkpoint"}
    assert set(saved) == {"checkpoints/model_2.ubj", "checkpoints/model_4.ubj", "checkpoints/model_6.ubj"}
    assert saved["checkpoints/model_4.ubj"].metadata["iteration"] == 4
    assert saved["checkpoints/model_4.ubj"].read_bytes() == (folder / "model_4.ubj").read_bytes()
    est = xgb.XGBClassifier(n_estimators=3, max_depth=2, callbacks=[
        xgb.callback.TrainingCheckPoint(folder, name="clf", as_pickle=True, interval=1)])
    est.fit(XT, YT, eval_set=[(XV, YV)], verbose=False)
    run = autotrack.runs(uri=on)[0]
    assert run.name == "XGBClassifier"
    saved = {a.name for a in run.artifacts if a.kind == "checkpoint"}
    assert saved == {"checkpoints/clf_1.pkl", "checkpoints/clf_2.pkl"}
    assert run.artifact("checkpoints/clf_2.pkl").read_bytes() == (folder / "clf_2.pkl").read_bytes()


def test_log_checkpoints_false(store, tmp_path):
    autotrack.autolog(uri=store, frameworks=["xgboost"], log_checkpoints=False)
    dtrain, _ = dmatrices()
    xgb.train(PARAMS, dtrain, 3, callbacks=[xgb.callback.TrainingCheckPoint(tmp_path, interval=1)])
    assert {a.kind for a in only_run(store).artifacts} == {"file", "model"}


def test_sklearn_helper_in_a_custom_metric_writes_nothing_into_the_run(store):
    """f1_score fits a LabelEncoder inside scikit-learn: not the user's fit, not in the xgboost run."""
    from sklearn.metrics import f1_score

    autotrack.autolog(uri=store, frameworks=["sklearn"])  # scikit-learn on; xgboost by its callback
    dtrain, dval = dmatrices()

    def f1(predt, dmat):
        return "f1", f1_score(dmat.get_label(), predt > 0.5)

    xgb.train(PARAMS, dtrain, 3, evals=[(dval, "val")], custom_metric=f1, verbose_eval=False,
              callbacks=[AutotrackCallback(log_models=False)])
    run = only_run(store)
    assert run.framework == "xgboost" and len(run.metrics["val-f1"]) == 3
    assert "estimator_class" not in run.params and [a.name for a in run.artifacts] == ["feature_importance.json"]


def test_estimator_fits_made_by_a_library_are_not_recorded(on):
    from sklearn.model_selection import cross_val_score

    cross_val_score(xgb.XGBClassifier(n_estimators=2, max_depth=2), XT, YT, cv=2)  # scikit-learn fits the folds
    assert autotrack.runs(uri=on) == []


def test_callback_with_sklearn_api_and_no_duplicate_under_autolog(on, store):
    est = xgb.XGBRegressor(n_estimators=3, callbacks=[AutotrackCallback(experiment="mine", log_every_n_steps=2)])
    est.fit(XT, YT.astype("float32"), eval_set=[(XV, YV.astype("float32"))], verbose=False)
    run = only_run(on)
    assert run.experiment == "mine" and run.params["callbacks"] == ["AutotrackCallback"]
    assert [pt.step for pt in run.metrics["validation_0-rmse"]] == [1, 2]  # every 2nd iteration, and the last
    clone = pickle.loads(pickle.dumps(copy.deepcopy(est)))  # sklearn's clone deep-copies callbacks
    assert clone.callbacks[0].options == est.callbacks[0].options
    dtrain, dval = dmatrices()
    xgb.train(PARAMS, dtrain, 2, evals=[(dval, "val")], callbacks=[AutotrackCallback(experiment="mine")],
              verbose_eval=False)
    runs = autotrack.runs(uri=on)
    assert len(runs) == 2 and runs[0].experiment == "mine" and len(runs[0].metrics["val-auc"]) == 2


def test_user_exception_propagates_unchanged_and_run_fails(on):
    dtrain, _ = dmatrices()

    def metric(predt, dmat):
        raise Boom("bad metric")

    with pytest.raises(Boom, match="bad metric"):
        xgb.train(PARAMS, dtrain, 3, evals=[(dtrain, "train")], custom_metric=metric, verbose_eval=False)
    run = only_run(on)
    assert run.status == "failed" and "Boom: bad metric" in run.error
    with pytest.raises(TypeError):  # a wrong call is xgboost's own TypeError
        xgb.train(PARAMS, dtrain, 3, no_such_argument=1)


def test_failing_backend_cannot_stop_training(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("dead", DeadStore, clobber=True)
    dtrain, dval = dmatrices()
    expected = xgb.train(PARAMS, dtrain, 4, verbose_eval=False).predict(dval)
    autotrack.autolog(uri="dead://x", frameworks=["xgboost"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = xgb.train(PARAMS, dtrain, 4, evals=[(dval, "val")], verbose_eval=False)
        est = xgb.XGBClassifier(n_estimators=4).fit(XT, YT, eval_set=[(XV, YV)], verbose=False)
    np.testing.assert_array_equal(booster.predict(dval), expected)
    assert booster.num_boosted_rounds() == 4, "after_iteration never stops training"
    assert est.predict(XV).shape == (80,)
    assert any(issubclass(w.category, AutotrackWarning) for w in caught)


def test_wrappers_only_while_autolog_is_on(store):
    """Importing the adapter or making a callback wraps nothing; autolog wraps; disable restores."""
    assert unpatched()
    AutotrackCallback()
    assert unpatched()
    autotrack.autolog(uri=store, frameworks=["xgboost"])
    assert all(owner.__dict__[attr] is not fn for (owner, attr), fn in ORIGINALS.items()) and is_on("xgboost")
    dtrain, _ = dmatrices()
    xgb.train(PARAMS, dtrain, 2)  # used while on
    xgb.XGBRegressor(n_estimators=2).fit(XT, YT.astype("float32"))
    assert len(autotrack.runs(uri=store)) == 2
    autotrack.autolog(disable=True)
    assert unpatched() and not is_on("xgboost")
    xgb.train(PARAMS, dtrain, 2)
    assert len(autotrack.runs(uri=store)) == 2


def test_nothing_is_wrapped_in_a_fresh_process_until_autolog(store):
    proc = python(f"""
        import numpy as np, xgboost as xgb, autotrack
        from xgboost import training
        train, fit = xgb.train, xgb.XGBClassifier.__dict__["fit"]
        from autotrack.integrations.xgboost import AutotrackCallback
        x = np.arange(40, dtype="float32").reshape(20, 2)
        d = xgb.DMatrix(x, label=(x[:, 0] > 20).astype("float32"))
        xgb.train({{"objective": "binary:logistic"}}, d, 3, evals=[(d, "train")], verbose_eval=False,
                  callbacks=[AutotrackCallback(uri={store!r})])
        assert xgb.train is train and training.train is train and xgb.XGBClassifier.__dict__["fit"] is fit
        autotrack.autolog(uri={store!r})
        assert xgb.train is not train
        xgb.train({{"objective": "binary:logistic"}}, d, 2, evals=[(d, "train")], verbose_eval=False)
        autotrack.autolog(disable=True)
        assert xgb.train is train and training.train is train and xgb.XGBClassifier.__dict__["fit"] is fit
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wrapped, alone = autotrack.runs(uri=store)
    assert len(alone.metrics["train-logloss"]) == 3 and "num_boost_round" not in alone.params
    assert wrapped.params["num_boost_round"] == 2 and wrapped.data["dtrain"]["shape"] == [20, 2]


def test_an_error_of_autotrack_before_training_leaves_the_call_as_it_was(store, lenient, monkeypatch):
    from autotrack.integrations import _xgboost_record

    def broken(*args, **kwargs):
        raise RuntimeError("a bug inside autotrack")

    dtrain, dval = dmatrices()
    expected = xgb.train(PARAMS, dtrain, 3).predict(dval)
    monkeypatch.setattr(_xgboost_record, "train_params", broken)
    monkeypatch.setattr(_xgboost_record, "estimator_params", broken)
    autotrack.autolog(uri=store, frameworks=["xgboost"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booster = xgb.train(PARAMS, dtrain, 3, evals=[(dval, "val")], verbose_eval=False)
        est = xgb.XGBClassifier(n_estimators=2).fit(XT, YT)
    np.testing.assert_array_equal(booster.predict(dval), expected)
    assert est.callbacks is None and est.predict(XV).shape == (80,)
    assert any("preparing the run" in str(w.message) for w in caught)
    assert autotrack.runs(uri=store) == []


def test_a_boosters_model_and_importances_are_written_off_the_training_thread(store):
    """``xgb.train``'s Booster is serialised on the training thread (``save_raw``: the bytes
    ``save_model("model.ubj")`` writes) and the importances made there; the run's writer thread
    writes both files. The training thread made a temporary folder, a file, a link and a removal
    for each."""
    proc = python(training_thread_file_calls(f"""
        import json, numpy as np, xgboost as xgb, autotrack
        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)
        autotrack.autolog(uri={store!r})
        watch()
        booster = xgb.train({{"objective": "binary:logistic", "max_depth": 3}}, xgb.DMatrix(X, label=y), 8)
        assert seen == [], seen
        booster.save_model("expected.ubj")
        run = autotrack.last_run({store!r})
        art = run.artifact("model.ubj")
        assert art.kind == "model" and art.metadata["class"] == "xgboost.Booster"
        assert art.read_bytes() == open("expected.ubj", "rb").read()
        importance = json.loads(run.artifact("feature_importance.json").read_bytes())
        assert importance["gain"] == booster.get_score(importance_type="gain")
        print("ok")
    """, "model.ubj", "feature_importance", "autotrack-xgboost"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
