"""scikit-learn: every outermost ``fit`` / ``fit_transform`` / ``fit_predict`` is one run.

scikit-learn has no callback API, so ``autotrack.autolog()`` (or this module's ``autolog()``)
wraps those methods on every estimator class, those that exist and those defined later (see
``_sklearn_patch``). Only the outermost of nested calls records: a Pipeline, a meta-estimator
or a search is one run; a search adds child runs for its best candidates (``_sklearn_search``).
What a run holds: params, ``random_state`` seeds, data fingerprints, training metrics and the
model (``_sklearn_record``). XGBoost's scikit-learn estimators are left to the xgboost adapter,
which shares the "outermost" key with this one: an XGBoost model alone is one ``xgboost`` run,
inside a Pipeline or a search it is an inner fit.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from typing import Any, Callable

import sklearn  # noqa: F401 - the framework, imported at the top as every integration does

from autotrack import _autolog
from autotrack._autolog import AutologConfig
from autotrack._safety import guard
from autotrack.integrations import _sklearn_record as rec
from autotrack.integrations._common import FitSession, env_rank_zero, outermost, resolve_options
from autotrack.integrations._sklearn_patch import EstimatorPatcher
from autotrack.integrations._sklearn_search import is_search, log_search

__all__ = ["autolog", "enable", "disable", "FIT_METHODS", "OUTERMOST_KEY"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
OUTERMOST_KEY = "sklearn"  # the xgboost adapter uses it too

_config: AutologConfig | None = None
_max_tuning_runs: int | None = 5
_model_format = "joblib"
_lock = threading.RLock()


# -- the wrapper -----------------------------------------------------------------------------
def _fit_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    with outermost(OUTERMOST_KEY) as first:
        config = _config
        if not first or config is None or instance is None or isinstance(instance, type):
            return wrapped(*args, **kwargs)
        session: FitSession | None = None
        X = y = None
        with guard("sklearn: starting the run"):
            options = resolve_options(uri=config.uri, experiment=config.experiment, log_models=config.log_models)
            session = FitSession("sklearn", options, record=env_rank_zero())
            X, y = _data_args(wrapped, args, kwargs)
            _start(session, instance, X, y)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if session is not None:
                with guard("sklearn: ending the run"):
                    session.end(exc)
            raise
        if session is not None:
            if session.active:
                with guard("sklearn: recording the fit"):
                    _record(session, instance, X, y)
            with guard("sklearn: ending the run"):
                session.end()
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


def _start(session: FitSession, est: Any, X: Any, y: Any) -> None:
    run = session.begin(name=type(est).__name__)
    if not session.active:
        return
    with guard("sklearn: logging params"):
        params = rec.estimator_params(est)
        run.log_params(params)
        found = rec.seeds(params)
        if found:
            run.log_seeds(found)
    with guard("sklearn: fingerprinting data"):
        rec.log_data(run, X, y)


def _record(session: FitSession, est: Any, X: Any, y: Any) -> None:
    run = session.run
    search = is_search(est)
    if search:
        with guard("sklearn: recording the search"):
            log_search(run, est, _max_tuning_runs)
    with guard("sklearn: computing training metrics"):
        metrics = rec.training_metrics(est, X, y)
        if metrics:
            run.log_metrics(metrics, step=0)
    if session.options.log_models:
        with guard("sklearn: logging the model"):
            model = getattr(est, "best_estimator_", None) if search else est
            if model is not None:
                rec.log_model(run, model, _model_format, estimator="best_estimator_" if search else "self")


_patcher = EstimatorPatcher(_fit_wrapper, FIT_METHODS, lambda: _config is not None)


# -- switching on and off --------------------------------------------------------------------
def enable(config: AutologConfig) -> None:
    """Called by ``autotrack.autolog()`` (and by :func:`autolog`); idempotent."""
    global _config
    with _lock:
        _config = config
        _patcher.install()


def disable() -> None:
    """Put every original method back (see the module docstring for the one exception)."""
    _switch_off()


def _switch_off() -> None:
    global _config
    with _lock:
        _config = None
        _patcher.undo()


def autolog(uri: str | None = None, experiment: str | None = None, log_models: bool | None = None,
            max_tuning_runs: int | None = 5, model_format: str | None = None, disable: bool = False) -> None:
    """``autotrack.autolog(frameworks=["sklearn"])`` with scikit-learn's own option.

    ``max_tuning_runs``: child runs for the best candidates of a search (``None``: all of them);
    it stays in force when ``autotrack.autolog()`` enables this adapter. ``model_format``:
    ``"joblib"`` (the default: scikit-learn's own persistence) or ``"skops"`` (loads without
    running code; joblib where skops cannot represent the model); it stays in force too.
    Settings not given here keep the values of an ``autotrack.autolog()`` already on.
    """
    global _max_tuning_runs, _model_format
    registered = "sklearn" in _autolog.integrations()
    if disable:
        if registered:
            _autolog.autolog(frameworks=["sklearn"], disable=True)
        _switch_off()
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
    config = dataclasses.replace(now, uri=now.uri if uri is None else uri,
                                 experiment=now.experiment if experiment is None else experiment,
                                 log_models=now.log_models if log_models is None else log_models)
    if registered:
        _autolog.autolog(**dataclasses.asdict(config), frameworks=["sklearn"])
    else:
        enable(config)
