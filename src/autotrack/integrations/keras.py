"""Keras 3 (TensorFlow, torch or JAX backend) and ``tf.keras``: one ``fit`` is one run.

``AutotrackCallback`` records a fit's params, epoch metrics and learning rate, batch metrics only
when ``log_every_n_steps`` is set (only then does it override a batch hook, so Keras otherwise
keeps its asynchronous batch dispatch), checkpoints as written, and the final model. What a
callback cannot see -- fit's arguments, an exception, who saved a file -- comes from the thin
wrappers around ``keras.Model`` in ``_keras_wrappers``, installed when this module is imported
(by ``autolog()`` or by importing the callback). ``docs/integrations/keras.md`` has the details.
"""

from __future__ import annotations

from typing import Any

import keras

from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations import _keras_wrappers as W
from autotrack.integrations._common import FitSession, explicit_options, resolve_options
from autotrack.integrations._keras_checkpoints import Checkpoints, log_model

__all__ = ["AutotrackCallback", "enable", "disable"]


class AutotrackCallback(keras.callbacks.Callback):
    """Record each ``fit`` this callback is given to as one run (or into the active run).

    Example::

        from autotrack.integrations.keras import AutotrackCallback
        model.fit(x, y, epochs=5, callbacks=[AutotrackCallback(experiment="mnist")])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None) -> None:
        super().__init__()
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps))
        if self.options.log_every_n_steps:
            self.on_train_batch_end = self._on_batch  # the only batch hook, and only when asked
        self._name = name
        self._session: FitSession | None = None
        self._wrapped = False  # True while the fit wrapper drives this callback
        self._callbacks: list[Any] = []
        self._spe = 1
        W.install(AutotrackCallback, _Injected)

    # -- the run's life (the fit wrapper calls _begin/_finish; without it, the train hooks do) --
    def _begin(self, model: Any, arguments: dict[str, Any], callbacks: list[Any]) -> None:
        with guard("keras: starting the run"):
            if W.recording.get(model, self) is not self:
                return  # another autotrack callback records this fit
            if self._session is not None:  # a fit without the wrapper died before on_train_end
                self._finish(self._model, RuntimeError("the previous fit ended without on_train_end"))
            session = FitSession("keras", self.options, record=P.rank_zero())
            run = session.begin(self._name)
            if not session.active:
                return
            self._session, self._model, W.recording[model] = session, model, self
            self._callbacks, self._pending = callbacks, None
            self._checkpoints = Checkpoints(run, self.options.log_checkpoints == "all", callbacks)
            self._epoch, self._step, self._sized = int(arguments.get("initial_epoch") or 0), 0, False
            P.log_start(run, model, arguments, callbacks)

    def _finish(self, model: Any, exc: BaseException | None = None) -> None:
        session = self._session
        if session is None:
            return
        try:
            with guard("keras: recording the end of the fit"):
                self._flush()
                if exc is None:
                    session.run.log_params(P.end_params(model, self._callbacks))
        finally:
            self._session = None
            if W.recording.get(model) is self:
                del W.recording[model]
        with guard("keras: saving the final model"):
            if exc is None and self.options.log_models:
                log_model(session.run, model, self._epoch, self._step)
        with guard("keras: finishing the run"):
            if exc is None:
                W.last_fit[model] = (session.run, self._epoch, session.owned)
            session.end(exc)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: starting the run"):
            W.install(AutotrackCallback, _Injected)
            if not self._wrapped and not W.fitting():  # no wrapper around this fit: record from here
                self._begin(self.model, dict(self.params or {}), [])
            if self._session is not None:
                self._step = P.global_step(self.model) or 0
                self._spe = int(getattr(self.model, "steps_per_execution", 1) or 1)
                self._log_sizes()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: finishing the run"):
            if not self._wrapped:
                self._finish(self.model)

    # -- metrics ------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: recording epoch metrics"):
            if self._session is not None:
                self._flush()
                self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Kept until every callback has run on this epoch (next epoch, end of fit): values that
        later callbacks add to ``logs`` (ReduceLROnPlateau's ``learning_rate``) are included."""
        with guard("keras: recording epoch metrics"):
            if self._session is not None:
                self._flush()
                self._epoch, self._step = epoch, P.global_step(self.model) or self._step
                self._pending = (epoch, logs if logs is not None else {}, P.learning_rate(self.model), self._step)
                self._log_sizes()

    def _on_batch(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: recording step metrics"):
            n = self.options.log_every_n_steps
            step = self._step + batch + 1  # global step; several per call with steps_per_execution
            if self._session is not None and n and step // n > (step - self._spe) // n:
                self._session.run.log_metrics(P.scalars(logs, "batch_"), step=step, epoch=self._epoch)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        epoch, logs, lr, step = pending
        values = P.scalars(logs)
        if lr is not None and "learning_rate" not in values:
            values["learning_rate"] = lr
        self._session.run.log_metrics(values, step=step, epoch=epoch)
        self._checkpoints.describe(logs, step)

    def _log_sizes(self) -> None:
        if not self._sized:
            sizes = P.size_params(self.model)
            if sizes is not None:
                self._sized = True
                self._session.run.log_params(sizes)


class _Injected(AutotrackCallback):
    """The callback autolog() adds to a fit that has none."""


W.install(AutotrackCallback, _Injected)  # at import: ``model.fit(callbacks=[AutotrackCallback()])`` looks fit up first


def enable(config: Any) -> None:
    """autolog(): every ``fit`` gets an ``AutotrackCallback`` unless the user gave one."""
    W.state["autolog"] = True
    W.install(AutotrackCallback, _Injected)


def disable() -> None:
    """autolog(disable=True): no callback is added any more. The wrappers stay, inert: a later
    ``model.fit(callbacks=[AutotrackCallback()])`` looks ``fit`` up before the callback exists, and
    the callback needs the wrapper to see fit's arguments and exceptions."""
    W.state["autolog"] = False
