"""Keras 3 (TensorFlow, torch or JAX backend) and ``tf.keras``: one ``fit`` is one run.

``AutotrackCallback`` records a fit from Keras's own hooks alone: the compiled model and every
optimizer it holds (a GAN's ``d_optimizer``/``g_optimizer``), epoch metrics, learning rates, the
final model. Batch hooks: ``on_train_batch_begin`` only counts batches (the step of a model whose
``optimizer`` never steps; Keras's asynchronous dispatch depends on the *end* hooks), and
``on_train_batch_end`` is set on an instance given ``log_every_n_steps``, never otherwise.

A callback is told neither fit's arguments, nor an exception, nor who saves a file: under
``autolog()`` the wrappers of ``_keras_wrappers`` add these; they begin the run, hand it to the
callback (:meth:`AutotrackCallback.attach`) and end it. Without them, a fit that raised never
reaches ``on_train_end``: the next fit of this thread ends its run ``failed`` (the program's end
does too, in the core). ``docs/integrations/keras.md`` has the details.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any

import keras

from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations import _keras_save
from autotrack.integrations import _keras_wrappers as W
from autotrack.integrations._common import FitRecorder, explicit_options, resolve_options

__all__ = ["AutotrackCallback", "enable", "disable"]

_local = threading.local()  # .fits: callbacks of this thread recording a fit without autolog's wrapper


class AutotrackCallback(keras.callbacks.Callback):
    """Record each ``fit`` this callback is given to as one run (or into the active run).

    Example::

        from autotrack.integrations.keras import AutotrackCallback
        model.fit(x, y, epochs=5, callbacks=[AutotrackCallback(experiment="mnist")])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None,
                 register_as: str | None = None) -> None:
        super().__init__()
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps, register_as=register_as))
        self.name = name
        self.recorder: FitRecorder | None = None  # the fit being recorded
        self.attached = False  # the recorder was handed in by autolog's fit wrapper, which ends it
        self.checkpoints: Any = None  # autolog's record of the files saved during the fit
        self.saving_model = False  # the final model is being written: not a checkpoint
        self.epoch = self.step = self._batches = 0
        self._spe = 1
        self._pending: tuple[int, dict[str, Any], set[str], int] | None = None
        if self.options.log_every_n_steps:
            self.on_train_batch_end = self._on_batch  # this instance only: others keep async dispatch

    # -- the run's life -------------------------------------------------------------------------
    def attach(self, recorder: FitRecorder, checkpoints: Any = None) -> None:
        """Record the coming fit into ``recorder``, which the caller (autolog's fit wrapper) began
        and ends after :meth:`close`; ``checkpoints`` describes the files saved during the fit."""
        self.recorder, self.attached, self.checkpoints = recorder, True, checkpoints

    def close(self, exc: BaseException | None = None) -> None:
        """The fit is over: what is pending is recorded, the recorder let go, and ended here
        unless it was attached (its wrapper ends it, with the exception it saw)."""
        recorder, attached = self.recorder, self.attached
        self.recorder, self.attached = None, False
        if self in _fits():
            _fits().remove(self)
        if recorder is not None:
            with guard("keras: recording the end of the fit"):
                self._flush(recorder)
            self.checkpoints = None
            if not attached:
                with guard("keras: finishing the run"):
                    recorder.end(exc)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        with guard("keras: starting the run"):
            if not self.attached and not _end_abandoned(self.model, self):  # else an outer fit records
                rec = FitRecorder("keras", self.options, record=P.rank_zero())
                rec.begin(self.name)
                if rec.active:
                    self.recorder = rec
                    _fits().append(self)
            rec = self.recorder
            if rec is None or not rec.active:
                return
            model, self._pending, self._sized = self.model, None, False
            self._spe = int(getattr(model, "steps_per_execution", 1) or 1)
            found = P.optimizers(model)
            main = found.pop("optimizer", None)
            # a custom compile() keeps optimizers of its own; Keras's default may then never step:
            # it is recorded when it does (an epoch end), else the step counts batches
            self._unsure, self._optimizers = (main, found) if found else (None, {"optimizer": main} if main else {})
            self._start = (P.iterations(main) if main is not None else None) or 0
            self.step, self._counted = self._start, 0
            params = {"epochs": self.params.get("epochs"), "steps": self.params.get("steps")} if self.params else {}
            for name, optimizer in self._optimizers.items():
                params.update(P.optimizer_params(name, optimizer))
            rec.params({**P.compile_params(model), **params})
            self._log_sizes(rec)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        rec = self.recorder
        if rec is None:
            return
        with guard("keras: recording the end of the fit"):
            self._flush(rec)
            rec.params({"stop_training": bool(getattr(self.model, "stop_training", False))})
            if rec.active and rec.options.log_models:
                self.saving_model = True
                try:
                    _log_model(rec, self.model, self.epoch, self.step)
                finally:
                    self.saving_model = False
        if not self.attached:
            self.close()

    # -- metrics ----------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.recorder is not None:
            with guard("keras: recording epoch metrics"):
                self._flush(self.recorder)
                self.epoch, self._batches = epoch, 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches = batch + self._spe  # batches of this epoch so far: all that is done per batch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Recorded now; values that later callbacks add to ``logs`` (a ``val_f1`` for EarlyStopping)
        once every callback has seen the epoch (next epoch, end of fit)."""
        rec = self.recorder
        if rec is None or not rec.active:
            return
        with guard("keras: recording epoch metrics"):
            self._flush(rec)
            self._counted += self._batches
            self.epoch, self.step = epoch, self._global_step(rec)
            rates = {"learning_rate" if name == "optimizer" else f"{name}/learning_rate": P.learning_rate(opt)
                     for name, opt in self._optimizers.items()}
            values = {**{k: v for k, v in rates.items() if v is not None}, **P.scalars(logs)}  # logs' lr wins
            rec.metrics(values, step=self.step, epoch=epoch)
            self._pending = (epoch, logs if logs is not None else {}, set(values), self.step)
            self._log_sizes(rec)

    def _global_step(self, rec: FitRecorder) -> int:
        """The optimizer's step count (it goes on across fits of one model); while the model's
        ``optimizer`` has not stepped (a custom ``train_step`` with its own), the batches run."""
        if self._unsure is not None and (P.iterations(self._unsure) or 0) > self._start:
            self._optimizers = {"optimizer": self._unsure, **self._optimizers}  # it steps after all
            rec.params(P.optimizer_params("optimizer", self._unsure))
            self._unsure = None
        main = self._optimizers.get("optimizer")
        steps = P.iterations(main) if main is not None else None
        return steps if steps is not None and steps > self._start else self._start + self._counted

    def _on_batch(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        rec, n = self.recorder, self.options.log_every_n_steps
        step = self.step + batch + 1  # global step; several per call with steps_per_execution
        if rec is not None and n and step // n > (step - self._spe) // n:
            with guard("keras: recording step metrics"):
                rec.metrics(P.scalars(logs, "batch_"), step=step, epoch=self.epoch)

    def _flush(self, rec: FitRecorder) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            epoch, logs, logged, step = pending
            rec.metrics({k: v for k, v in P.scalars(logs).items() if k not in logged}, step=step, epoch=epoch)
            if self.checkpoints is not None:
                self.checkpoints.describe(logs, step)

    def _log_sizes(self, rec: FitRecorder) -> None:
        sizes = None if self._sized else P.size_params(self.model)
        if sizes is not None:
            self._sized = True
            rec.params(sizes)


def _fits() -> list[AutotrackCallback]:
    if not hasattr(_local, "fits"):
        _local.fits = []
    return _local.fits


def _end_abandoned(model: Any, current: Any = None) -> list[AutotrackCallback]:
    """A fit recorded without autolog that never reached ``on_train_end`` raised (the program went
    on): its run ends ``failed`` when the next fit of the thread starts. Returns the fits still
    running around the new one (a fit in a callback): only the outermost records."""
    for cb in list(_fits()):
        if cb is current or cb.model is model or not _in_fit(cb.model):
            cb.close(RuntimeError("the fit did not complete: it raised before on_train_end "
                                  "(seen when the next fit started)"))
    return _fits()


def _in_fit(model: Any) -> bool:
    """Whether ``model.fit`` is on this thread's stack: Keras tells a callback neither that its fit
    raised nor that another runs inside it, and a fit that raised is off the stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
            return True
        frame = frame.f_back
    return False


def _log_model(rec: FitRecorder, model: Any, epoch: int, step: int) -> None:
    """``model.keras`` (read now, written off the training thread: ``_keras_save``); when Keras
    cannot save the model whole (a subclass whose ``__init__`` takes what it cannot serialize),
    its weights, ``model.weights.h5``; when not those either (a subclass never built itself, as
    the GAN of Keras's guide), the models it holds, ``model/<attr>.keras``. The metadata says why."""
    meta: dict[str, Any] = {"epoch": epoch, "step": step}
    try:
        write = _keras_save.snapshot(model)  # read here, written by the run's writer (issue 20)
    except Exception:  # noqa: BLE001 - model.save below says why, into the record
        write = None
    if write is not None:
        rec.model_made("model.keras", write, metadata={**meta, "format": "keras"})
        return
    with tempfile.TemporaryDirectory(prefix="autotrack-keras-") as folder:
        for file, save, fmt, failure in (("model.keras", model.save, "keras", "full_save_error"),
                                         ("model.weights.h5", model.save_weights, "weights", "weights_save_error")):
            try:
                save(os.path.join(folder, file))
            except Exception as exc:  # noqa: BLE001 - the reason goes into the record
                first = str(exc).strip().split("\n\n")[0]  # Keras's messages go on with example code
                meta[failure] = f"{type(exc).__name__}: {' '.join(first.split())}"[:500]
                continue
            rec.model(os.path.join(folder, file), metadata={**meta, "format": fmt})
            return
        parts = {k: v for k, v in vars(model).items() if not k.startswith("_") and isinstance(v, keras.Model)}
        os.mkdir(os.path.join(folder, "model"))
        for name, part in parts.items():
            part.save(os.path.join(folder, "model", f"{name}.keras"))
        if parts:
            rec.model(os.path.join(folder, "model"), name="model", metadata={**meta, "format": "parts"})


def enable(config: Any) -> None:
    """autolog(): wrap ``keras.Model.fit/evaluate/save/save_weights`` (see ``_keras_wrappers``)."""
    W.enable(AutotrackCallback, _end_abandoned)


def disable() -> None:
    """autolog(disable=True): the very same functions back."""
    W.disable()
