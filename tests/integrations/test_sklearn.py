"""scikit-learn adapter: real tiny fits under ``autolog()``, asserted through what autotrack reads back."""

from __future__ import annotations

import concurrent.futures
import math
import sys
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

sklearn = pytest.importorskip("sklearn")
MODEL = "model.joblib"  # the default format; skops only with autolog(model_format="skops")

from sklearn import metrics  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone  # noqa: E402
from sklearn.cluster import DBSCAN, KMeans  # noqa: E402
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.ensemble import BaggingClassifier  # noqa: E402
from sklearn.experimental import enable_halving_search_cv  # noqa: E402,F401
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    HalvingGridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402

from autotrack.integrations import _sklearn_record, _sklearn_search  # noqa: E402
from autotrack.integrations import sklearn as adapter  # noqa: E402

X, Y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)  # standardised: lbfgs converges in a few steps


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert not is_on("sklearn") and "__init_subclass__" not in BaseEstimator.__dict__
    adapter._max_tuning_runs = 5
    adapter._model_format = "joblib"


@pytest.fixture
def on(store):
    autotrack.autolog(uri=store, frameworks=["sklearn", "xgboost"])
    return store



def load_model(run, tmp_path):
    art = next(a for a in run.artifacts if a.kind == "model")
    path = tmp_path / art.name
    art.download(path)
    if art.metadata["format"] == "skops":
        import skops.io

        return skops.io.load(path, trusted=art.metadata["untrusted_types"]), art
    import joblib

    return joblib.load(path), art


def test_classifier_fit_records_params_seeds_metrics_data_model(on, tmp_path):
    est = LogisticRegression(C=0.5, max_iter=500, random_state=7)
    assert est.fit(X, Y) is est
    run = only_run(on)
    assert (run.framework, run.status, run.name) == ("sklearn", "finished", "LogisticRegression")
    assert run.params["C"] == 0.5 and run.params["max_iter"] == 500
    assert run.params["estimator_class"] == "sklearn.linear_model.LogisticRegression"
    assert run.seeds["sklearn.random_state"] == 7
    m = run.final_metrics
    assert m["training_accuracy"] == pytest.approx(metrics.accuracy_score(Y, est.predict(X)))
    assert m["training_f1"] == pytest.approx(metrics.f1_score(Y, est.predict(X), average="weighted"))
    assert m["training_log_loss"] == pytest.approx(metrics.log_loss(Y, est.predict_proba(X)))
    assert 0.9 < m["training_roc_auc"] <= 1 and {"training_precision", "training_recall"} <= set(m)
    assert run.data["X"]["shape"] == [150, 4] and run.data["X"]["dtype"] == "float64"
    assert run.data["X"]["sha256"] == fingerprint(X)["sha256"]
    assert run.data["y"]["sha256"] == fingerprint(Y)["sha256"]
    model, art = load_model(run, tmp_path)
    assert art.name == MODEL and art.metadata["format"] == MODEL.split(".")[1]
    assert type(model) is LogisticRegression
    np.testing.assert_array_equal(model.predict_proba(X), est.predict_proba(X))


def test_pandas_and_sparse_data_are_fingerprinted(on):
    pd = pytest.importorskip("pandas")
    from scipy import sparse

    frame = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    LogisticRegression(max_iter=500).fit(frame, pd.Series(Y, name="species"))
    LogisticRegression(max_iter=500).fit(sparse.csr_matrix(X), Y)
    dense_run, sparse_run = autotrack.runs(uri=on)[::-1]
    assert dense_run.data["X"]["feature_names"] == ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    assert dense_run.data["X"]["dtypes"]["petal_w"] == "float64"
    assert dense_run.data["X"]["sha256"] == fingerprint(frame)["sha256"]
    assert dense_run.data["y"]["type"] == "pandas.Series"
    assert sparse_run.data["X"]["nnz"] == int(np.count_nonzero(X)) and sparse_run.data["X"]["shape"] == [150, 4]
    assert "training_accuracy" in sparse_run.final_metrics


def test_regressor_metrics(on, tmp_path):
    x, y = make_regression(n_samples=120, n_features=5, noise=3.0, random_state=0)
    est = Ridge(alpha=0.1).fit(x, y)
    m = only_run(on).final_metrics
    pred = est.predict(x)
    assert m["training_r2"] == pytest.approx(metrics.r2_score(y, pred))
    assert m["training_mse"] == pytest.approx(metrics.mean_squared_error(y, pred))
    assert m["training_rmse"] == pytest.approx(math.sqrt(m["training_mse"]))
    assert m["training_mae"] == pytest.approx(metrics.mean_absolute_error(y, pred))
    model, _ = load_model(only_run(on), tmp_path)
    np.testing.assert_array_equal(model.predict(x), pred)


def test_clusterers_record_what_they_expose(on):
    km = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
    labels = DBSCAN(eps=0.5).fit_predict(X)
    db_run, km_run = autotrack.runs(uri=on)
    assert km_run.final_metrics["inertia"] == pytest.approx(km.inertia_)
    assert km_run.final_metrics["n_clusters"] == 3 and km_run.seeds["sklearn.random_state"] == 0
    assert db_run.name == "DBSCAN"
    assert db_run.final_metrics["n_clusters"] == len(set(labels) - {-1})
    assert db_run.final_metrics["n_noise"] == int(np.sum(labels == -1))


def test_pipeline_and_meta_estimator_are_one_run_each(on):
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=3)).fit(X, Y)
    BaggingClassifier(LogisticRegression(max_iter=500), n_estimators=3, random_state=1).fit(X, Y)
    StandardScaler().fit_transform(X)
    scaler_run, bagging_run, pipe_run = autotrack.runs(uri=on)
    assert [r.name for r in (scaler_run, bagging_run, pipe_run)] == ["StandardScaler", "BaggingClassifier", "Pipeline"]
    assert pipe_run.params["steps"] == [["standardscaler", "StandardScaler"],
                                        ["logisticregression", "LogisticRegression"]]
    assert pipe_run.params["logisticregression__max_iter"] == 500
    assert pipe_run.seeds["sklearn.logisticregression__random_state"] == 3
    assert pipe_run.final_metrics["training_accuracy"] == pytest.approx(pipe.score(X, Y))
    assert bagging_run.params["estimator"] == "LogisticRegression"
    assert bagging_run.seeds["sklearn.random_state"] == 1
    assert scaler_run.final_metrics == {} and [a.name for a in scaler_run.artifacts] == [MODEL]


def test_grid_search_parent_with_children(on, tmp_path):
    grid = {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False]}
    search = GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, Y)
    runs = autotrack.runs(uri=on)
    parent = next(r for r in runs if r.parent_id is None)
    children = [r for r in runs if r.parent_id == parent.id]
    assert len(runs) == 6 and len(children) == 5  # max_tuning_runs defaults to 5 of the 6 candidates
    assert parent.name == "GridSearchCV" and parent.framework == "sklearn"
    assert parent.params["best_params/C"] == search.best_params_["C"]
    assert parent.params["best_index"] == search.best_index_
    assert parent.params["estimator__max_iter"] == 500 and parent.params["param_grid/C"] == [0.01, 0.1, 1.0]
    assert parent.final_metrics["best_score"] == pytest.approx(search.best_score_)
    assert parent.final_metrics["training_accuracy"] == pytest.approx(search.score(X, Y))
    table = parent.artifact("cv_results.csv")
    assert table.metadata["format"] == "csv"
    lines = table.read_bytes().decode().strip().splitlines()
    assert len(lines) == 7 and lines[0].split(",")[:2] == ["mean_fit_time", "std_fit_time"]
    assert "mean_test_score" in lines[0] and "params" in lines[0]
    results = search.cv_results_
    best_five = sorted(range(6), key=lambda i: (results["rank_test_score"][i], i))[:5]  # ties: first listed
    assert sorted(children, key=lambda c: c.tags["position"])[0].tags["candidate_index"] == best_five[0]
    assert {c.tags["candidate_index"] for c in children} == set(best_five)
    for child in children:
        i = child.tags["candidate_index"]
        assert child.framework == "sklearn" and child.status == "finished"
        assert child.params == {"C": results["params"][i]["C"], "fit_intercept": results["params"][i]["fit_intercept"]}
        assert child.final_metrics["mean_test_score"] == pytest.approx(results["mean_test_score"][i])
        assert child.final_metrics["split2_test_score"] == pytest.approx(results["split2_test_score"][i])
        assert child.tags["rank"] == results["rank_test_score"][i]
    best = next(c for c in children if c.tags["position"] == 1)
    assert best.tags["candidate_index"] == search.best_index_
    model, art = load_model(parent, tmp_path)
    assert art.metadata["estimator"] == "best_estimator_" and type(model) is LogisticRegression
    np.testing.assert_array_equal(model.predict_proba(X), search.predict_proba(X))


def test_max_tuning_runs(store):
    adapter.autolog(uri=store, max_tuning_runs=2)
    search = RandomizedSearchCV(Ridge(), {"alpha": [0.001, 0.1, 1.0, 10.0, 100.0]}, n_iter=4, cv=2,
                                random_state=0).fit(X, Y)
    runs = autotrack.runs(uri=store)
    parent = next(r for r in runs if r.parent_id is None)
    children = sorted((r for r in runs if r.parent_id), key=lambda r: r.tags["position"])
    assert parent.name == "RandomizedSearchCV" and parent.seeds["sklearn.random_state"] == 0
    order = np.argsort(search.cv_results_["rank_test_score"], kind="stable")
    assert [c.tags["candidate_index"] for c in children] == list(order[:2])
    adapter.autolog(uri=store, max_tuning_runs=None)
    GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0, 100.0, 1000.0, 1e4, 1e5]}, cv=2).fit(X, Y)
    assert len(autotrack.runs(uri=store)) == 3 + 8
    with pytest.raises(ValueError, match="max_tuning_runs"):
        adapter.autolog(max_tuning_runs=-1)


def test_halving_search_children_follow_the_survivors(on):
    search = HalvingGridSearchCV(LogisticRegression(max_iter=500), {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}, cv=3,
                                 min_resources=30, random_state=0).fit(X, Y)
    runs = autotrack.runs(uri=on)
    parent = next(r for r in runs if r.parent_id is None)
    children = sorted((r for r in runs if r.parent_id == parent.id), key=lambda r: r.tags["position"])
    assert parent.name == "HalvingGridSearchCV"
    assert children[0].tags["candidate_index"] == search.best_index_
    assert children[0].params == search.best_params_
    assert len({c.params["C"] for c in children}) == len(children) == 5  # one child per candidate


def test_search_and_pipeline_over_xgboost_record_as_sklearn(on):
    xgb = pytest.importorskip("xgboost")
    from autotrack.integrations.xgboost import AutotrackCallback

    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, callbacks=[AutotrackCallback()])  # silent inside
    search = GridSearchCV(model, {"learning_rate": [0.1, 0.3]}, cv=2)
    search.fit(X, Y)
    runs = autotrack.runs(uri=on)
    assert {r.framework for r in runs} == {"sklearn"}
    parent = next(r for r in runs if r.parent_id is None)
    assert parent.name == "GridSearchCV" and len(runs) == 3
    assert parent.params["estimator"] == "XGBClassifier"
    make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3)).fit(X, Y)
    assert len(autotrack.runs(uri=on)) == 4
    assert autotrack.runs(uri=on)[0].name == "Pipeline"


def test_user_run_is_joined(on):
    with autotrack.start_run(uri=on, name="mine") as run:
        LogisticRegression(max_iter=500).fit(X, Y)
    record = only_run(on)
    assert record.id == run.id and record.name == "mine" and record.framework == "sklearn"
    assert "training_accuracy" in record.final_metrics


class Boom(Exception):
    pass


class Exploding(ClassifierMixin, BaseEstimator):
    def __init__(self, when="fit"):
        self.when = when

    def fit(self, X, y):
        raise Boom("exploded in fit")


def test_user_exception_propagates_unchanged_and_run_fails(on):
    with pytest.raises(Boom) as info:
        Exploding().fit(X, Y)
    assert str(info.value) == "exploded in fit"
    run = only_run(on)
    assert run.status == "failed" and "Boom: exploded in fit" in run.error
    with pytest.raises(ValueError):  # scikit-learn's own validation error, also unchanged
        LogisticRegression().fit(X, Y[:10])


def test_failing_backend_cannot_stop_fit(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("dead", DeadStore, clobber=True)
    expected = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2).fit(X, Y).predict_proba(X)
    autotrack.autolog(uri="dead://x", frameworks=["sklearn"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=2).fit(X, Y)
        pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    np.testing.assert_array_equal(search.predict_proba(X), expected)
    assert pipe.score(X, Y) > 0.9
    assert any(issubclass(w.category, AutotrackWarning) for w in caught)


def every_fit_method():
    """Every fit/fit_transform/fit_predict where it is defined, on every estimator class and its mixins."""
    from autotrack.integrations._sklearn_patch import _subclasses

    classes = [BaseEstimator, *_subclasses(BaseEstimator)]
    return {(klass, name): klass.__dict__[name] for cls in classes for klass in cls.__mro__[:-1]
            for name in adapter.FIT_METHODS if name in klass.__dict__}


def test_disable_restores_every_original(store):
    from sklearn.base import ClusterMixin

    before = every_fit_method()
    assert len(before) > 150, "all of scikit-learn's imported estimators"
    assert "__init_subclass__" not in BaseEstimator.__dict__
    autotrack.autolog(uri=store, frameworks=["sklearn"])
    for key in [(LogisticRegression, "fit"), (Pipeline, "fit"), (Pipeline, "fit_transform"), (Pipeline, "fit_predict"),
                (TransformerMixin, "fit_transform"), (ClusterMixin, "fit_predict"), (KMeans, "fit")]:
        assert key[0].__dict__[key[1]] is not before[key], key
    assert "__init_subclass__" in BaseEstimator.__dict__ and is_on("sklearn")
    make_pipeline(StandardScaler(), KMeans(n_clusters=2, n_init=1)).fit_predict(X)  # used while on
    assert len(autotrack.runs(uri=store)) == 1
    autotrack.autolog(disable=True)
    assert not is_on("sklearn")
    after = every_fit_method()
    assert [key for key, fn in before.items() if after[key] is not fn] == []
    assert "__init_subclass__" not in BaseEstimator.__dict__
    LogisticRegression(max_iter=500).fit(X, Y)
    assert len(autotrack.runs(uri=store)) == 1


class Doubler(TransformerMixin, BaseEstimator):  # defined before autolog is switched on
    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2

    def get_feature_names_out(self, input_features=None):
        return np.array([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


def test_estimators_defined_before_and_after_autolog(store):
    pd = pytest.importorskip("pandas")
    adapter.autolog(uri=store, log_models=False)  # a class local to a test cannot be pickled

    class Halver(Doubler):  # defined while autolog is on: patched by the class hook
        def fit_transform(self, X, y=None):
            self.n_features_in_ = np.asarray(X).shape[1]
            return np.asarray(X) / 2

    Doubler().fit(X)
    out = Halver().set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame)  # set_output still wraps our wrapper
    assert [r.name for r in autotrack.runs(uri=store)] == ["Halver", "Doubler"]
    adapter.autolog(disable=True)
    assert isinstance(Halver().set_output(transform="pandas").fit_transform(X), pd.DataFrame)
    Halver().fit_transform(X)
    assert len(autotrack.runs(uri=store)) == 2  # the wrapper left inside set_output's is inert
    adapter.autolog(uri=store, log_models=False)
    Halver().fit_transform(X)  # and live again, not doubled, once autolog is back
    assert len(autotrack.runs(uri=store)) == 3
    layers, fn = 0, Halver.__dict__["fit_transform"]
    while fn is not None:
        layers += getattr(fn, "_self_wrapper", None) is adapter._fit_wrapper
        fn = getattr(fn, "__wrapped__", None)
    assert layers == 1


def test_log_models_false(store):
    adapter.autolog(uri=store, log_models=False)
    LogisticRegression(max_iter=500).fit(X, Y)
    assert only_run(store).artifacts == []


def test_default_model_format_is_joblib_and_imports_no_skops(store):
    code = (
        "import sys, autotrack\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.datasets import load_iris\n"
        f"autotrack.autolog(uri={str(store)!r}, frameworks=['sklearn'])\n"
        "LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True))\n"
        "assert not any(m == 'skops' or m.startswith('skops.') for m in sys.modules), 'skops imported'\n"
        "art = autotrack.last_run(uri=" + repr(str(store)) + ").artifact('model.joblib')\n"
        "assert art.metadata['format'] == 'joblib' and 'skops_error' not in art.metadata, art.metadata\n"
    )
    proc = python(code, env={"AUTOTRACK_STRICT": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_skops_on_request_and_joblib_fallback(store, tmp_path, monkeypatch):
    sio = pytest.importorskip("skops.io")
    with pytest.raises(ValueError, match="model_format"):
        adapter.autolog(uri=store, model_format="pickle")
    adapter.autolog(uri=store, model_format="skops")
    est = LogisticRegression(max_iter=500).fit(X, Y)
    model, art = load_model(autotrack.runs(uri=store)[0], tmp_path)
    assert art.name == "model.skops" and art.metadata["format"] == "skops"
    assert type(model) is LogisticRegression
    np.testing.assert_array_equal(model.predict_proba(X), est.predict_proba(X))

    def refuse(*args, **kwargs):
        raise TypeError("skops cannot do this one")

    monkeypatch.setattr(sio, "dump", refuse)  # as if skops could not represent this estimator
    adapter.autolog(uri=store)  # model_format stays in force
    est = clone(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))).fit(X, Y)
    run = autotrack.runs(uri=store)[0]
    model, art = load_model(run, tmp_path)
    assert art.name == "model.joblib" and art.metadata["format"] == "joblib"
    assert "skops cannot do this one" in art.metadata["skops_error"]
    np.testing.assert_array_equal(model.predict_proba(X), est.predict_proba(X))


class CountingClassifier(LogisticRegression):
    predicted_rows: list = []

    def predict(self, X):
        CountingClassifier.predicted_rows.append(len(X))
        return super().predict(X)


def test_training_metrics_use_a_capped_sample(store, monkeypatch):
    monkeypatch.setattr(_sklearn_record, "METRIC_ROWS", 40)
    adapter.autolog(uri=store)
    CountingClassifier.predicted_rows = []
    CountingClassifier(max_iter=500).fit(X, Y)
    assert CountingClassifier.predicted_rows == [40]
    xs, ys = _sklearn_record.sample(X, Y)
    assert len(xs) == 40 and set(ys) == {0, 1, 2}  # evenly spaced: every class of the sorted iris


def test_candidate_order_and_clean():
    results = {"params": [{"C": 1}, {"C": 2}, {"C": 1}, {"C": 2}], "iter": np.array([0, 0, 1, 1]),
               "rank_test_score": np.array([1, 2, 4, 3])}
    assert _sklearn_search.candidate_order(None, results) == [3, 2]
    assert _sklearn_record.clean({"est": LogisticRegression(), "cls": Ridge, "xs": (1, "a")}) == {
        "est": "LogisticRegression", "cls": "Ridge", "xs": [1, "a"]}


def test_autolog_before_sklearn_is_imported(store):
    proc = python(f"""
        import sys, autotrack
        autotrack.autolog(uri={store!r}, log_models=False)
        assert "sklearn" not in sys.modules
        from sklearn.datasets import load_iris
        from sklearn.tree import DecisionTreeClassifier
        X, y = load_iris(return_X_y=True)
        DecisionTreeClassifier(max_depth=2, random_state=4).fit(X, y)
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(store)
    assert run.name == "DecisionTreeClassifier" and run.seeds["sklearn.random_state"] == 4
    assert run.final_metrics["training_accuracy"] > 0.9


# -- fits made on your behalf: decided by who called fit ---------------------------------------
TRUE = np.array([0, 1, 2, 1, 0, 2, 1, 1, 0, 2])
PRED = np.array([0, 1, 1, 1, 0, 2, 2, 1, 0, 2])
HELPERS = {  # each fits a LabelEncoder or LabelBinarizer inside scikit-learn
    "classification_report": lambda: metrics.classification_report(TRUE, PRED),
    "precision_score": lambda: metrics.precision_score(TRUE, PRED, average="macro"),
    "f1_score": lambda: metrics.f1_score(TRUE, PRED, average="weighted"),
    "log_loss": lambda: metrics.log_loss(TRUE, np.eye(3)[PRED] * 0.8 + 0.2 / 3),
    "matthews_corrcoef": lambda: metrics.matthews_corrcoef(TRUE, PRED),
    "compute_class_weight": lambda: compute_class_weight("balanced", classes=np.unique(TRUE), y=TRUE),
}


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_helpers_that_fit_on_your_behalf_record_nothing(on, helper):
    HELPERS[helper]()
    assert autotrack.runs(uri=on) == [], "a helper's LabelEncoder became a run"
    with autotrack.start_run(uri=on, name="mine") as run:
        value = HELPERS[helper]()
        run.log_params({"metric": helper})
    record = only_run(on)
    assert record.id == run.id and record.name == "mine" and record.framework is None
    assert record.params == {"metric": helper} and record.artifacts == [], "LabelEncoder wrote into the run"
    assert value is not None


def test_fits_of_a_library_are_not_recorded_but_yours_are(on):
    cross_val_score(LogisticRegression(max_iter=500), X, Y, cv=3)  # scikit-learn fits a clone per fold
    assert autotrack.runs(uri=on) == []
    with autotrack.start_run(uri=on, name="cv") as run:
        run.log_metrics({"cv_accuracy": cross_val_score(make_pipeline(StandardScaler(), Ridge()), X, Y, cv=2).mean()})
    assert "estimator_class" not in only_run(on).params
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)  # yours: recorded
    assert autotrack.runs(uri=on)[0].name == "Pipeline"


def test_the_caller_decides_by_where_its_code_lives(on, tmp_path, monkeypatch):
    """site-packages (or the standard library) is a library; your project, an editable install and
    a package installed from a local folder (``pip install .``) are yours."""
    code = "def fit(est, X, y):\n    return est.fit(X, y)\n"
    site = tmp_path / "venv" / "lib" / "python3.x" / "site-packages"
    for path in (site / "at_somelib" / "__init__.py", tmp_path / "project" / "at_mycode.py",
                 site / "at_mypkg" / "__init__.py"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    dist = site / "at_mypkg-1.0.dist-info"  # what `pip install .` leaves: direct_url.json with dir_info
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: at_mypkg\nVersion: 1.0\n")
    (dist / "direct_url.json").write_text('{"url": "file:///home/me/at_mypkg", "dir_info": {}}')
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    import at_mycode
    import at_mypkg
    import at_somelib

    for module in ("at_somelib", "at_mycode", "at_mypkg"):
        monkeypatch.delitem(sys.modules, module)
    at_somelib.fit(Ridge(), X, Y)
    assert autotrack.runs(uri=on) == []
    at_mycode.fit(Ridge(alpha=2.0), X, Y)
    at_mypkg.fit(Ridge(alpha=3.0), X, Y)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # the standard library only passes it on
        pool.submit(Ridge(alpha=4.0).fit, X, Y).result()
    assert [r.params["alpha"] for r in autotrack.runs(uri=on)] == [4.0, 3.0, 2.0]


class MyLogReg(LogisticRegression):  # your own subclass, calling super().fit
    def fit(self, X, y, sample_weight=None):
        self.seen_rows_ = len(X)
        return super().fit(X, y, sample_weight=sample_weight)


def test_your_subclass_calling_super_fit_is_one_run(on, tmp_path):
    est = MyLogReg(max_iter=500, C=0.3).fit(X, Y)
    run = only_run(on)
    assert run.name == "MyLogReg" and run.params["C"] == 0.3
    assert run.params["estimator_class"].endswith("MyLogReg")
    model, _ = load_model(run, tmp_path)
    assert model.seen_rows_ == 150 and np.array_equal(model.predict(X), est.predict(X))


def test_callable_refit_marks_best_index(on):
    def refit(results):  # the worst accuracy on purpose: never the best of any rank_test_* column
        return int(np.argmin(results["mean_test_accuracy"]))

    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.001, 0.1, 10.0]}, cv=3,
                          scoring=["accuracy", "f1_macro"], refit=refit).fit(X, Y)
    runs = autotrack.runs(uri=on)
    parent = next(r for r in runs if r.parent_id is None)
    children = sorted((r for r in runs if r.parent_id == parent.id), key=lambda r: r.tags["position"])
    assert search.best_index_ != int(np.argmin(search.cv_results_["rank_test_accuracy"]))
    assert parent.params["best_index"] == search.best_index_
    assert children[0].tags["candidate_index"] == search.best_index_
    assert runs[0].id == children[0].id, "the best is created last: `autotrack show last`"


def test_the_model_and_cv_results_are_written_off_the_training_thread(store):
    """Pickled (and the CSV made) on the training thread, as ``fit`` left them; written by the
    run's writer thread. The training thread made a folder, a file, a link and a removal for
    each: ~2 ms a fit in a loop of short fits, most of it waiting for the GIL after each call."""
    proc = python(training_thread_file_calls(f"""
        import joblib, numpy as np, autotrack
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV
        rng = np.random.default_rng(0)
        X = rng.normal(size=(120, 4)); y = (X[:, 0] > 0).astype(int)
        autotrack.autolog(uri={store!r})
        watch()
        est = LogisticRegression(max_iter=200).fit(X, y)
        expected = est.predict_proba(X)
        est.coef_[:] = 0  # changed in place right after fit: the record keeps what fit made
        search = GridSearchCV(LogisticRegression(max_iter=200), {{"C": [0.1, 1.0]}}, cv=2).fit(X, y)
        assert seen == [], seen
        runs = autotrack.runs(uri={store!r})
        single = next(r for r in runs if r.name == "LogisticRegression" and r.parent_id is None and "best_score" not in r.final_metrics)
        art = single.artifact("model.joblib")
        art.download("got.joblib")
        assert np.array_equal(joblib.load("got.joblib").predict_proba(X), expected)
        assert art.kind == "model" and art.metadata["format"] == "joblib" and art.metadata["estimator"] == "self"
        parent = next(r for r in runs if "best_score" in r.final_metrics)
        table = parent.artifact("cv_results.csv")
        table.download("cv.csv")
        lines = open("cv.csv", encoding="utf-8").read().splitlines()
        assert table.metadata["rows"] == 2 and len(lines) == 3 and lines[0].startswith("mean_fit_time")
        best = parent.artifact("model.joblib")
        best.download("best.joblib")
        assert best.metadata["estimator"] == "best_estimator_"
        assert np.array_equal(joblib.load("best.joblib").predict(X), search.best_estimator_.predict(X))
        print("ok")
    """, "model.joblib", "cv_results", "autotrack-sklearn"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_a_model_too_large_to_hold_in_memory_is_written_at_once(on, tmp_path, monkeypatch):
    monkeypatch.setattr(_sklearn_record, "IN_MEMORY_MAX", 10)  # every pickle is "too large"
    est = LogisticRegression(max_iter=500).fit(X, Y)
    model, art = load_model(only_run(on), tmp_path)
    assert art.name == MODEL and art.metadata["format"] == "joblib" and art.metadata["estimator"] == "self"
    np.testing.assert_array_equal(model.predict_proba(X), est.predict_proba(X))
