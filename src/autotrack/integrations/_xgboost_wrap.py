"""autolog's wrappers around ``xgboost.train`` and the scikit-learn API's ``fit`` (see ``xgboost.py``).

Installed by ``enable()`` only, removed by ``disable()``. For a training that is yours and the
outermost one (not inside a scikit-learn Pipeline or search, not fitted by a library on your
behalf, see ``_caller``), a wrapper: takes your ``AutotrackCallback`` or adds a new one (to a
*new* callbacks list; an estimator's ``callbacks`` is put back right after ``fit``); begins a
``FitRecorder`` with what a callback cannot see (the train arguments or the estimator's params,
the data) and ``attach``es it to the callback, with the ``TrainingCheckPoint`` callbacks beside
it; runs the training; and ends the run, ``failed`` with the traceback if training raised (the
exception propagates unchanged). Arguments are read as XGBoost itself reads them (positional
ones in declaration order, as ``xgb.train(params, dtrain, num_round, watchlist)`` in XGBoost's
demos); a call that cannot be read is passed on unchanged, with one warning, and an
``AutotrackCallback`` in it records from its own hooks.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

import xgboost as xgb
from xgboost import sklearn as xgb_sklearn
from xgboost import training as xgb_training

from autotrack._safety import AutotrackWarning, guard
from autotrack.integrations import _xgboost_record as rec
from autotrack.integrations._caller import called_by_user
from autotrack.integrations._common import FitRecorder, Patcher, autolog_on, outermost

__all__ = ["OUTERMOST_KEY", "nested", "install", "undo"]

OUTERMOST_KEY = "sklearn"  # shared with the scikit-learn adapter: inside a Pipeline, an inner fit
_TRAIN = inspect.signature(xgb_training.train)
_NO_CALLBACKS = (xgb_sklearn.XGBRFClassifier, xgb_sklearn.XGBRFRegressor)  # they refuse callbacks
_patcher = Patcher()
_callback: Any = None  # the AutotrackCallback class (xgboost.py imports this module)
_warned: set[str] = set()


def nested() -> bool:
    """Inside another fit that records (a scikit-learn Pipeline or search, an estimator's fit)."""
    with outermost(OUTERMOST_KEY) as first:
        return not first


def _bind(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """The arguments by name, as XGBoost maps them, defaults included; None if they do not fit."""
    names = list(signature.parameters) if signature is not None else []
    if not names or len(args) > len(names) or any(k not in names or k in names[:len(args)] for k in kwargs):
        return None
    bound = {n: p.default for n, p in signature.parameters.items() if p.default is not p.empty}
    bound.update(zip(names, args), **kwargs)
    return bound if len(bound) == len(names) else None


def _unread(what: str, call: Callable[[], Any]) -> Any:
    result = call()
    if what not in _warned:
        _warned.add(what)
        warnings.warn(f"autotrack: could not read the arguments of {what}(...) (a newer XGBoost?): it ran "
                      "unchanged and autolog did not record it; an AutotrackCallback in its callbacks does",
                      AutotrackWarning, stacklevel=3)
    return result


def _callback_for(callbacks: list[Any]) -> tuple[Any, bool]:
    """The user's AutotrackCallback in this training, or a new one (True)."""
    mine = next((c for c in callbacks if isinstance(c, _callback)), None)
    return (mine, False) if mine is not None else (_callback(), True)


def _begin(cb: Any, name: str | None, params: dict[str, Any], data: dict[str, Any], callbacks: list[Any],
           save_model: bool = True) -> FitRecorder:
    recorder = FitRecorder("xgboost", cb.options, record=rec.rank_zero())
    with guard("xgboost: starting the run"):
        recorder.begin(name)
        recorder.params(params)
        for key, value in data.items():
            if value is not None and recorder.active:
                rec.log_data(recorder, key, value)
    with guard("xgboost: attaching the callback"):
        cb.attach(recorder, [c for c in callbacks if isinstance(c, xgb.callback.TrainingCheckPoint)], save_model)
    return recorder


def _drive(recorder: FitRecorder, cb: Any, call: Callable[[], Any], after: Callable[[], None] | None = None) -> Any:
    try:
        result = call()
    except BaseException as exc:
        cb.detach()
        with guard("xgboost: ending the run"):
            recorder.end(exc)
        raise
    if after is not None and recorder.active:
        with guard("xgboost: recording the trained model"):
            after()
    cb.detach()
    with guard("xgboost: ending the run"):
        recorder.end()
    return result


def _train(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
    if not autolog_on("xgboost") or nested():
        return wrapped(*args, **kwargs)
    arguments = _bind(_TRAIN, args, kwargs)
    if arguments is None:
        return _unread("xgboost.train", lambda: wrapped(*args, **kwargs))
    cb = None
    with guard("xgboost: preparing the run"):  # on error: the call as it was, unrecorded
        callbacks = list(arguments["callbacks"] or [])
        params, data = rec.train_params(arguments), {"dtrain": arguments["dtrain"]}
        data.update((name, d) for d, name in arguments["evals"] or [] if d is not arguments["dtrain"])
        cb, new = _callback_for(callbacks)
    if cb is None:
        return wrapped(*args, **kwargs)
    if new:  # a new list with it, where the callbacks were given (or as a keyword)
        callbacks.append(cb)
        where = list(_TRAIN.parameters).index("callbacks")
        args, kwargs = ((*args[:where], callbacks, *args[where + 1:]), kwargs) if where < len(args) \
            else (args, {**kwargs, "callbacks": callbacks})
    with outermost(OUTERMOST_KEY):
        recorder = _begin(cb, None, params, data, callbacks)
        return _drive(recorder, cb, lambda: wrapped(*args, **kwargs))


def _fit(wrapped: Any, est: Any, args: tuple, kwargs: dict) -> Any:
    if est is None or not autolog_on("xgboost") or nested() or not called_by_user(est):
        return wrapped(*args, **kwargs)
    try:
        signature: inspect.Signature | None = inspect.signature(wrapped)
    except (TypeError, ValueError):
        signature = None
    arguments = _bind(signature, args, kwargs)
    if arguments is None:
        return _unread(f"{type(est).__name__}.fit", lambda: wrapped(*args, **kwargs))
    cb = None
    with guard("xgboost: preparing the run"):
        original = est.callbacks
        callbacks = list(original or [])
        params, data = rec.estimator_params(est), {"X": arguments.get("X"), "y": arguments.get("y")}
        data.update((f"validation_{i}", tuple(pair)) for i, pair in enumerate(arguments.get("eval_set") or []))
        cb, new = _callback_for(callbacks)
    if cb is None:
        return wrapped(*args, **kwargs)
    replay = isinstance(est, _NO_CALLBACKS)  # no callback runs: what it would record, after fit
    injected = new and not replay

    def call() -> Any:
        if injected:  # a new list, for this fit only
            est.callbacks = [*callbacks, cb]
        try:
            return wrapped(*args, **kwargs)
        finally:
            if injected:
                est.callbacks = original

    with outermost(OUTERMOST_KEY):
        recorder = _begin(cb, type(est).__name__, params, data, callbacks, save_model=False)
        return _drive(recorder, cb, call, lambda: _after_fit(cb, recorder, est, replay))


def _after_fit(cb: Any, recorder: FitRecorder, est: Any, replay: bool) -> None:
    if replay:  # XGBRF* refuse callbacks: its hooks are called now, with the recorded evaluations
        booster = est.get_booster()
        results = getattr(est, "evals_result_", None) or {}
        cb.before_training(booster)
        for step in range(max((len(v) for by_name in results.values() for v in by_name.values()), default=0)):
            cb.after_iteration(booster, step, {data: {name: values[:step + 1] for name, values in by_name.items()}
                                               for data, by_name in results.items()})
        cb.after_training(booster)
    if recorder.options.log_models:
        rec.log_model(recorder, est)


def install(callback: type) -> None:
    """Idempotent. ``xgboost.train`` as the package and ``xgboost.training`` name it; the ``fit``
    of every scikit-learn API class that defines one (their subclasses inherit it)."""
    global _callback
    _callback = callback
    if _patcher:
        return
    _patcher.wrap(xgb_training, "train", _train)
    if getattr(xgb, "train", None) is not None:
        _patcher.wrap(xgb, "train", _train)
    for cls in list(vars(xgb_sklearn).values()):
        if isinstance(cls, type) and issubclass(cls, xgb_sklearn.XGBModel) and "fit" in cls.__dict__ \
                and cls.__module__ == xgb_sklearn.__name__:
            _patcher.wrap(cls, "fit", _fit)


def undo() -> None:
    _patcher.undo()
