"""scikit-learn: every ``fit`` / ``fit_transform`` / ``fit_predict`` you call is one run.

scikit-learn has no callback API, so ``autotrack.autolog()`` (or this module's ``autolog()``)
wraps those methods on every estimator class, those that exist and those defined later
(``_sklearn_patch``), and ``autolog(disable=True)`` puts them back. A fit is recorded when it is
the outermost of nested fits (a Pipeline, a meta-estimator or a search is one run; a search adds
child runs for its best candidates, ``_sklearn_search``) and when the code that called it is yours
(``_caller``): the ``LabelEncoder`` that ``f1_score`` fits, or the folds of ``cross_val_score``,
are scikit-learn's fits on your behalf, not yours. A run holds params, ``random_state`` seeds,
data fingerprints, training metrics and the model (``_sklearn_record``).

XGBoost's scikit-learn estimators are left to the xgboost adapter, which shares the "outermost"
key with this one: alone, an XGBoost model is one ``xgboost`` run; inside a Pipeline or a search,
an inner fit.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
from typing import Any, Callable

import sklearn  # noqa: F401 - the framework, imported at the top as every integration does

from autotrack import _autolog
from autotrack._autolog import AutologConfig
from autotrack._safety import guard
from autotrack.integrations import _sklearn_record as rec
from autotrack.integrations._caller import called_by_user
from autotrack.integrations._common import FitRecorder, autolog_on, env_rank_zero, outermost, resolve_options
from autotrack.integrations._sklearn_patch import EstimatorPatcher
from autotrack.integrations._sklearn_search import is_search, log_search

__all__ = ["autolog", "enable", "disable", "FIT_METHODS", "OUTERMOST_KEY"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
OUTERMOST_KEY = "sklearn"  # the xgboost adapter uses it too

# scikit-learn's own options, set by this module's autolog(); they outlive autolog(disable=True)
_max_tuning_runs: int | None = 5
_model_format = "joblib"


def _fit_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    with outermost(OUTERMOST_KEY) as first:
        if (not first or instance is None or isinstance(instance, type) or not autolog_on("sklearn")
                or not called_by_user(instance)):
            return wrapped(*args, **kwargs)
        recorder = X = y = None
        with guard("sklearn: starting the run"):
            X, y = _data_args(wrapped, args, kwargs)
            recorder = FitRecorder("sklearn", resolve_options(), record=env_rank_zero())
            _begin(recorder, instance, X, y)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if recorder is not None:
                with guard("sklearn: ending the run"):
                    recorder.end(exc)
            raise
        if recorder is not None:
            with guard("sklearn: recording the fit"):
                _record(recorder, instance, X, y)
            with guard("sklearn: ending the run"):
                recorder.end()
        return result


def _data_args(wrapped: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """X and y as passed to fit, whatever the method calls them (X, raw_documents, Y...)."""
    try:
        names = [p.name for p in inspect.signature(wrapped).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    if names[:1] == ["self"]:  # called through the class: Estimator.fit(est, X, y)
        names = names[1:]
    names += ["X", "y"][len(names):]
    X = args[0] if args else kwargs.get(names[0])
    y = args[1] if len(args) > 1 else kwargs.get(names[1])
    return X, y


def _begin(recorder: FitRecorder, est: Any, X: Any, y: Any) -> None:
    recorder.begin(name=type(est).__name__)
    if not recorder.active:
        return
    params = rec.estimator_params(est)
    recorder.params(params)
    recorder.seeds(rec.seeds(params))
    columns = getattr(X, "columns", None)
    recorder.data("X", X, **({"feature_names": [str(c) for c in list(columns)[:1000]]} if columns is not None else {}))
    recorder.data("y", y)


def _record(recorder: FitRecorder, est: Any, X: Any, y: Any) -> None:
    if not recorder.active:
        return
    search = is_search(est)
    if search:
        with guard("sklearn: recording the search"):
            log_search(recorder.run, est, _max_tuning_runs)
    with guard("sklearn: computing training metrics"):
        recorder.metrics(rec.training_metrics(est, X, y), step=0)
    model = getattr(est, "best_estimator_", None) if search else est
    if recorder.options.log_models and model is not None:
        which = {"estimator": "best_estimator_" if search else "self"}
        if _model_format == "joblib":
            write, meta, small = rec.dump_model(model)
            if small:  # pickled here, written by the run's writer thread
                recorder.model_made("model.joblib", write, metadata={**meta, **which})
                return
        with tempfile.TemporaryDirectory(prefix="autotrack-sklearn-") as folder:
            if _model_format == "joblib":  # too large to hold until the writer writes it
                path = os.path.join(folder, "model.joblib")
                write(path)
            else:
                path, meta = rec.save_model(model, folder, _model_format)
            recorder.model(path, metadata={**meta, **which})


_patcher = EstimatorPatcher(_fit_wrapper, FIT_METHODS, lambda: autolog_on("sklearn"))


def enable(config: AutologConfig) -> None:
    """Called by ``autotrack.autolog()``: wrap every estimator class's fit methods (idempotent)."""
    _patcher.install()


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put every original back (see _sklearn_patch)."""
    _patcher.undo()


def autolog(uri: str | None = None, experiment: str | None = None, log_models: bool | None = None,
            max_tuning_runs: int | None = 5, model_format: str | None = None, disable: bool = False,
            register_as: str | None = None) -> None:
    """``autotrack.autolog(frameworks=["sklearn"])`` with scikit-learn's own options.

    ``max_tuning_runs``: child runs for the best candidates of a search (``None``: all of them).
    ``model_format``: ``"joblib"`` (the default: scikit-learn's own persistence) or ``"skops"``
    (loads without running code; joblib where skops cannot represent the model). Both stay in
    force when ``autotrack.autolog()`` enables this adapter. ``register_as``: each fit that ends
    well registers its model as a new version of that model (docs/api.md, "Model registry").
    Settings not given here keep the values of an ``autotrack.autolog()`` already on.
    """
    global _max_tuning_runs, _model_format
    if disable:
        _autolog.autolog(frameworks=["sklearn"], disable=True)
        return
    if max_tuning_runs is not None and (isinstance(max_tuning_runs, bool) or not isinstance(max_tuning_runs, int)
                                        or max_tuning_runs < 0):
        raise ValueError(f"max_tuning_runs must be a non-negative int or None, not {max_tuning_runs!r}")
    if model_format is not None and model_format not in rec.MODEL_FORMATS:
        raise ValueError(f"model_format must be one of {rec.MODEL_FORMATS}, not {model_format!r}")
    _max_tuning_runs = max_tuning_runs
    if model_format is not None:
        _model_format = model_format
    now = _autolog.current_config() or AutologConfig()
    given = {"uri": uri, "experiment": experiment, "log_models": log_models, "register_as": register_as}
    config = dataclasses.replace(now, **{k: v for k, v in given.items() if v is not None})
    _autolog.autolog(**dataclasses.asdict(config), frameworks=["sklearn"])
