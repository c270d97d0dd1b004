"""Keras 3 (TensorFlow, torch or JAX backend) and ``tf.keras``: one ``fit`` is one run.

``AutotrackCallback`` records a fit's params, epoch metrics (and batch metrics only when
``log_every_n_steps`` is set: only then does it override a batch hook, so Keras keeps its
asynchronous batch dispatch), checkpoints as written, and the final model. A thin wrapper
around ``keras.Model.fit`` -- installed by ``autolog()`` or by creating a callback -- adds the
callback to a *new* list when the user gave none (the user's list is never touched), records
``fit``'s arguments and data, and ends the run ``failed`` with the traceback when ``fit`` raises:
Keras has no exception hook. ``Model.save``/``save_weights`` called during a recorded fit (by
``ModelCheckpoint``, in whatever order the callbacks run) are checkpoints. ``evaluate()`` adds
``test_*`` metrics to the active run, or reopens the finished run of the model's last fit.
"""

from __future__ import annotations

import weakref
from typing import Any

import keras

from autotrack._run import active_run
from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations._common import FitSession, Patcher, env_rank_zero, outermost, resolve_options
from autotrack.integrations._keras_checkpoints import Checkpoints, log_model

__all__ = ["AutotrackCallback", "enable", "disable"]

_patcher = Patcher()  # Model.fit/evaluate/save/save_weights, installed once, undone by disable()
_autolog = {"on": False}
_recording: "weakref.WeakKeyDictionary[Any, AutotrackCallback]" = weakref.WeakKeyDictionary()  # model -> recorder
_last_fit: "weakref.WeakKeyDictionary[Any, tuple[Any, int, bool]]" = weakref.WeakKeyDictionary()  # (run, epoch, owned)


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
        given = dict(uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
                     log_every_n_steps=log_every_n_steps)
        self.options = resolve_options(**{k: v for k, v in given.items() if v is not None})
        if self.options.log_every_n_steps:
            self.on_train_batch_end = self._on_batch  # the only batch hook, and only when asked
        self._name = name
        self._session: FitSession | None = None
        self._wrapped = False  # True while the fit wrapper drives this callback
        self._callbacks: list[Any] = []
        self._spe = 1
        _install()

    # -- the run's life (the fit wrapper calls _begin/_finish; without it, the train hooks do) --
    def _begin(self, model: Any, arguments: dict[str, Any], callbacks: list[Any]) -> None:
        with guard("keras: starting the run"):
            if _recording.get(model, self) is not self:
                return  # another autotrack callback records this fit
            if self._session is not None:  # a fit without the wrapper died before on_train_end
                self._finish(model, RuntimeError("the previous fit ended without on_train_end"))
            session = FitSession("keras", self.options, record=env_rank_zero())
            run = session.begin(self._name)
            if not session.active:
                return
            self._session, _recording[model] = session, self
            self._callbacks, self._pending = callbacks, None
            self._checkpoints = Checkpoints(run, self.options.log_checkpoints == "all", callbacks)
            self._epoch, self._step, self._sized = int(arguments.get("initial_epoch") or 0), 0, False
            params = P.compile_params(model)
            params.update(P.fit_params(arguments), **P.callback_params(callbacks))
            run.log_params(params)
            for name, data, target in (("train", arguments.get("x"), arguments.get("y")),
                                       ("validation", arguments.get("validation_data"), None)):
                if data is not None:
                    run.log_data(name, data if target is None else (data, target), **P.data_extra(data))

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
            if _recording.get(model) is self:
                del _recording[model]
        with guard("keras: saving the final model"):
            if exc is None and self.options.log_models:
                log_model(session.run, model, self._epoch, self._step)
        with guard("keras: finishing the run"):
            if exc is None:
                _last_fit[model] = (session.run, self._epoch, session.owned)
            session.end(exc)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: starting the run"):
            _install()
            if not self._wrapped:
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


# -- the patches --------------------------------------------------------------------------------
def _fit(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    cb = None
    with outermost("keras.fit") as outer:
        if outer:
            with guard("keras: preparing the fit"):
                bound = P.bind(wrapped, args, kwargs)
                listed = P.flat_callbacks(bound.arguments.get("callbacks"))
                mine = [c for c in listed if isinstance(c, AutotrackCallback)]
                if mine or _autolog["on"]:
                    chosen = mine[0] if mine else AutotrackCallback()
                    if not mine:
                        bound.arguments["callbacks"] = P.with_callback(bound.arguments.get("callbacks"), chosen, model)
                    full = P.bind(wrapped, args, kwargs)
                    full.apply_defaults()
                    args, kwargs, cb = bound.args, bound.kwargs, chosen
                    cb._wrapped = True
                    cb._begin(model, dict(full.arguments), [c for c in listed if c is not cb])
        if cb is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:  # recorded as failed (or killed), then re-raised unchanged
            cb._finish(model, exc)
            raise
        finally:
            cb._wrapped = False
        cb._finish(model)
        return result


def _evaluate(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    if not kwargs.get("_use_cached_eval_dataset"):  # that is fit's own validation: val_* already
        with guard("keras: recording evaluate()"):
            _record_evaluate(model, P.bind(wrapped, args, kwargs).arguments, result)
    return result


def _record_evaluate(model: Any, arguments: dict[str, Any], result: Any) -> None:
    fitting, last = _recording.get(model), _last_fit.get(model)
    given = any(isinstance(c, AutotrackCallback) for c in P.flat_callbacks(arguments.get("callbacks")))
    if not (_autolog["on"] or fitting or last or given):
        return
    run, reopened = active_run(), False
    if run is None:
        if last is None or not last[2] or last[0].status != "finished":
            return  # only a run its own fit started, and ended well, is reopened
        run, reopened = last[0].reopen(), True
    try:
        epoch = fitting._epoch if fitting is not None else (last[1] if last is not None else None)
        values = result if isinstance(result, dict) else model.get_metrics_result()
        run.log_metrics(P.scalars(values, "test_"), step=P.global_step(model), epoch=epoch)
        x, y = arguments.get("x"), arguments.get("y")
        if x is not None:
            run.log_data("test", x if y is None else (x, y), **P.data_extra(x))
    finally:
        if reopened:
            run.finish()


def _saver(weights_only: bool) -> Any:
    def wrapper(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        cb = _recording.get(model)
        if cb is not None and cb._session is not None and cb.options.log_checkpoints:
            with guard("keras: recording a checkpoint"):
                cb._checkpoints.saved(args[0] if args else kwargs["filepath"], weights_only, cb._epoch)
        return result

    return wrapper


def _install() -> None:
    if not _patcher:
        _patcher.wrap(keras.Model, "fit", _fit)
        _patcher.wrap(keras.Model, "evaluate", _evaluate)
        _patcher.wrap(keras.Model, "save", _saver(False))
        _patcher.wrap(keras.Model, "save_weights", _saver(True))


_install()  # at import: ``model.fit(..., callbacks=[AutotrackCallback()])`` looks fit up first


def enable(config: Any) -> None:
    """autolog(): every ``fit`` gets an ``AutotrackCallback`` unless the user gave one."""
    _autolog["on"] = True
    _install()


def disable() -> None:
    _autolog["on"] = False
    _patcher.undo()
