"""The wrappers around ``xgboost.train`` and the scikit-learn API's ``fit`` (see ``xgboost.py``).

Each one, when it is the outermost fit: takes the user's ``AutotrackCallback`` or, with autolog
on, a new one (added to a *new* callbacks list; an estimator's ``callbacks`` is put back right
after ``fit``); begins the run and records what a callback cannot see (train arguments or the
estimator's params, the data); runs the training; and ends the run, ``failed`` with the
traceback if training raised (the exception itself propagates unchanged).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import xgboost as xgb
from xgboost import sklearn as xgb_sklearn
from xgboost import training as xgb_training

from autotrack._safety import guard
from autotrack.integrations import _xgboost_record as rec
from autotrack.integrations._common import Patcher, outermost

__all__ = ["OUTERMOST_KEY", "install", "undo"]

OUTERMOST_KEY = "sklearn"  # shared with the scikit-learn adapter: inside a Pipeline, an inner fit
_NO_CALLBACKS = (xgb_sklearn.XGBRFClassifier, xgb_sklearn.XGBRFRegressor)  # they refuse callbacks
_TRAIN_SIGNATURE = inspect.signature(xgb_training.train)
_patcher = Patcher()
_state: dict[str, Any] = {"callback": None, "autolog_on": lambda: False}


def _drive(call: Callable[[], Any], cb: Any, after: Callable[[Any], None] | None = None) -> Any:
    try:
        result = call()
    except BaseException as exc:
        with guard("xgboost: ending the run"):
            cb._end(exc)
        raise
    finally:
        cb._wrapped = False
    if after is not None and cb._run is not None:
        with guard("xgboost: recording the trained model"):
            after(result)
    with guard("xgboost: ending the run"):
        cb._end()
    return result


def _pick(callbacks: Any) -> tuple[Any, bool]:
    """The user's AutotrackCallback, or a new one when autolog is on; and whether it is new."""
    cls = _state["callback"]
    mine = [c for c in (callbacks or []) if isinstance(c, cls)]
    if mine:
        return mine[0], False
    return (cls(), True) if _state["autolog_on"]() else (None, False)


def _train(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    with outermost(OUTERMOST_KEY) as first:
        cb = None
        try:
            bound = _TRAIN_SIGNATURE.bind(*args, **kwargs) if first else None
        except TypeError:  # a wrong call: let xgboost itself say so
            bound = None
        if bound is not None:
            with guard("xgboost: preparing the run"):
                bound.apply_defaults()
                arguments = bound.arguments
                cb, new = _pick(arguments.get("callbacks"))
                if cb is not None:
                    if new:
                        arguments["callbacks"] = [*(arguments.get("callbacks") or []), cb]
                    args, kwargs = bound.args, bound.kwargs
                    cb._wrapped = True
                    cb._begin()
                    data = {"dtrain": arguments["dtrain"]}
                    data.update((name, d) for d, name in arguments.get("evals") or [] if d is not arguments["dtrain"])
                    cb._describe(rec.train_params(arguments), data)
        if cb is None:
            return wrapped(*args, **kwargs)
        return _drive(lambda: wrapped(*args, **kwargs), cb)


def _fit(wrapped: Any, est: Any, args: tuple, kwargs: dict) -> Any:
    with outermost(OUTERMOST_KEY) as first:
        cb, original, injected, replay = None, None, False, False
        if first and est is not None:
            with guard("xgboost: preparing the run"):
                original = est.callbacks
                cb, new = _pick(original)
                if cb is not None:
                    params = rec.estimator_params(est)
                    replay = new and isinstance(est, _NO_CALLBACKS)  # no callback runs: replay after fit
                    if new and not replay:
                        est.callbacks, injected = [*(original or []), cb], True
                    cb._wrapped = True
                    cb._begin(type(est).__name__)
                    data = {"X": args[0] if args else kwargs.get("X"),
                            "y": args[1] if len(args) > 1 else kwargs.get("y")}
                    data.update((f"validation_{i}", tuple(pair)) for i, pair in enumerate(kwargs.get("eval_set") or []))
                    cb._describe(params, data, estimator=est)
        if cb is None:
            return wrapped(*args, **kwargs)

        def call() -> Any:
            try:
                return wrapped(*args, **kwargs)
            finally:
                if injected:
                    est.callbacks = original

        return _drive(call, cb, lambda _: _after_fit(cb, est, replay))


def _after_fit(cb: Any, est: Any, replay: bool) -> None:
    booster = est.get_booster()
    if replay:  # XGBRF* refuse callbacks: record after the fit what the callback would have
        cb._log_config(booster)
        for data, by_name in (getattr(est, "evals_result_", None) or {}).items():
            for name, values in by_name.items():
                for step, value in enumerate(values):
                    cb._run.log_metrics({f"{data}-{name}": value}, step=step)
        cb._record_end(booster)
    if cb.options.log_models:
        rec.log_estimator(cb._run, est)


def _subclasses(root: type) -> list[type]:
    found, stack = [], [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


def install(callback: type, autolog_on: Callable[[], bool]) -> None:
    """Idempotent. ``xgboost.train`` as the package and ``xgboost.training`` name it; the ``fit``
    of every scikit-learn API class that defines one (their subclasses inherit it)."""
    _state.update(callback=callback, autolog_on=autolog_on)
    if _patcher:
        return
    _patcher.wrap(xgb_training, "train", _train)
    if getattr(xgb, "train", None) is not None:
        _patcher.wrap(xgb, "train", _train)
    for cls in [xgb_sklearn.XGBModel, *_subclasses(xgb_sklearn.XGBModel)]:
        if cls.__module__ == xgb_sklearn.__name__ and "fit" in cls.__dict__:
            _patcher.wrap(cls, "fit", _fit)


def undo() -> None:
    _patcher.undo()
