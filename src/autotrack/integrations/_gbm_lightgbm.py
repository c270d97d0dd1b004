"""What the LightGBM adapter records besides metrics (params, seeds, data, importance, the model)
and autolog's wrappers around ``lgb.train``, ``lgb.cv`` and the scikit-learn API's ``fit``.

The wrappers are installed by ``enable()`` only and removed by ``disable()``. For a training that
is yours and outermost (not inside a scikit-learn Pipeline or search, not fitted by a library for
you) a wrapper takes your ``AutotrackCallback`` or adds a new one (to a *new* callbacks list),
begins a ``FitRecorder`` with what a callback cannot see (the call's arguments or the estimator's
params, the data), ``attach``es it, runs the training and ends the run: ``failed`` with the
traceback if it raised. ``LGBMModel.fit`` calls ``train`` through ``lightgbm.sklearn``'s own
name, which is left alone: an estimator's fit is one run, not two.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import lightgbm as lgb
from lightgbm import engine as lgb_engine
from lightgbm import sklearn as lgb_sklearn

from autotrack._capture.data import fingerprint
from autotrack._safety import guard
from autotrack.integrations._caller import called_by_user
from autotrack.integrations._common import FitRecorder, Patcher, autolog_on, env_rank_zero, log_json, outermost, writes
from autotrack.integrations._gbm_common import OUTERMOST_KEY, bind, clean, drive, nested, unread

__all__ = ["SEED_KEYS", "EARLY_STOPPING_KEYS", "given_params", "seeds", "eval_metrics", "config", "log_data",
           "log_end", "done", "watch_end", "unwatch_end", "install", "undo"]

SEED_KEYS = ("seed", "random_seed", "random_state")  # LightGBM's aliases of `seed`
EARLY_STOPPING_KEYS = ("early_stopping_round", "early_stopping_rounds", "early_stopping", "n_iter_no_change")
_TRAIN, _CV = inspect.signature(lgb_engine.train), inspect.signature(lgb_engine.cv)
_patcher = Patcher()
_callback: Any = None  # the AutotrackCallback class (lightgbm.py imports this module)


# -- what is recorded ----------------------------------------------------------------------------
def given_params(params: Any) -> dict[str, Any]:
    return {str(k): clean(v) for k, v in dict(params or {}).items()}


def seeds(params: dict[str, Any]) -> dict[str, int]:
    """``lightgbm.<name>`` for every seed in a params dict (the resolved configuration has all)."""
    found = {}
    for key, value in params.items():
        if (key in SEED_KEYS or key.endswith("_seed")) and isinstance(value, int) and not isinstance(value, bool):
            found["lightgbm.seed" if key in SEED_KEYS else f"lightgbm.{key}"] = value
    return found


def eval_metrics(results: Any) -> dict[str, float]:
    """One iteration's evaluations under LightGBM's own names: ``<data>-<metric>`` as ``lgb.train``
    names its data (``training``, ``valid_0`` or your ``valid_names``); for ``lgb.cv`` the keys of
    its result dict (``valid l2-mean``, ``valid l2-stdv``)."""
    metrics: dict[str, float] = {}
    for item in results or ():
        if len(item) >= 5:  # cv: (data, metric, mean, higher_is_better, stdv)
            metrics[f"{item[0]} {item[1]}-mean"] = item[2]
            metrics[f"{item[0]} {item[1]}-stdv"] = item[4]
        else:
            metrics[f"{item[0]}-{item[1]}"] = item[2]
    return metrics


def config(booster: Any) -> dict[str, Any]:
    """The booster's full configuration as LightGBM resolved it (defaults included). LightGBM has
    no public reader: ``_get_loaded_param`` is the one ``Booster(model_file=...)`` itself uses."""
    reader = getattr(booster, "_get_loaded_param", None)
    try:
        loaded = reader() if reader is not None else {}
    except Exception:  # noqa: BLE001 - a booster kept for more training has no loaded params
        return {}
    return loaded if isinstance(loaded, dict) else {}


def early_stopping(params: dict[str, Any], callbacks: list[Any]) -> Any:
    for key in EARLY_STOPPING_KEYS:
        if params.get(key) is not None:
            return params[key]
    found = [getattr(c, "stopping_rounds", None) for c in callbacks if type(c).__name__ == "_EarlyStoppingCallback"]
    return found[0] if found else None


def log_data(recorder: FitRecorder, name: str, value: Any) -> None:
    """A ``lgb.Dataset`` by the raw data it was made from (read before training frees it), with its
    label; a file path by name; anything else as scikit-learn data."""
    if not isinstance(value, lgb.Dataset):
        recorder.data(name, value)
        return
    raw, extra = value.data, {"type": "lightgbm.Dataset"}
    if isinstance(raw, (str, os.PathLike)):
        extra["path"] = os.fspath(raw)
    label = getattr(value, "label", None)
    if raw is None and value._handle is not None:  # constructed before, its raw data freed: shape and label only
        raw, extra["shape"], label = value, [value.num_data(), value.num_feature()], value.get_label()
    if label is not None:
        extra["label"] = fingerprint(label)
    recorder.data(name, raw, **extra)


def log_end(recorder: FitRecorder, booster: Any, trained: int | None, cls: str = "lightgbm.Booster") -> None:
    """After training: rounds trained (``trained``, as the callback counted them: after early
    stopping LightGBM keeps the trees up to the best one only), best iteration and scores,
    configuration, seeds, importance, model."""
    final: dict[str, Any] = {"num_boosted_rounds": trained if trained is not None else booster.current_iteration()}
    if booster.best_iteration and booster.best_iteration > 0:
        final["best_iteration"] = booster.best_iteration  # LightGBM's: rounds to use, from 1
    for data, by_metric in (booster.best_score or {}).items() if "best_iteration" in final else ():
        final.update({f"best_score/{data}-{metric}": value for metric, value in by_metric.items()})
    recorder.metrics(final)
    resolved = config(booster)
    if resolved:
        recorder.params({"config": {k: clean(v) for k, v in resolved.items()}})
        recorder.seeds(seeds(resolved))
    names = booster.feature_name()
    importance = {kind: dict(zip(names, booster.feature_importance(importance_type=kind).tolist()))
                  for kind in ("split", "gain")}
    log_json(recorder, "feature_importance.json", importance, {"format": "json", "importance_types": ["gain", "split"]})
    if recorder.options.log_models:  # the text save_model writes, made here, written by the run's writer
        recorder.model_made("model.txt", writes(booster.model_to_string().encode("utf-8")),
                            metadata={"flavor": "lightgbm", "format": "text", "class": cls,
                                      "lightgbm_version": lgb.__version__})


def done(model: Any, last: int | None, end: int | None) -> bool:
    """Whether a training whose end the callback did not see completed (early stopping included):
    ``lgb.train`` replaces the booster's ``best_score`` only after its loop; ``lgb.cv`` sets a
    best iteration when it stops early, and has nothing after its last iteration."""
    if isinstance(model, lgb.Booster):
        return type(model.best_score) is not dict
    return getattr(model, "best_iteration", -1) > 0 or (last is not None and end is not None and last >= end - 1)


def watch_end(booster: Any, callback: Any) -> None:
    """``lgb.train`` ends by reloading the booster from its own text (``model_from_string``), after
    setting its best iteration and score: an instance attribute in front of that method tells a
    callback used alone that the training is over. It removes itself on first use."""
    original = booster.model_from_string

    def model_from_string(model_str: str) -> Any:
        unwatch_end(booster)
        result = original(model_str)
        callback(booster)
        return result

    booster.model_from_string = model_from_string


def unwatch_end(booster: Any) -> None:
    if booster is not None and "model_from_string" in vars(booster):
        del booster.model_from_string


# -- autolog's wrappers ----------------------------------------------------------------------------
def _with_callback(callbacks: list[Any]) -> tuple[Any, list[Any]]:
    """The user's AutotrackCallback in this training, or a new one in a new list."""
    mine = next((c for c in callbacks if isinstance(c, _callback)), None)
    return (mine, callbacks) if mine is not None else (_callback(), [*callbacks, None])


def _begin(cb: Any, name: str | None, params: dict[str, Any], data: dict[str, Any]) -> FitRecorder:
    recorder = FitRecorder("lightgbm", cb.options, record=env_rank_zero())
    with guard("lightgbm: starting the run"):
        recorder.begin(name)
        recorder.params(params)
        recorder.seeds(seeds(params))
        for key, value in data.items():
            if value is not None and recorder.active:
                log_data(recorder, key, value)
    cb.attach(recorder)
    return recorder


def _valid_data(valid_sets: Any, valid_names: Any, train: Any) -> dict[str, Any]:
    sets = [valid_sets] if isinstance(valid_sets, lgb.Dataset) else list(valid_sets or [])
    names = [valid_names] if isinstance(valid_names, str) else list(valid_names or [])
    return {(names[i] if i < len(names) else f"valid_{i}"): d for i, d in enumerate(sets) if d is not train}


def _engine(kind: str, signature: inspect.Signature):
    def wrapper(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
        if not autolog_on("lightgbm") or nested():
            return wrapped(*args, **kwargs)
        arguments = bind(signature, args, kwargs)
        if arguments is None:
            return unread("LightGBM", f"lightgbm.{kind}", lambda: wrapped(*args, **kwargs))
        cb = None
        with guard("lightgbm: preparing the run"):  # on error: the call as it was, unrecorded
            callbacks = list(arguments.get("callbacks") or [])
            params = given_params(arguments.get("params"))
            params["num_boost_round"] = arguments.get("num_boost_round")
            params["early_stopping_rounds"] = early_stopping(params, callbacks)
            extra = ("init_model", "feval") + (("nfold", "stratified", "shuffle", "metrics", "seed") if kind == "cv" else ())
            params.update((k, clean(arguments[k])) for k in extra if arguments.get(k) is not None)
            data = {"train_set": arguments["train_set"]}
            if kind == "train":
                data.update(_valid_data(arguments.get("valid_sets"), arguments.get("valid_names"), data["train_set"]))
            cb, callbacks = _with_callback(callbacks)
            if callbacks[-1] is None:
                callbacks[-1] = cb
        if cb is None:
            return wrapped(*args, **kwargs)
        arguments["callbacks"] = callbacks
        with outermost(OUTERMOST_KEY):
            recorder = _begin(cb, None, params, data)
            return drive("lightgbm", recorder, cb, lambda: wrapped(**arguments), lambda result: cb.record_end())
    return wrapper


def _fit(wrapped: Any, est: Any, args: tuple, kwargs: dict) -> Any:
    if est is None or not autolog_on("lightgbm") or nested() or not called_by_user(est):
        return wrapped(*args, **kwargs)
    try:
        signature: inspect.Signature | None = inspect.signature(wrapped)
    except (TypeError, ValueError):
        signature = None
    arguments = bind(signature, args, kwargs)
    if arguments is None:
        return unread("LightGBM", f"{type(est).__name__}.fit", lambda: wrapped(*args, **kwargs))
    cb = None
    with guard("lightgbm: preparing the run"):
        callbacks = list(arguments.get("callbacks") or [])
        params = {str(k): clean(v) for k, v in est.get_params().items()}
        params["estimator_class"] = _class_name(est)
        params["early_stopping_rounds"] = early_stopping(params, callbacks)
        X, y = arguments.get("X"), arguments.get("y")
        data = {"X": X, "y": y}
        names = list(arguments.get("eval_names") or [])
        for i, pair in enumerate(_eval_pairs(arguments)):
            if not (pair[0] is X and pair[1] is y):  # LightGBM evaluates the training data as "training"
                data[names[i] if i < len(names) else f"valid_{i}"] = tuple(pair)
        cb, callbacks = _with_callback(callbacks)
        if callbacks[-1] is None:
            callbacks[-1] = cb
    if cb is None:
        return wrapped(*args, **kwargs)
    arguments["callbacks"] = callbacks
    with outermost(OUTERMOST_KEY):
        recorder = _begin(cb, type(est).__name__, params, data)
        return drive("lightgbm", recorder, cb, lambda: wrapped(**arguments),
                     lambda result: cb.record_end(est.booster_, _class_name(est)))


def _eval_pairs(arguments: dict[str, Any]) -> list[tuple[Any, Any]]:
    """``eval_set=[(X, y), ...]``, or LightGBM 4.7's ``eval_X=``/``eval_y=`` (one each, or tuples)."""
    if arguments.get("eval_set"):
        return [tuple(pair) for pair in arguments["eval_set"]]
    xs, ys = arguments.get("eval_X"), arguments.get("eval_y")
    if xs is None:
        return []
    xs, ys = (xs, ys) if isinstance(xs, tuple) else ((xs,), (ys,))
    return list(zip(xs, ys if isinstance(ys, tuple) else (ys,) * len(xs)))


def _class_name(est: Any) -> str:
    cls = type(est)
    return f"lightgbm.{cls.__name__}" if getattr(lgb, cls.__name__, None) is cls else f"{cls.__module__}.{cls.__qualname__}"


def install(callback: type) -> None:
    """Idempotent: ``lightgbm.train``/``cv`` as the package and ``lightgbm.engine`` name them, and the
    ``fit`` of every scikit-learn API class that defines one (subclasses inherit it)."""
    global _callback
    _callback = callback
    if _patcher:
        return
    for kind, signature in (("train", _TRAIN), ("cv", _CV)):
        wrapper = _engine(kind, signature)
        _patcher.wrap(lgb_engine, kind, wrapper)
        if getattr(lgb, kind, None) is not None:
            _patcher.wrap(lgb, kind, wrapper)
    for cls in list(vars(lgb_sklearn).values()):
        if isinstance(cls, type) and issubclass(cls, lgb_sklearn.LGBMModel) and "fit" in cls.__dict__ \
                and cls.__module__ == lgb_sklearn.__name__:
            _patcher.wrap(cls, "fit", _fit)


def undo() -> None:
    _patcher.undo()
