"""XGBoost: one ``xgb.train`` call, or one ``fit`` of its scikit-learn API, is one run.

``AutotrackCallback`` (an ``xgboost.callback.TrainingCallback``) records the booster's full
configuration, every evaluation metric per iteration under XGBoost's own names
(``train-logloss``, ``val-auc``, ``validation_0-rmse``), best iteration and score, feature
importance and the model in XGBoost's own format (``model.ubj``).

Thin wrappers around ``xgboost.train`` and the scikit-learn API's ``fit`` -- installed by
``autotrack.autolog()`` or by creating a callback -- add a callback to a *new* list when autolog
is on and the user gave none (the user's list is never touched; the estimator's ``callbacks``
is restored after ``fit``), hand it what a callback cannot see (``num_boost_round``,
``early_stopping_rounds``, the params dict or the estimator's params, the data), and end the run
``failed`` with the traceback when training raises: XGBoost has no exception hook. Without the
wrappers (after ``autolog(disable=True)``) the callback still records from its own hooks.

The wrappers share the "outermost" key of the scikit-learn adapter: an XGBoost model inside a
Pipeline or a search is an inner fit and records nothing of its own.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable

import xgboost as xgb
from xgboost import sklearn as xgb_sklearn
from xgboost import training as xgb_training

from autotrack._safety import guard
from autotrack.integrations import _xgboost_record as rec
from autotrack.integrations._common import FitSession, Patcher, outermost, resolve_options

__all__ = ["AutotrackCallback", "enable", "disable"]

OUTERMOST_KEY = "sklearn"  # shared with the scikit-learn adapter
_patcher = Patcher()
_autolog = {"on": False}
_NO_CALLBACKS = (xgb_sklearn.XGBRFClassifier, xgb_sklearn.XGBRFRegressor)  # they refuse callbacks


def _rank_zero() -> bool:
    try:
        return xgb.collective.get_rank() == 0
    except Exception:  # noqa: BLE001 - no communicator: a single process
        return True


def _nested() -> bool:
    with outermost(OUTERMOST_KEY) as first:
        return not first


class AutotrackCallback(xgb.callback.TrainingCallback):
    """Record each training this callback is given to as one run (or into the active run).

    Example::

        from autotrack.integrations.xgboost import AutotrackCallback
        booster = xgb.train(params, dtrain, 100, evals=[(dval, "val")], callbacks=[AutotrackCallback()])
        model = xgb.XGBClassifier(n_estimators=100, callbacks=[AutotrackCallback(experiment="churn")])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults.
    ``after_iteration`` never asks XGBoost to stop.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None) -> None:
        super().__init__()
        given = dict(uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
                     log_every_n_steps=log_every_n_steps)
        self.options = resolve_options(**{k: v for k, v in given.items() if v is not None})
        self._reset()
        with guard("xgboost: installing the train/fit wrappers"):
            _install()

    def _reset(self) -> None:
        self._session: FitSession | None = None
        self._run: Any = None
        self._wrapped = False  # True while a wrapper drives this callback's run
        self._estimator: Any = None
        self._seeded = False
        self._pending: tuple[int, dict[str, float]] | None = None

    # sklearn's clone() deep-copies callbacks and estimators get pickled: keep only the settings
    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options = state["options"]
        self._reset()

    # -- the run's life (wrappers call _begin/_end; without them, the training hooks do) -------
    def _begin(self, name: str | None = None) -> None:
        if self._session is not None:  # a training without the wrappers died before after_training
            self._end(RuntimeError("the previous training ended without after_training"))
        self._session = FitSession("xgboost", self.options, record=_rank_zero())
        run = self._session.begin(name)
        self._run = run if self._session.active else None

    def _end(self, exc: BaseException | None = None) -> None:
        session = self._session
        self._reset()
        if session is not None:
            session.end(exc)

    def _describe(self, params: dict[str, Any], data: dict[str, Any], estimator: Any = None) -> None:
        """What the wrappers see and the hooks do not: train arguments, estimator, data."""
        run = self._run
        if run is None:
            return
        self._estimator = estimator
        run.log_params(params)
        found = rec.explicit_seeds(params)
        if found:
            run.log_seeds(found)
            self._seeded = True
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, xgb.DMatrix):
                rec.log_dmatrix(run, name, value)
            else:
                run.log_data(name, value)

    # -- TrainingCallback ----------------------------------------------------------------------
    def before_training(self, model: Any) -> Any:
        with guard("xgboost: starting the run"):
            if not self._wrapped and isinstance(model, xgb.Booster) and not _nested():
                self._begin()
            if self._run is not None and isinstance(model, xgb.Booster):
                self._log_config(model)
        return model

    def _log_config(self, booster: Any) -> None:
        config = json.loads(booster.save_config())
        self._run.log_params({"config": config})
        seed = rec.config_seed(config)
        if not self._seeded and seed is not None:
            self._run.log_seeds({"xgboost.seed": seed})
            self._seeded = True

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if self._run is not None:
            with guard("xgboost: logging metrics"):
                metrics = {f"{data}-{name}": _last(values) for data, by_name in evals_log.items()
                           for name, values in by_name.items() if values}
                every = self.options.log_every_n_steps
                if metrics and (every is None or (epoch + 1) % every == 0):
                    self._run.log_metrics(metrics, step=epoch)
                    self._pending = None
                elif metrics:
                    self._pending = (epoch, metrics)
        return False

    def after_training(self, model: Any) -> Any:
        if self._run is not None:
            with guard("xgboost: recording the trained model"):
                self._record_end(model)
            if not self._wrapped:
                with guard("xgboost: ending the run"):
                    self._end()
        return model

    def _record_end(self, booster: Any) -> None:
        run = self._run
        if self._pending is not None:
            run.log_metrics(self._pending[1], step=self._pending[0])
            self._pending = None
        best = {key: booster.attr(key) for key in ("best_iteration", "best_score")}
        final = {"num_boosted_rounds": booster.num_boosted_rounds()}
        final.update({k: (int(v) if k == "best_iteration" else float(v)) for k, v in best.items() if v is not None})
        run.log_metrics(final)
        rec.log_importance(run, booster)
        if self.options.log_models and self._estimator is None:  # an estimator is saved by its wrapper
            rec.log_booster(run, booster)


def _last(values: Any) -> float:
    value = values[-1]
    return value[0] if isinstance(value, tuple) else value  # xgb.cv logs (mean, std)


# -- wrappers --------------------------------------------------------------------------------
def _drive(call: Callable[[], Any], cb: AutotrackCallback, after: Callable[[Any], None] | None = None) -> Any:
    """Run the training with ``cb`` driven by the wrapper: failed on an exception, then re-raised."""
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


def _pick(callbacks: Any) -> tuple[AutotrackCallback | None, bool]:
    """The user's AutotrackCallback, or a new one when autolog is on; and whether it is new."""
    mine = [c for c in (callbacks or []) if isinstance(c, AutotrackCallback)]
    if mine:
        return mine[0], False
    return (AutotrackCallback(), True) if _autolog["on"] else (None, False)


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
                    X = args[0] if args else kwargs.get("X")
                    y = args[1] if len(args) > 1 else kwargs.get("y")
                    data = {"X": X, "y": y}
                    data.update((f"validation_{i}", tuple(pair)) for i, pair in enumerate(kwargs.get("eval_set") or []))
                    cb._describe(params, data, estimator=est)
        if cb is None:
            return wrapped(*args, **kwargs)
        try:
            return _drive(lambda: wrapped(*args, **kwargs), cb, lambda _: _after_fit(cb, est, replay))
        finally:
            if injected:
                est.callbacks = original


def _after_fit(cb: AutotrackCallback, est: Any, replay: bool) -> None:
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


_TRAIN_SIGNATURE = inspect.signature(xgb_training.train)


def _install() -> None:
    if _patcher:
        return
    _patcher.wrap(xgb_training, "train", _train)
    if getattr(xgb, "train", None) is not None:
        _patcher.wrap(xgb, "train", _train)
    classes = [xgb_sklearn.XGBModel, *_subclasses(xgb_sklearn.XGBModel)]
    for cls in classes:
        if cls.__module__ == xgb_sklearn.__name__ and "fit" in cls.__dict__:
            _patcher.wrap(cls, "fit", _fit)


def _subclasses(root: type) -> list[type]:
    found, stack = [], [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


def enable(config: Any) -> None:
    """autolog(): every ``train``/``fit`` gets an ``AutotrackCallback`` unless the user gave one."""
    _autolog["on"] = True
    _install()


def disable() -> None:
    _autolog["on"] = False
    _patcher.undo()
