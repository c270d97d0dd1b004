"""LightGBM: one ``lgb.train`` / ``lgb.cv`` call, or one ``fit`` of its scikit-learn API, is one run.

``AutotrackCallback`` (a LightGBM callback: a callable given each iteration's ``CallbackEnv``)
records the params LightGBM trains with, every evaluation metric per iteration under LightGBM's
own names (``training-binary_logloss``, ``valid_0-auc``; ``valid auc-mean`` for ``lgb.cv``), and
at the end the best iteration and scores, the booster's full configuration and seeds, feature
importance and the model (``model.txt``).

LightGBM tells a callback nothing when training ends (early stopping ends it from another
callback). With ``autotrack.autolog()``, wrappers around ``lgb.train``, ``lgb.cv`` and the
estimators' ``fit`` (``_gbm_lightgbm``) end the run when the call returns or raises, and add
what a callback cannot see: the call's arguments or the estimator's params, and the data. A
callback used alone sees the end of ``lgb.train`` (and of ``fit``) when LightGBM reloads the
finished booster; otherwise (``lgb.cv`` stopped early, ``keep_training_booster=True``) it ends
the run at its next training or at the program's end (``_gbm_common.Open``).
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb

from autotrack._safety import guard
from autotrack.integrations import _gbm_lightgbm as rec
from autotrack.integrations._common import FitRecorder, env_rank_zero, explicit_options, resolve_options
from autotrack.integrations._gbm_common import Open, clean, nested

__all__ = ["AutotrackCallback", "enable", "disable"]


class AutotrackCallback:
    """Record each training this callback is given to as one run (or into the active run).

    Example::

        from autotrack.integrations.lightgbm import AutotrackCallback
        booster = lgb.train(params, train_set, 200, valid_sets=[valid_set],
                            callbacks=[lgb.early_stopping(10), AutotrackCallback(experiment="churn")])
        model = lgb.LGBMClassifier(n_estimators=200).fit(X, y, eval_set=[(X_val, y_val)],
                                                         callbacks=[AutotrackCallback()])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults. It never
    stops training.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None,
                 register_as: str | None = None) -> None:
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps, register_as=register_as))
        self.recorder: FitRecorder | None = None  # the training being recorded
        self._own = False  # began by this callback (no wrapper): ended by it
        self._reset()

    def _reset(self) -> None:
        self._model: Any = None  # the Booster (or lgb.cv's CVBooster) of the training being recorded
        self._pending: tuple[int, dict[str, float]] | None = None
        self._last: int | None = None
        self._first = 0  # the first iteration of this training (after init_model's rounds)
        self._end: int | None = None

    # LightGBM's sklearn API copies the callbacks list, and users pickle estimators: settings only
    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options, self.recorder, self._own = state["options"], None, False
        self._reset()

    # -- for autolog's wrappers ------------------------------------------------------------------
    def attach(self, recorder: FitRecorder) -> None:
        """Record the next training into ``recorder``, which the caller began and will end
        (after ``record_end``)."""
        self.close_open()
        self.recorder, self._own = recorder, False
        self._reset()

    def detach(self) -> None:
        """Back to recording on its own (the wrapper's training is over)."""
        if not self._own:
            self.recorder = None
            self._reset()

    def record_end(self, booster: Any = None, cls: str = "lightgbm.Booster") -> None:
        """What is known once training returned: the last pending metrics, best iteration and
        scores, configuration, importance and model (``booster`` None: the one trained)."""
        self._record_end(self.recorder, booster, cls)

    def _record_end(self, recorder: FitRecorder | None, booster: Any = None, cls: str = "lightgbm.Booster") -> None:
        if recorder is None or not recorder.active:
            return
        if self._pending is not None:
            recorder.metrics(self._pending[1], step=self._pending[0])
            self._pending = None
        model = booster if booster is not None else self._model
        if isinstance(model, lgb.Booster):
            trained = None if self._last is None else self._last + 1 - self._first
            rec.log_end(recorder, model, trained, cls)
        elif model is not None:  # lgb.cv: no model, one best iteration for all folds
            final = {"num_boosted_rounds": (self._last + 1 - self._first) if self._last is not None else 0}
            if getattr(model, "best_iteration", -1) > 0:
                final["best_iteration"] = model.best_iteration
            recorder.metrics(final)

    # -- the LightGBM callback ---------------------------------------------------------------------
    def __call__(self, env: Any) -> None:
        with guard("lightgbm: recording an iteration"):
            if env.model is not self._model:
                self._start(env)
            recorder = self.recorder
            if recorder is not None and recorder.active:
                self._iteration(recorder, env)
            if self._own and not isinstance(env.model, lgb.Booster) and env.iteration >= env.end_iteration - 1:
                self._end_own()  # lgb.cv: nothing follows its last iteration

    def _start(self, env: Any) -> None:
        """The first iteration of a training: begin its run, unless a wrapper began it."""
        if self._own or self.recorder is None:
            self.close_open()
            self.recorder = None
            if nested():  # inside a scikit-learn Pipeline or search: an inner fit
                self._reset()
                self._model = env.model
                return
            recorder = FitRecorder("lightgbm", self.options, record=env_rank_zero())
            recorder.begin()
            self.recorder, self._own = recorder, True
            Open.add(self, recorder)
        self._reset()
        self._model, self._first, self._end = env.model, env.begin_iteration, env.end_iteration
        if self._own and isinstance(env.model, lgb.Booster):
            rec.watch_end(env.model, self._booster_done)
        params = dict(env.params or {})
        if params.get("objective") == "none":  # LightGBM's mark for your objective function: the wrapper names it
            del params["objective"]
        self.recorder.params({k: clean(v) for k, v in params.items()})
        self.recorder.seeds(rec.seeds(dict(env.params or {})))

    def _iteration(self, recorder: FitRecorder, env: Any) -> None:
        metrics = rec.eval_metrics(env.evaluation_result_list)
        every = self.options.log_every_n_steps
        if metrics and (every is None or (env.iteration + 1) % every == 0):
            recorder.metrics(metrics, step=env.iteration)
            self._pending = None
        elif metrics:
            self._pending = (env.iteration, metrics)
        self._last = env.iteration

    # -- ends of trainings this callback began -----------------------------------------------------
    def _booster_done(self, booster: Any) -> None:
        with guard("lightgbm: ending the run"):
            if self._own and booster is self._model:
                self._end_own()

    def _end_own(self, exc: BaseException | None = None) -> None:
        recorder = self.recorder
        self.recorder, self._own = None, False
        Open.discard(self)
        if recorder is None:
            return
        if exc is None:
            with guard("lightgbm: recording the trained model"):
                self._record_end(recorder)
        rec.unwatch_end(self._model)
        self._reset()
        recorder.end(exc)

    def close_open(self, at_exit: bool = False) -> None:
        """End a run this callback began and could not end yet: finished if its training
        completed (early stopping included), else failed."""
        if not self._own or self.recorder is None:
            return
        if rec.done(self._model, self._last, self._end):
            self._end_own()
        else:
            self._end_own((Open.exit_error() if at_exit else None) or RuntimeError(
                "this LightGBM training did not complete: it raised, or the program ended during it"))


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``: wrap ``lgb.train``, ``lgb.cv`` and the estimators' ``fit``."""
    rec.install(AutotrackCallback)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put every original back."""
    rec.undo()
