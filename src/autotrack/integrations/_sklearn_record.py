"""What the scikit-learn adapter records about one fit: params, seeds, data, training metrics, model.

Kept apart from ``sklearn.py`` (which owns the wrapper and the run's lifecycle) so that each stays
small. Every function here is called inside a ``guard`` by the adapter.

Training metrics cost one ``predict`` (and one ``predict_proba`` where it exists) on at most
``METRIC_ROWS`` rows of the training data, taken evenly spaced (deterministic, no random state
touched), so their cost stays small next to the fit they follow.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import sys
from typing import Any, Callable

import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator

from autotrack.integrations import _sklearn_metrics as fast
from autotrack.integrations._common import writes

__all__ = ["METRIC_ROWS", "MODEL_FORMATS", "clean", "estimator_params", "seeds", "training_metrics", "save_model",
           "dump_model", "IN_MEMORY_MAX"]

METRIC_ROWS = 10_000
MODEL_FORMATS = ("joblib", "skops")
_EXPECTED = (ValueError, TypeError, IndexError)  # a metric that does not apply to this target


def public_path(cls: type) -> str:
    """``sklearn.linear_model.LogisticRegression`` rather than ``sklearn.linear_model._logistic...``."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        if parts[end - 1].startswith("_"):
            break
        module = ".".join(parts[:end])
        if getattr(sys.modules.get(module), cls.__name__, None) is cls:
            return f"{module}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def clean(value: Any, depth: int = 0) -> Any:
    """A parameter value fit for ``log_params``: estimators (and objects without a useful repr)
    become their class names; containers are cleaned item by item; the Run converts the rest."""
    if depth > 10:
        return repr(value)
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, BaseEstimator) or (hasattr(value, "get_params") and hasattr(value, "fit")):
        return type(value).__name__
    if isinstance(value, dict):
        return {str(k): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, str, numbers.Number)) or callable(value):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    if hasattr(value, "dist") and hasattr(value, "args") and hasattr(value, "kwds"):  # scipy.stats frozen
        given = [repr(a) for a in value.args] + [f"{k}={v!r}" for k, v in value.kwds.items()]
        return f"{getattr(value.dist, 'name', type(value.dist).__name__)}({', '.join(given)})"
    if type(value).__repr__ is object.__repr__:  # "<X object at 0x7f...>": an address, not a value
        return type(value).__name__
    return value


def estimator_params(est: Any) -> dict[str, Any]:
    params = {str(k): clean(v) for k, v in est.get_params(deep=True).items()}
    params["estimator_class"] = public_path(type(est))
    return params


def seeds(params: dict[str, Any], prefix: str = "sklearn.") -> dict[str, int]:
    """Every ``random_state`` (top level or ``step__random_state``) that is an int."""
    return {prefix + k: int(v) for k, v in params.items()
            if (k == "random_state" or k.endswith("__random_state"))
            and isinstance(v, numbers.Integral) and not isinstance(v, bool)}


# -- training metrics --------------------------------------------------------------------------
def estimator_type(est: Any) -> str | None:
    try:
        return est.__sklearn_tags__().estimator_type  # scikit-learn >= 1.6
    except AttributeError:
        return getattr(est, "_estimator_type", None)


def _rows(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    try:
        return len(data)
    except TypeError:
        return None


def _take(data: Any, index: np.ndarray) -> Any:
    if hasattr(data, "iloc"):
        return data.iloc[index]
    if hasattr(data, "tocsr"):
        return data.tocsr()[index]
    if isinstance(data, np.ndarray):
        return data[index]
    if isinstance(data, (list, tuple)):
        return [data[i] for i in index]
    raise TypeError(f"cannot take rows of {type(data).__name__}")


def sample(X: Any, y: Any) -> tuple[Any, Any]:
    """At most METRIC_ROWS rows, evenly spaced: deterministic and spread over the whole set."""
    n = _rows(X)
    if n is None or n <= METRIC_ROWS:
        return X, y
    index = np.unique(np.linspace(0, n - 1, METRIC_ROWS).round().astype(np.int64))
    return _take(X, index), (None if y is None else _take(y, index))


def _sk() -> Any:
    """``sklearn.metrics``, imported only where our numpy path declines (its import: ~15 ms)."""
    from sklearn import metrics

    return metrics


def _classifier_metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    pred = est.predict(X)
    labels = fast.labels_of(y)  # the plain case: numpy (_sklearn_metrics), else sklearn.metrics
    y = np.asarray(y)
    plain = fast.classification(labels, pred) if labels is not None else None
    if plain is not None:
        out.update(plain)
    else:
        m = _sk()
        try:
            out["training_accuracy"] = m.accuracy_score(y, pred)
            p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted", zero_division=0)
            out.update(training_precision=p, training_recall=r, training_f1=f)
        except _EXPECTED:
            pass
    if not hasattr(est, "predict_proba"):
        return out
    proba = est.predict_proba(X)
    classes = getattr(est, "classes_", None)
    loss = fast.log_loss(labels, proba, classes) if labels is not None else None
    if loss is not None:
        out["training_log_loss"] = loss
    else:
        try:
            out["training_log_loss"] = _sk().log_loss(y, proba, labels=classes)
        except _EXPECTED:
            pass
    auc = fast.roc_auc(labels, proba, classes) if labels is not None else None
    if auc is not None:
        out["training_roc_auc"] = auc
        return out
    m = _sk()
    try:
        if getattr(proba, "ndim", 0) == 2 and proba.shape[1] == 2:
            out["training_roc_auc"] = m.roc_auc_score(y, proba[:, 1])
        else:
            out["training_roc_auc"] = m.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes)
    except _EXPECTED:
        pass
    return out


def _regressor_metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    pred = est.predict(X)
    plain = fast.regression(y, pred)
    if plain is not None:
        return plain
    m = _sk()
    try:
        mse = m.mean_squared_error(y, pred)
        return {"training_r2": m.r2_score(y, pred), "training_mse": mse, "training_rmse": math.sqrt(mse),
                "training_mae": m.mean_absolute_error(y, pred)}
    except _EXPECTED:
        return {}


def _clusterer_metrics(est: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for attr in ("inertia_", "n_iter_", "lower_bound_", "n_clusters_"):
        value = getattr(est, attr, None)
        if isinstance(value, (numbers.Real, np.generic)) and not isinstance(value, bool):
            out[attr.rstrip("_")] = float(value)
    labels = getattr(est, "labels_", None)
    if labels is not None and "n_clusters" not in out:
        found = set(np.asarray(labels).ravel().tolist())
        out["n_clusters"] = len(found - {-1})
        if -1 in found:
            out["n_noise"] = int(np.sum(np.asarray(labels) == -1))
    return out


def training_metrics(est: Any, X: Any, y: Any) -> dict[str, float]:
    """Metrics on (a sample of) the training data, by the estimator's task; {} when none apply."""
    kind = estimator_type(est)
    if kind == "clusterer":
        return _clusterer_metrics(est)
    if kind not in ("classifier", "regressor") or X is None or y is None or not hasattr(est, "predict"):
        return {}
    X, y = sample(X, y)
    try:
        # our own arguments are valid by construction: skip scikit-learn's per-call parameter
        # validation (about a third of the metrics' cost on a few thousand rows)
        with sklearn.config_context(skip_parameter_validation=True):
            found = _classifier_metrics(est, X, y) if kind == "classifier" else _regressor_metrics(est, X, y)
    except _EXPECTED + (AttributeError,):  # cannot predict on what fit took (a consumed iterator...)
        return {}
    return {k: float(v) for k, v in found.items()}


# -- model ---------------------------------------------------------------------------------------
IN_MEMORY_MAX = 256 << 20  # a model pickled larger than this is written on the training thread


def dump_model(est: Any) -> tuple[Callable[[str], None], dict[str, Any], bool]:
    """The joblib file ``save_model`` would write, pickled here into memory: the function that
    writes it, its metadata, and whether it is small enough (``IN_MEMORY_MAX``) to be held until
    the run's writer thread writes it. Then the estimator is read as ``fit`` left it, and the
    training thread makes no file, folder, link or removal (``writes``)."""
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    meta = {**_model_meta(est), "format": "joblib", "joblib_version": joblib.__version__}
    return writes(buffer.getbuffer()), meta, buffer.tell() <= IN_MEMORY_MAX


def _model_meta(est: Any) -> dict[str, Any]:
    return {"flavor": "sklearn", "class": public_path(type(est)), "sklearn_version": sklearn.__version__}


def save_model(est: Any, folder: str, fmt: str = "joblib") -> tuple[str, dict[str, Any]]:
    """joblib (scikit-learn's own persistence) by default: no import, milliseconds for most
    models. ``fmt="skops"``: skops where it round-trips (no code runs on load), joblib otherwise;
    skops is imported on first use, and that import walks every scikit-learn module (seconds)."""
    meta = _model_meta(est)
    if fmt == "skops":
        try:
            import skops
            import skops.io as sio

            path = os.path.join(folder, "model.skops")
            sio.dump(est, path)
            untrusted = sio.get_untrusted_types(file=path)
            sio.load(path, trusted=untrusted)  # it must load back, or it is no use as a record
            meta.update(format="skops", skops_version=skops.__version__, untrusted_types=untrusted)
            return path, meta
        except Exception as exc:  # noqa: BLE001 - skops cannot represent this estimator (or is absent)
            meta["skops_error"] = f"{type(exc).__name__}: {exc}"[:300]
    path = os.path.join(folder, "model.joblib")
    joblib.dump(est, path)
    meta.update(format="joblib", joblib_version=joblib.__version__)
    return path, meta
