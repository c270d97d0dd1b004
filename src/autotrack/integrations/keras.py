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

import atexit
import copy
import inspect
import os
import shutil
import tempfile
import weakref
from typing import Any

import keras

from autotrack._run import active_run
from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations._common import (CheckpointTracker, FitSession, Patcher, env_rank_zero, outermost,
                                            resolve_options)

__all__ = ["AutotrackCallback", "enable", "disable"]

_patcher = Patcher()  # Model.fit/evaluate/save/save_weights, installed once, undone by disable()
_autolog = {"on": False}
_recording: dict[int, "AutotrackCallback"] = {}  # id(model) -> the callback recording its fit now
_last_fit: "weakref.WeakKeyDictionary[Any, tuple[Any, int]]" = weakref.WeakKeyDictionary()  # model -> (run, epoch)


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
            if _recording.get(id(model), self) is not self:
                return  # another autotrack callback records this fit
            if self._session is not None:  # a fit without the wrapper died before on_train_end
                self._finish(model, RuntimeError("the previous fit ended without on_train_end"))
            session = FitSession("keras", self.options, record=env_rank_zero())
            run = session.begin(self._name)
            if not session.active:
                return
            self._session, _recording[id(model)] = session, self
            self._callbacks, self._pending, self._saves, self._best = callbacks, None, [], {}
            self._tracker = CheckpointTracker(run, keep_all=self.options.log_checkpoints == "all")
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
            if _recording.get(id(model)) is self:
                del _recording[id(model)]
        with guard("keras: saving the final model"):
            if exc is None and self.options.log_models:
                _log_model(session.run, model, self._epoch, self._step)
        with guard("keras: finishing the run"):
            if exc is None and session.owned:
                _last_fit[model] = (session.run, self._epoch)
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
        saves, self._saves = self._saves, []
        for path, name, mc in saves:
            self._describe_checkpoint(path, name, mc, logs, step)

    def _log_sizes(self) -> None:
        if not self._sized:
            sizes = P.size_params(self.model)
            if sizes is not None:
                self._sized = True
                self._session.run.log_params(sizes)

    # -- checkpoints ----------------------------------------------------------------------------
    def _checkpoint(self, path: str, weights_only: bool) -> None:
        """``model.save``/``save_weights`` ran during this fit: a checkpoint, logged at once."""
        if not self.options.log_checkpoints or self._session is None:
            return
        path = os.path.abspath(os.fspath(path))
        for cb in self._callbacks:
            backup = getattr(cb, "backup_dir", None) if isinstance(cb, keras.callbacks.BackupAndRestore) else None
            if backup and path.startswith(os.path.abspath(backup) + os.sep):
                return  # BackupAndRestore's own state, not a checkpoint
        mcs = [cb for cb in self._callbacks
               if isinstance(cb, keras.callbacks.ModelCheckpoint) and bool(cb.save_weights_only) == weights_only]
        if len(mcs) > 1:
            mcs = [cb for cb in mcs if os.path.dirname(os.path.abspath(cb.filepath)) == os.path.dirname(path)]
        name = self._tracker.saved(path, {"epoch": self._epoch, "weights_only": weights_only})
        if name:
            self._saves.append((path, name, mcs[0] if len(mcs) == 1 else None))

    def _describe_checkpoint(self, path: str, name: str, mc: Any, logs: dict[str, Any], step: int) -> None:
        if mc is None or mc.save_freq != "epoch":
            return
        value = logs.get(mc.monitor)
        meta = {"monitor": mc.monitor, "save_best_only": bool(mc.save_best_only), "step": step}
        if isinstance(value, (int, float)):
            meta["value"] = value
        self._session.run.update_artifact(name, meta)
        if "value" in meta:
            best, op = self._best.get(id(mc)), getattr(mc, "monitor_op", None)
            if mc.save_best_only or best is None or (op is not None and bool(op(value, best))):
                self._best[id(mc)] = value
                self._tracker.mark_best(path, {"best_value": value})


def _log_model(run: Any, model: Any, epoch: int, step: int) -> None:
    folder = tempfile.mkdtemp(prefix="autotrack-keras-")
    path = os.path.join(folder, "model.keras")
    model.save(path)
    run.log_artifact(path, kind="model", metadata={"epoch": epoch, "step": step, "format": "keras"})
    if os.stat(path).st_nlink > 1:  # pinned by a hard link (Run.log_artifact): the copy can go now
        shutil.rmtree(folder, ignore_errors=True)
    else:  # the writer still reads this file: remove it at exit
        atexit.register(shutil.rmtree, folder, True)


# -- the patches --------------------------------------------------------------------------------
_signatures: dict[Any, inspect.Signature] = {}


def _bind(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
    key = getattr(wrapped, "__func__", wrapped)
    if key not in _signatures:
        _signatures[key] = inspect.signature(wrapped)
    return _signatures[key].bind(*args, **kwargs)


def _with(callbacks: Any, cb: AutotrackCallback, model: Any) -> Any:
    """The user's callbacks plus ours, in a new container: theirs is left exactly as it was."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        new = copy.copy(callbacks)
        new.callbacks = [*callbacks.callbacks, cb]
        cb.set_model(model)
        cb.set_params(callbacks.params)
        return new
    if callbacks is None:
        return [cb]
    return [*callbacks, cb] if isinstance(callbacks, (list, tuple)) else [callbacks, cb]


def _fit(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    cb = None
    with outermost("keras.fit") as outer:
        if outer:
            with guard("keras: preparing the fit"):
                bound = _bind(wrapped, args, kwargs)
                listed = P.flat_callbacks(bound.arguments.get("callbacks"))
                mine = [c for c in listed if isinstance(c, AutotrackCallback)]
                if mine or _autolog["on"]:
                    chosen = mine[0] if mine else AutotrackCallback()
                    if not mine:
                        bound.arguments["callbacks"] = _with(bound.arguments.get("callbacks"), chosen, model)
                    full = _bind(wrapped, args, kwargs)
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
            _record_evaluate(model, _bind(wrapped, args, kwargs).arguments, result)
    return result


def _record_evaluate(model: Any, arguments: dict[str, Any], result: Any) -> None:
    fitting, last = _recording.get(id(model)), _last_fit.get(model)
    given = any(isinstance(c, AutotrackCallback) for c in P.flat_callbacks(arguments.get("callbacks")))
    if not (_autolog["on"] or fitting or last or given):
        return
    run, reopened = active_run(), False
    if run is None:
        if last is None or last[0].status != "finished":
            return
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
        cb = _recording.get(id(model))
        if cb is not None:
            with guard("keras: recording a checkpoint"):
                cb._checkpoint(args[0] if args else kwargs["filepath"], weights_only)
        return result

    return wrapper


def _install() -> None:
    if not _patcher:
        _patcher.wrap(keras.Model, "fit", _fit)
        _patcher.wrap(keras.Model, "evaluate", _evaluate)
        _patcher.wrap(keras.Model, "save", _saver(False))
        _patcher.wrap(keras.Model, "save_weights", _saver(True))


def enable(config: Any) -> None:
    """autolog(): every ``fit`` gets an ``AutotrackCallback`` unless the user gave one."""
    _autolog["on"] = True
    _install()


def disable() -> None:
    _autolog["on"] = False
    _patcher.undo()
