"""XGBoost: one ``xgb.train`` call, or one ``fit`` of its scikit-learn API, is one run.

``AutotrackCallback`` (an ``xgboost.callback.TrainingCallback``) records a complete run from its
own hooks: the booster's full configuration and seed, every evaluation metric per iteration under
XGBoost's own names (``train-logloss``, ``val-auc``, ``validation_0-rmse``), best iteration and
score, feature importance and the model (``model.ubj``). XGBoost has no exception hook: a
training that raised never reaches ``after_training``, so its run is ended ``failed`` by the
callback's next training, or by the program's end.

``autotrack.autolog()`` installs wrappers around ``xgboost.train`` and the estimators' ``fit``
(``_xgboost_wrap``; ``autolog(disable=True)`` removes them) that add a callback when you gave
none and ``attach`` a ``FitRecorder`` holding what a callback cannot see: the train arguments or
the estimator's params, the data, the ``TrainingCheckPoint`` files, and the traceback of a
training that raised. An XGBoost model inside a scikit-learn Pipeline or search is an inner fit.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import xgboost as xgb

from autotrack._safety import guard
from autotrack.integrations import _xgboost_record as rec
from autotrack.integrations import _xgboost_wrap as wrap
from autotrack.integrations._common import FitRecorder, explicit_options, resolve_options

__all__ = ["AutotrackCallback", "enable", "disable"]


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
                 log_models: bool | None = None, log_every_n_steps: int | None = None,
                 register_as: str | None = None) -> None:
        super().__init__()
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps, register_as=register_as))
        self.recorder: FitRecorder | None = None  # the training being recorded
        self._own = False  # began by the hooks (no wrapper): ended by them
        self.detach()

    # sklearn's clone() deep-copies callbacks and estimators get pickled: keep only the settings
    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options, self.recorder, self._own = state["options"], None, False
        self.detach()

    # -- for autolog's wrappers ------------------------------------------------------------------
    def attach(self, recorder: FitRecorder, checkpoints: Iterable[Any] = (), save_model: bool = True) -> None:
        """Record the next training into ``recorder``, which the caller began and will end.

        ``checkpoints``: that training's ``TrainingCheckPoint`` callbacks, whose files are
        recorded as checkpoints; ``save_model=False``: the caller saves the model itself.
        """
        self._close_dangling()
        self.recorder, self._own, self._save_model = recorder, False, save_model
        self._checkpoints = [found for found in map(rec.checkpoint_files, checkpoints) if found is not None]

    def detach(self) -> None:
        """Back to recording on its own (the wrapper's training is over)."""
        if not self._own:
            self.recorder = None
        self._save_model, self._checkpoints, self._pending = True, [], None
        self._first, self._last, self._existing = 0, None, {}

    def _close_dangling(self) -> None:
        if self._own and self.recorder is not None:  # began by the hooks; its training raised
            self.recorder.end(RuntimeError("this XGBoost training did not reach after_training: it raised"))
            self.recorder, self._own = None, False

    # -- TrainingCallback ------------------------------------------------------------------------
    def before_training(self, model: Any) -> Any:
        with guard("xgboost: starting the run"):
            if not isinstance(model, xgb.Booster):  # xgb.cv's folds: not recorded
                return model
            if self.recorder is None or self._own:
                self._close_dangling()
                if wrap.nested():  # inside a scikit-learn Pipeline or search: an inner fit
                    return model
                self.recorder, self._own = FitRecorder("xgboost", self.options, record=rec.rank_zero()), True
                self.recorder.begin()
            config = json.loads(model.save_config())
            self.recorder.params({"config": config})
            seed = rec.config_seed(config)
            self.recorder.seeds({"xgboost.seed": seed} if seed is not None else {})
            self._first, self._last = model.num_boosted_rounds(), None
            self._watch_checkpoints()
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        recorder = self.recorder
        if recorder is not None and recorder.active:
            with guard("xgboost: logging metrics"):
                metrics = {f"{data}-{name}": _latest(values) for data, by_name in evals_log.items()
                           for name, values in by_name.items() if values}
                every = self.options.log_every_n_steps
                if metrics and (every is None or (epoch + 1) % every == 0):
                    recorder.metrics(metrics, step=epoch)
                    self._pending = None
                elif metrics:
                    self._pending = (epoch, metrics)
                self._record_checkpoints(epoch - 1, epoch)
                self._last = epoch
        return False

    def after_training(self, model: Any) -> Any:
        recorder = self.recorder
        if recorder is None:
            return model
        if recorder.active:
            with guard("xgboost: recording the trained model"):
                self._record_end(model)
        if self._own:
            self.recorder, self._own = None, False
            with guard("xgboost: ending the run"):
                recorder.end()
        return model

    def _record_end(self, booster: Any) -> None:
        recorder = self.recorder
        if self._pending is not None:
            recorder.metrics(self._pending[1], step=self._pending[0])
            self._pending = None
        if self._last is not None:
            self._record_checkpoints(self._last)
        best = {key: booster.attr(key) for key in ("best_iteration", "best_score")}
        final = {"num_boosted_rounds": booster.num_boosted_rounds()}
        final.update({k: (int(v) if k == "best_iteration" else float(v)) for k, v in best.items() if v is not None})
        recorder.metrics(final)
        rec.log_importance(recorder, booster)
        if self._save_model and self.options.log_models:
            rec.log_model(recorder, booster)

    # -- XGBoost's TrainingCheckPoint files (known through attach) -------------------------------
    def _watch_checkpoints(self) -> None:
        """Before training: the files already there are not this training's (unless rewritten)."""
        if self.recorder is None or self.recorder.checkpoints is None:
            self._checkpoints = []
        self._existing = {path: _stamp(path) for folder, name, _ in self._checkpoints if os.path.isdir(folder)
                          for path in (os.path.join(folder, entry) for entry in os.listdir(folder)
                                       if entry.startswith(name + "_"))}

    def _record_checkpoints(self, *epochs: int) -> None:
        """The file of each of these iterations, if XGBoost wrote it in this training."""
        for folder, name, ext in self._checkpoints:
            for iteration in (self._first + epoch for epoch in epochs if epoch >= 0):
                path = os.path.join(folder, f"{name}_{iteration}.{ext}")
                stamp = _stamp(path)
                if stamp is not None and self._existing.get(path) != stamp:
                    self._existing[path] = stamp
                    self.recorder.checkpoint(path, {"iteration": iteration, "format": ext,
                                                    "source": "xgboost.callback.TrainingCheckPoint"})


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _latest(values: Any) -> float:
    value = values[-1]
    return value[0] if isinstance(value, tuple) else value  # xgb.cv logs (mean, std)


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``: wrap ``xgboost.train`` and the estimators' ``fit``."""
    wrap.install(AutotrackCallback)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put every original back."""
    wrap.undo()
