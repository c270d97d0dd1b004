"""CatBoost: one ``fit`` of ``CatBoost``, ``CatBoostClassifier``, ``CatBoostRegressor`` or
``CatBoostRanker`` (or one ``catboost.train`` call) is one run.

``autotrack.autolog()`` wraps those ``fit`` methods and ``catboost.train`` (``_gbm_catboost``;
``autolog(disable=True)`` removes them) and records the params, the data, every evaluation metric
per iteration under CatBoost's own names (``learn-Logloss``, ``validation-AUC``), best iteration
and scores, the full configuration and seed, feature importance, the snapshot and ``model.cbm``.
It adds no callback (a callback slows CatBoost down, see ``_gbm_catboost``): metrics are read
from the fitted model when ``fit`` returns.

``AutotrackCallback`` (CatBoost's ``callbacks`` API: ``after_iteration(info)``) logs the metrics
live, at every iteration. CatBoost gives a callback only the iteration number and the metric
history: no model, no params, no end of training. Under ``autolog()`` the wrapper records the
rest; used alone, the callback records the metrics, and its run ends at the callback's next
training or with the program (finished, or failed if the program dies of an exception). Such a
run is never the active run: nothing after the fit joins it.
"""

from __future__ import annotations

from typing import Any

import catboost  # noqa: F401 - the framework, imported at the top as every integration does

from autotrack._safety import guard
from autotrack.integrations import _gbm_catboost as rec
from autotrack.integrations._common import FitRecorder, env_rank_zero, explicit_options, resolve_options
from autotrack.integrations._gbm_common import Open, nested

__all__ = ["AutotrackCallback", "enable", "disable"]


class AutotrackCallback:
    """Log a CatBoost fit's metrics at every iteration, into the fit's run (or a run of its own).

    Example::

        from autotrack.integrations.catboost import AutotrackCallback
        model = CatBoostClassifier(iterations=500, eval_metric="AUC")
        model.fit(X, y, eval_set=(X_val, y_val), callbacks=[AutotrackCallback(experiment="churn")])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults.
    ``after_iteration`` always returns True: autotrack never stops training.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None,
                 register_as: str | None = None) -> None:
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps, register_as=register_as))
        self.recorder: FitRecorder | None = None
        self._own = False  # began by this callback (no wrapper): ended by it
        self._reset()

    def _reset(self) -> None:
        self._last = 0  # CatBoost's iteration number (from 1) last seen
        self._lengths: dict[str, int] = {}  # values seen per metric (metric_period: not every iteration)
        self._pending: tuple[int, dict[str, float]] | None = None
        self._skip = False  # an inner fit (scikit-learn Pipeline or search): nothing recorded

    def __getstate__(self) -> dict[str, Any]:  # estimators get pickled and cloned: the settings only
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options, self.recorder, self._own = state["options"], None, False
        self._reset()

    # -- for autolog's wrapper -------------------------------------------------------------------
    def attach(self, recorder: FitRecorder) -> None:
        """Log the next fit's metrics into ``recorder``, which the caller began and will end."""
        self.close_open()
        self.recorder, self._own = recorder, False
        self._reset()

    def detach(self) -> None:
        if not self._own:
            self.recorder = None
            self._reset()

    def record_end(self, model: Any, replay: bool, snapshot: str | None = None, **history: Any) -> None:
        """The fit returned: the metric pending under ``log_every_n_steps`` and everything read
        from the fitted model (``replay``: its metric history too, no callback having logged it;
        ``history``: ``period`` and ``patience`` to place its values, see ``_gbm_catboost``)."""
        recorder = self.recorder
        if recorder is None or not recorder.active:
            return
        self._flush(recorder)
        rec.log_end(recorder, model, replay=replay, snapshot=snapshot, **history)

    # -- CatBoost's callback API -----------------------------------------------------------------
    def after_iteration(self, info: Any) -> bool:
        with guard("catboost: logging metrics"):
            if self._last == 0 or info.iteration <= self._last:
                self._start()
            self._last = info.iteration
            recorder = self.recorder
            if recorder is not None and recorder.active and not self._skip:
                self._log(recorder, info)
        return True

    def _start(self) -> None:
        """A new fit: with a wrapper, nothing to do; alone, end the previous run and begin one."""
        if self.recorder is not None and not self._own:
            return
        self.close_open()
        if nested():
            self._skip = True
            return
        recorder = FitRecorder("catboost", self.options, record=env_rank_zero())
        recorder.begin()
        self.recorder, self._own = recorder, True
        Open.add(self, recorder)

    def _log(self, recorder: FitRecorder, info: Any) -> None:
        metrics = {}
        for data, by_metric in (info.metrics or {}).items():
            for metric, values in by_metric.items():
                name = rec.metric_name(data, metric)
                if values and len(values) != self._lengths.get(name):
                    self._lengths[name] = len(values)
                    metrics[name] = values[-1]
        if not metrics:
            return
        step, every = info.iteration - 1, self.options.log_every_n_steps
        if every is None or (step + 1) % every == 0:
            recorder.metrics(metrics, step=step)
            self._pending = None
        else:
            self._pending = (step, metrics)

    def _flush(self, recorder: FitRecorder) -> None:
        if self._pending is not None:
            recorder.metrics(self._pending[1], step=self._pending[0])
            self._pending = None

    def close_open(self, at_exit: bool = False) -> None:
        """End the run this callback began alone: its fit is over (another one started), or the
        program ends (finished, unless it is dying of an exception)."""
        if self._own and self.recorder is not None:
            recorder, self.recorder, self._own = self.recorder, None, False
            Open.discard(self)
            with guard("catboost: ending the run"):
                self._flush(recorder)
                recorder.end(Open.exit_error() if at_exit else None)
        self._reset()


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``: wrap the ``fit`` methods and ``catboost.train``."""
    rec.install(AutotrackCallback)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put every original back."""
    rec.undo()
