"""What the CatBoost adapter records, and autolog's wrappers around ``fit`` and ``catboost.train``.

The wrappers are installed by ``enable()`` only and removed by ``disable()``. For a fit that is
yours and outermost (not inside a scikit-learn Pipeline or search, not fitted by a library for
you; ``catboost.train`` is yours, though it calls ``fit`` from CatBoost's own code) a wrapper
begins a ``FitRecorder`` with the estimator's params and the data, runs the fit, and records its
end from the fitted model: the metric history (``get_evals_result``), best iteration and scores,
the full configuration (``get_all_params``), the seed, feature importance, the snapshot file and
``model.cbm``. An exception ends the run ``failed`` with the traceback.

No callback is added: any Python callback makes CatBoost build the whole metric history anew at
every iteration (measured: 3,000 iterations 4.0 s -> 11.5 s; docs/integrations/catboost.md) and
CatBoost refuses callbacks on GPU. Your own ``AutotrackCallback`` in ``callbacks`` is used: then
metrics arrive live, each iteration, and the rest as above.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
from typing import Any

import catboost
from catboost import core as cb_core

from autotrack._capture.data import fingerprint
from autotrack._safety import guard
from autotrack.integrations._caller import called_by_user
from autotrack.integrations._common import FitRecorder, Patcher, autolog_on, env_rank_zero, log_json, outermost
from autotrack.integrations._gbm_common import OUTERMOST_KEY, bind, clean, drive, nested, unread

__all__ = ["POOL_HASH_LIMIT", "metric_name", "log_data", "log_end", "install", "undo"]

POOL_HASH_LIMIT = 4_000_000  # a Pool with at most this many values is fingerprinted by content
_patcher = Patcher()
_callback: Any = None  # the AutotrackCallback class (catboost.py imports this module)
_local = threading.local()  # inside catboost.train called by the user: its fit is the user's


def metric_name(data: str, metric: str) -> str:
    """CatBoost's own names joined as ``<data>-<metric>``: ``learn-Logloss``, ``validation-AUC``
    (``validation_0``, ``validation_1``... with several eval sets)."""
    return f"{data}-{metric}"


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"catboost.{cls.__name__}" if getattr(catboost, cls.__name__, None) is cls else f"{cls.__module__}.{cls.__qualname__}"


def log_data(recorder: FitRecorder, name: str, value: Any) -> None:
    """A ``Pool`` by its features (when small enough and numeric) and label; anything else as
    scikit-learn data."""
    if not isinstance(value, cb_core.Pool):
        recorder.data(name, value)
        return
    extra: dict[str, Any] = {"type": "catboost.Pool", "shape": [value.num_row(), value.num_col()]}
    content: Any = value
    if value.num_row() * value.num_col() <= POOL_HASH_LIMIT:
        try:
            content = value.get_features()
        except Exception:  # noqa: BLE001 - categorical or text features: shape and label only
            content = value
    label = value.get_label()
    if label is not None:
        extra["label"] = fingerprint(label)
    recorder.data(name, content, **extra)


def _steps(model: Any, count: int, period: int, patience: int | None) -> list[int]:
    """The iteration of each value in the metric history: every one, or every ``metric_period``-th
    and the last iteration trained (where early stopping, ``patience`` rounds after the best, stopped)."""
    if period <= 1 or count == 0:
        return list(range(count))
    trained = int(model.get_all_params().get("iterations") or 0)
    best = model.get_best_iteration()
    if patience and best is not None:
        trained = min(trained, best + patience + 1)
    return [*(k * period for k in range(count - 1)), max(trained - 1, (count - 1) * period)]


def replay_metrics(recorder: FitRecorder, model: Any, period: int = 1, patience: int | None = None) -> None:
    """The metric history, per iteration, as a callback would have logged it."""
    history = model.get_evals_result() or {}
    columns = [(metric_name(data, metric), values) for data, by_metric in history.items()
               for metric, values in by_metric.items() if values]
    if not columns:
        return
    every = recorder.options.log_every_n_steps
    count = max(len(values) for _, values in columns)
    steps = _steps(model, count, period, patience)
    for k, step in enumerate(steps):
        if every is None or (step + 1) % every == 0 or k == count - 1:
            recorder.metrics({name: values[k] for name, values in columns if k < len(values)}, step=step)


def log_end(recorder: FitRecorder, model: Any, *, replay: bool, snapshot: str | None,
            period: int = 1, patience: int | None = None) -> None:
    """After a fit: metrics (replayed when no callback logged them), best iteration and scores,
    configuration and seed, importance, snapshot, model."""
    if replay:
        replay_metrics(recorder, model, period, patience)
    final: dict[str, Any] = {"tree_count": model.tree_count_}
    best = model.get_best_iteration()
    if best is not None:
        final["best_iteration"] = best  # CatBoost's: from 0
        for data, by_metric in (model.get_best_score() or {}).items():
            final.update({f"best_score/{metric_name(data, m)}": v for m, v in by_metric.items()})
    recorder.metrics(final)
    resolved = model.get_all_params() or {}
    recorder.params({"config": {str(k): clean(v) for k, v in resolved.items()}})
    if isinstance(resolved.get("random_seed"), int):
        recorder.seeds({"catboost.random_seed": resolved["random_seed"]})
    with guard("catboost: feature importance"):  # some losses (ranking) need data for it: then none
        values = model.get_feature_importance()
        names = list(model.feature_names_ or [str(i) for i in range(len(values))])
        log_json(recorder, "feature_importance.json", {"PredictionValuesChange": dict(zip(names, values.tolist()))},
                 {"format": "json", "importance_types": ["PredictionValuesChange"]})
    if snapshot and os.path.isfile(snapshot):
        recorder.checkpoint(snapshot, {"format": "cbsnapshot", "source": "catboost save_snapshot",
                                       "iteration": final.get("tree_count")})
    if recorder.options.log_models:
        with tempfile.TemporaryDirectory(prefix="autotrack-catboost-") as folder:
            path = os.path.join(folder, "model.cbm")
            model.save_model(path)
            recorder.model(path, metadata={"flavor": "catboost", "format": "cbm", "class": _class_name(model),
                                           "catboost_version": catboost.__version__})


def _snapshot(model: Any, arguments: dict[str, Any]) -> str | None:
    """Where CatBoost writes its snapshot (``save_snapshot=True``): ``snapshot_file`` in ``train_dir``."""
    params = model.get_params()
    if not (arguments.get("save_snapshot") or params.get("save_snapshot")):
        return None
    name = arguments.get("snapshot_file") or params.get("snapshot_file") or "experiment.cbsnapshot"
    return os.path.join(params.get("train_dir") or "catboost_info", os.fspath(name))


def _eval_sets(value: Any) -> dict[str, Any]:
    sets = value if isinstance(value, list) else ([] if value is None else [value])
    if len(sets) == 1:
        return {"validation": sets[0]}
    return {f"validation_{i}": s for i, s in enumerate(sets)}


def _fit(wrapped: Any, model: Any, args: tuple, kwargs: dict) -> Any:
    if model is None or not autolog_on("catboost") or nested() or not (
            getattr(_local, "train", False) or called_by_user(model)):
        return wrapped(*args, **kwargs)
    _local.train = False  # only the outermost fit of catboost.train
    try:
        signature: inspect.Signature | None = inspect.signature(wrapped)
    except (TypeError, ValueError):
        signature = None
    arguments = bind(signature, args, kwargs)
    if arguments is None:
        return unread("CatBoost", f"{type(model).__name__}.fit", lambda: wrapped(*args, **kwargs))
    cb = None
    with guard("catboost: preparing the run"):  # on error: the call as it was, unrecorded
        callbacks = list(arguments.get("callbacks") or [])
        cb = next((c for c in callbacks if isinstance(c, _callback)), None) or _callback()
        live = cb in callbacks
        params = {str(k): clean(v) for k, v in model.get_params().items()}
        params["estimator_class"] = _class_name(model)
        params.update((k, clean(arguments[k])) for k in ("early_stopping_rounds", "use_best_model", "init_model")
                      if arguments.get(k) is not None)
        data = {"X": arguments.get("X"), "y": arguments.get("y"), **_eval_sets(arguments.get("eval_set"))}
        snapshot = _snapshot(model, arguments)
        given = model.get_params()
        period = int(arguments.get("metric_period") or given.get("metric_period") or 1)
        patience = arguments.get("early_stopping_rounds") or given.get("early_stopping_rounds") or given.get("od_wait")
    if cb is None:
        return wrapped(*args, **kwargs)
    with outermost(OUTERMOST_KEY):
        recorder = FitRecorder("catboost", cb.options, record=env_rank_zero())
        with guard("catboost: starting the run"):
            recorder.begin(type(model).__name__)
            recorder.params(params)
            for key, value in data.items():
                if value is not None and recorder.active:
                    log_data(recorder, key, value)
        cb.attach(recorder)
        return drive("catboost", recorder, cb, lambda: wrapped(*args, **kwargs),
                     lambda result: cb.record_end(model, replay=not live, snapshot=snapshot, period=period, patience=patience))


def _train(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
    """``catboost.train`` fits a ``CatBoost`` from CatBoost's own code: that fit is the user's."""
    if not autolog_on("catboost") or nested() or not called_by_user(None):
        return wrapped(*args, **kwargs)
    _local.train = True
    try:
        return wrapped(*args, **kwargs)
    finally:
        _local.train = False


def install(callback: type) -> None:
    """Idempotent: ``fit`` of ``CatBoost`` and of each subclass that defines its own, and ``train``."""
    global _callback
    _callback = callback
    if _patcher:
        return
    for cls in list(vars(cb_core).values()):
        if isinstance(cls, type) and issubclass(cls, cb_core.CatBoost) and "fit" in cls.__dict__ \
                and cls.__module__ == cb_core.__name__:
            _patcher.wrap(cls, "fit", _fit)
    _patcher.wrap(cb_core, "train", _train)
    if getattr(catboost, "train", None) is not None:
        _patcher.wrap(catboost, "train", _train)


def undo() -> None:
    _patcher.undo()
