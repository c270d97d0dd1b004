"""PyTorch Lightning: ``AutotrackCallback`` for ``lightning`` and ``pytorch_lightning`` Trainers.

One ``fit`` is one run (a ``FitRecorder``), begun in ``setup`` on global rank 0 only and ended at
``teardown`` or ``on_exception``; ``validate``/``test`` right after ``fit`` reopen the fit's run.
Metrics are what Lightning's loggers receive, read from ``trainer.logged_metrics``: per-step
values at the Trainer's ``log_every_n_steps``, epoch values once Lightning has computed them
(after the module's own ``on_*_epoch_end``). That dict keeps every name of the fit, so each name
belongs to the loop it first appeared in (a training step, a validation, a training epoch end).
Checkpoints: no hook tells a callback a file was written or removed, so for the length of a fit
this trainer's ``save_checkpoint`` and its strategy's ``remove_checkpoint`` are wrapped on the
instance and put back after. ``autolog()`` adds the callback to every ``Trainer.fit/validate/test``.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any, Callable

from autotrack._hooks import when_imported
from autotrack._safety import guard
from autotrack.integrations._common import FitRecorder, Patcher, autolog_on, explicit_options, resolve_options
from autotrack.integrations._lightning_params import (checkpoint_meta, early_stopping, fit_params, learning_rates,
                                                      loaders, write_final_model)

__all__ = ["AutotrackCallback", "enable", "disable"]

_NAMESPACES = ("lightning.pytorch", "pytorch_lightning")
if not any(n in sys.modules for n in _NAMESPACES):
    try:
        import lightning.pytorch  # noqa: F401
    except ImportError:
        import pytorch_lightning  # noqa: F401
# the Lightning packages in use (both may be): the callback is a Callback of each
_CALLBACK_BASES = tuple(sys.modules[n].Callback for n in _NAMESPACES if n in sys.modules)


class AutotrackCallback(*_CALLBACK_BASES):  # type: ignore[misc]
    """Record every ``fit`` (and ``validate``/``test``) of the Trainer it is given to.

    Example::

        from autotrack.integrations.lightning import AutotrackCallback
        trainer = L.Trainer(max_epochs=5, callbacks=[AutotrackCallback(experiment="mnist")])
        trainer.fit(model, datamodule=dm)
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None,
                 register_as: str | None = None) -> None:
        self._explicit = explicit_options(uri=uri, experiment=experiment, log_checkpoints=log_checkpoints,
                                          log_models=log_models, log_every_n_steps=log_every_n_steps,
                                          register_as=register_as)
        self._name = name
        self._rec: FitRecorder | None = None
        self._last_fit: Any = None  # the run of the last fit, which validate/test reopen
        self._taps: list[tuple[Any, str, bool, Any]] = []

    # -- the run's life ------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        with guard("lightning: starting the run"):
            self._fitting = stage == "fit"  # a fit resumes from a checkpoint; test(ckpt_path=...) only loads one
            self._loop_of: dict[str, str] = {}  # metric name -> the loop it belongs to: step, epoch, eval
            self._every = 0  # the step cadence of this fit (0: no step points)
            self._epoch_ended: int | None = None  # a training epoch whose values are still to be read
            self._val_data = False
            options = resolve_options(**self._explicit)
            self._rec = rec = FitRecorder("lightning", options, record=trainer.global_rank == 0,
                                          evaluation=stage != "fit")
            run = rec.begin(self._name, reopen=self._last_fit if stage != "fit" else None)
            if stage == "fit" and rec.active:
                self._last_fit = run if rec.owned else None  # never reopen a run the user started
                self._every = options.log_every_n_steps or trainer.log_every_n_steps or 0
                if options.log_checkpoints:
                    self._tap(trainer, "save_checkpoint", self._saved)
                    self._tap(trainer.strategy, "remove_checkpoint", self._removed)

    def _end(self, exc: BaseException | None = None) -> None:
        while self._taps:
            obj, attr, had, original = self._taps.pop()
            setattr(obj, attr, original) if had else delattr(obj, attr)  # the class's method shows again
        rec, self._rec = self._rec, None
        if rec is not None:
            rec.end(exc)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        with guard("lightning: finishing the run"):
            self._end()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        with guard("lightning: recording the failure"):
            self._end(exception)

    def _active(self) -> FitRecorder | None:
        rec = self._rec
        return rec if rec is not None and rec.active else None

    # -- what the fit is made of ---------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()
        if rec is not None:
            with guard("lightning: recording params"):
                rec.params({**fit_params(trainer, pl_module), **early_stopping(trainer, at_end=False)})
                if trainer.ckpt_path:
                    rec.tags({"resumed_from_checkpoint": os.path.abspath(str(trainer.ckpt_path))})

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()
        if rec is not None:
            self._manual = not pl_module.automatic_optimization  # then Lightning's loggers count batches
            self._stepped = 0 if self._manual else trainer.global_step  # steps (or batches) seen
            with guard("lightning: fingerprinting data"):
                for name, loader, info in loaders("train", trainer.train_dataloader):
                    rec.data(name, loader, **info)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()
        if rec is None or trainer.sanity_checking:
            return
        with guard("lightning: recording metrics"):
            self._read(trainer, "step")  # names new since the last step read came from training steps
            if not self._val_data:
                self._val_data = True
                for name, loader, info in loaders("val", trainer.val_dataloaders):
                    rec.data(name, loader, **info)

    # -- metrics ---------------------------------------------------------------------------------
    def _read(self, trainer: Any, loop: str) -> dict[str, Any]:
        """The values of ``loop`` among what Lightning's loggers got; epoch values under your
        name (``loss``, not the ``loss_epoch`` Lightning writes when ``loss`` is also per step)."""
        logged = trainer.logged_metrics
        out = {}
        for key, value in logged.items():
            if self._loop_of.setdefault(key, loop) != loop:
                continue
            if loop != "step" and key.endswith("_step") and key[:-5] + "_epoch" in logged:
                continue
            if loop != "step" and key.endswith("_epoch") and key[:-6] + "_step" in logged:
                key = key[:-6]
            out[key] = value
        return out

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        rec = self._active()
        if rec is None:
            return
        step = trainer.global_step
        if self._manual:
            self._stepped += 1
        elif step == self._stepped:
            return  # accumulating gradients: no optimizer step, and Lightning logs nothing either
        else:
            self._stepped = step
        # Lightning's own rule for its loggers (every n-th batch that stepped, and when stopping)
        due = bool(self._every) and (self._stepped % self._every == 0 or trainer.should_stop)
        if due or trainer.is_last_batch:  # the last batch: every step name is known before the epoch's
            with guard("lightning: recording step metrics"):
                values = self._read(trainer, "step")
                if due:
                    rec.metrics(values, step=step, epoch=trainer.current_epoch)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()
        if rec is not None:
            self._epoch_values(trainer, rec)
            with guard("lightning: recording the learning rate"):
                rec.metrics(learning_rates(trainer), step=trainer.global_step, epoch=trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_ended = trainer.current_epoch  # read at the next hook: the module logs after us

    def _epoch_values(self, trainer: Any, rec: FitRecorder) -> None:
        epoch, self._epoch_ended = self._epoch_ended, None
        if epoch is not None:
            with guard("lightning: recording metrics"):
                rec.metrics(self._read(trainer, "epoch"), step=trainer.global_step, epoch=epoch)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()  # after the module's on_validation_epoch_end, and Lightning's logging
        if rec is not None and not trainer.sanity_checking:
            with guard("lightning: recording metrics"):
                rec.metrics(self._read(trainer, "eval"), step=trainer.global_step, epoch=trainer.current_epoch)

    on_test_end = on_validation_end

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        rec = self._active()
        if rec is None:
            return
        self._epoch_values(trainer, rec)
        with guard("lightning: recording the end of training"):
            rec.params(early_stopping(trainer, at_end=True))
            if rec.options.log_models and not trainer.checkpoint_callbacks:
                with write_final_model(trainer, pl_module) as (path, metadata):
                    rec.model(path, metadata=metadata)

    # -- checkpoints -----------------------------------------------------------------------------
    def _tap(self, obj: Any, attr: str, after: Callable[[Any, str], None]) -> None:
        """``obj.attr(path, ...)`` calls ``after(trainer, path)`` once it returns; undone by ``_end``."""
        had, original = attr in vars(obj), getattr(obj, attr)

        def tapped(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            with guard("lightning: recording a checkpoint"):
                after(obj, os.fspath(args[0] if args else kwargs["filepath"]))  # both name it filepath
            return result

        setattr(obj, attr, tapped)
        self._taps.append((obj, attr, had, original))

    def _saved(self, trainer: Any, path: str) -> None:
        rec = self._active()
        if rec is not None and rec.checkpoint(path, checkpoint_meta(trainer, path)):
            best = trainer.checkpoint_callback
            if best is not None and best.best_model_path and os.path.abspath(best.best_model_path) == os.path.abspath(path):
                rec.best_checkpoint(path, {"best_score": best.best_model_score})

    def _removed(self, strategy: Any, path: str) -> None:
        rec = self._active()
        if rec is not None:
            rec.checkpoint_removed(path)

    # -- resume: the run id travels inside Lightning's own checkpoints ---------------------------
    def state_dict(self) -> dict[str, Any]:
        rec = self._active()
        return {"run_id": rec.run.id} if rec is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        rec = self._active()
        if rec is not None and self._fitting and state_dict.get("run_id"):
            rec.tags({"resumed_from": state_dict["run_id"]})

    @property
    def state_key(self) -> str:
        return "AutotrackCallback"


# -- autolog(): each namespace's Trainer.fit/validate/test get the callback for the call --------
_patcher = Patcher()
_hooked: set[str] = set()
_callbacks: weakref.WeakKeyDictionary[Any, AutotrackCallback] = weakref.WeakKeyDictionary()  # one per trainer


def _inject(wrapped: Any, trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Add our callback for this call, unless the user gave one; the user's list stays untouched.
    The same callback serves every call of a trainer, so ``test()`` after ``fit()`` finds its run."""
    cb = None
    with guard("lightning: adding the autolog callback"):
        if not any(isinstance(c, AutotrackCallback) for c in trainer.callbacks):
            cb = _callbacks.get(trainer) or _callbacks.setdefault(trainer, AutotrackCallback())
            trainer.callbacks = [*trainer.callbacks, cb]
    try:
        return wrapped(*args, **kwargs)
    finally:
        if cb is not None:
            trainer.callbacks = [c for c in trainer.callbacks if c is not cb]


def _patch(module: Any) -> None:
    for method in ("fit", "validate", "test"):
        _patcher.wrap(module.Trainer, method, _inject)


def enable(config: Any) -> None:
    """autolog(): patch the namespaces loaded now, and the other one when it is imported."""
    for name in _NAMESPACES:
        if name in sys.modules:
            _patch(sys.modules[name])
        if name not in _hooked:
            _hooked.add(name)
            when_imported(name, lambda module: _patch(module) if autolog_on("lightning") else None)


def disable() -> None:
    _patcher.undo()
