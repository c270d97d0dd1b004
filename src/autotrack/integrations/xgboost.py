"""XGBoost: one ``xgb.train`` call, or one ``fit`` of its scikit-learn API, is one run.

``AutotrackCallback`` (an ``xgboost.callback.TrainingCallback``) records the booster's full
configuration, every evaluation metric per iteration under XGBoost's own names
(``train-logloss``, ``val-auc``, ``validation_0-rmse``), best iteration and score, feature
importance and the model in XGBoost's own format (``model.ubj``).

Thin wrappers around ``xgboost.train`` and the scikit-learn API's ``fit`` (``_xgboost_wrap``),
installed when this module is imported (and again by ``autolog()`` or a new callback), add a callback when autolog is
on and the user gave none, hand it what a callback cannot see (``num_boost_round``,
``early_stopping_rounds``, the params dict or the estimator's params, the data), and end the run
``failed`` with the traceback when training raises: XGBoost has no exception hook. Without the
wrappers (after ``autolog(disable=True)``) the callback still records from its own hooks.
An XGBoost model inside a scikit-learn Pipeline or search is an inner fit: no run of its own.
"""

from __future__ import annotations

import json
from typing import Any

import xgboost as xgb

from autotrack._safety import guard
from autotrack.integrations import _xgboost_record as rec
from autotrack.integrations import _xgboost_wrap as wrap
from autotrack.integrations._common import FitSession, explicit_options, outermost, resolve_options

__all__ = ["AutotrackCallback", "enable", "disable"]

OUTERMOST_KEY = wrap.OUTERMOST_KEY  # shared with the scikit-learn adapter
_autolog = {"on": False}


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
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps))
        self._wrapped = False  # True while a wrapper drives this callback's run
        self._reset()
        with guard("xgboost: installing the train/fit wrappers"):
            _install()

    def _reset(self) -> None:
        self._session: FitSession | None = None
        self._run: Any = None
        self._estimator: Any = None
        self._seeded = False
        self._pending: tuple[int, dict[str, float]] | None = None

    # sklearn's clone() deep-copies callbacks and estimators get pickled: keep only the settings
    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options = state["options"]
        self._wrapped = False
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


def _install() -> None:
    wrap.install(AutotrackCallback, lambda: _autolog["on"])


def enable(config: Any) -> None:
    """autolog(): every ``train``/``fit`` gets an ``AutotrackCallback`` unless the user gave one."""
    _autolog["on"] = True
    _install()


def disable() -> None:
    _autolog["on"] = False
    wrap.undo()


# At import, not only when a callback is made: in ``xgb.train(..., callbacks=[AutotrackCallback()])``
# Python looks ``xgb.train`` up before it makes the callback. Without autolog or a callback of
# ours in the list, the wrappers only pass the call on.
with guard("xgboost: installing the train/fit wrappers"):
    _install()
