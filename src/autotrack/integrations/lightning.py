"""PyTorch Lightning: ``AutotrackCallback`` for ``lightning`` and ``pytorch_lightning`` Trainers.

One ``fit`` is one run, started in ``setup`` on global rank 0 only (other ranks record nothing).
Epoch metrics come from what the user logged; validation metrics at each validation's end,
never the sanity check's. Checkpoints are recorded as the Trainer writes them: the callback
wraps this trainer's ``save_checkpoint`` and its strategy's ``remove_checkpoint`` for the length
of the fit (the instance, not the class), so files that top-k rotation deletes are marked
superseded. ``trainer.validate()``/``test()`` right after ``fit`` reopen the fit's run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from autotrack._safety import guard
from autotrack.integrations import _lightning_autolog as _autolog
from autotrack.integrations._common import (CheckpointTracker, FitSession, Patcher, explicit_options,
                                             resolve_options)
from autotrack.integrations._lightning_params import epoch_metric_names, fit_params, scalar_metrics
from autotrack.integrations._lightning_record import (checkpoint_meta, early_stopping, learning_rates,
                                                      log_final_model, log_loaders, step_metrics)

__all__ = ["AutotrackCallback", "enable", "disable"]


def _namespaces() -> list[Any]:
    """The Lightning packages in use; both may be, and each has its own Callback class."""
    loaded = [sys.modules[n] for n in ("lightning.pytorch", "pytorch_lightning") if n in sys.modules]
    if not loaded:
        try:
            import lightning.pytorch as loaded_ns
        except ImportError:
            import pytorch_lightning as loaded_ns
        loaded = [loaded_ns]
    return loaded


_NS = _namespaces()


class _Recorder:
    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None) -> None:
        self._explicit = explicit_options(uri=uri, experiment=experiment, log_checkpoints=log_checkpoints,
                                          log_models=log_models, log_every_n_steps=log_every_n_steps)
        self._name = name
        self._session: FitSession | None = None
        self._last_fit: Any = None
        self._resumed_from: str | None = None
        self._tracker: CheckpointTracker | None = None
        self._patcher = Patcher()
        self._val_logged = False
        self._every: int | None = None  # log_every_n_steps of the fit being recorded

    # -- the run's life -----------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        with guard("lightning: starting the run"):
            options = resolve_options(**self._explicit)
            self._session = FitSession("lightning", options, record=trainer.global_rank == 0)
            last = self._last_fit
            if stage != "fit" and last is not None and last.status != "running" and not _user_run():
                self._session.run, self._session.owned = last.reopen(), True
            else:
                run = self._session.begin(self._name)
                if stage == "fit" and self._session.active:
                    self._last_fit = run
            self._every = options.log_every_n_steps if self._session.active else None
            if self._session.active and stage == "fit" and options.log_checkpoints:
                self._tracker = CheckpointTracker(self._session.run, keep_all=options.log_checkpoints == "all")
                self._patcher.wrap(trainer, "save_checkpoint", self._on_save)
                self._patcher.wrap(trainer.strategy, "remove_checkpoint", self._on_remove)

    def _end(self, exc: BaseException | None = None) -> None:
        self._patcher.undo()
        self._tracker = None
        self._every = None
        session, self._session = self._session, None
        if session is not None:
            session.end(exc)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        with guard("lightning: finishing the run"):
            self._end()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        with guard("lightning: recording the failure"):
            self._end(exception)

    @property
    def _run(self) -> Any:
        return self._session.run if self._session is not None and self._session.active else None

    # -- what the fit is made of ----------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None:
            with guard("lightning: recording params"):
                run.log_params(fit_params(trainer, pl_module))
                ckpt = getattr(trainer, "ckpt_path", None)
                if ckpt:
                    run.set_tags({"resumed_from_checkpoint": os.path.abspath(str(ckpt))})
                stopping = early_stopping(trainer, at_end=False)
                if stopping:
                    run.log_params(stopping)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None:
            with guard("lightning: fingerprinting data"):
                log_loaders(run, "train", trainer.train_dataloader)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None and not trainer.sanity_checking and not self._val_logged:
            self._val_logged = True
            with guard("lightning: fingerprinting data"):
                log_loaders(run, "val", trainer.val_dataloaders)

    # -- metrics ----------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None:
            with guard("lightning: recording the learning rate"):
                run.log_metrics(learning_rates(trainer), step=trainer.global_step, epoch=trainer.current_epoch)

    def _log_loop_metrics(self, trainer: Any) -> None:
        run = self._run
        if run is not None and not trainer.sanity_checking:
            with guard("lightning: recording metrics"):
                values = scalar_metrics(trainer.callback_metrics, epoch_metric_names(trainer))
                if values:
                    run.log_metrics(values, step=trainer.global_step, epoch=trainer.current_epoch)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_loop_metrics(trainer)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_loop_metrics(trainer)

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_loop_metrics(trainer)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self._every  # None unless asked for: then this hook costs one attribute read per batch
        if not n:
            return
        step = trainer.global_step  # a property chain: read once
        if step % n == 0:
            with guard("lightning: recording step metrics"):
                values = step_metrics(trainer)
                if values is None:  # a Lightning whose result collection we cannot read
                    values = scalar_metrics(trainer.callback_metrics, epoch_metric_names(trainer, on_step=True))
                run = self._run
                if values and run is not None:
                    run.log_metrics(values, step=step, epoch=trainer.current_epoch)

    # -- checkpoints and the final model ------------------------------------------------------
    def _on_save(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        with guard("lightning: recording a checkpoint"):
            trainer = instance
            path = os.fspath(args[0] if args else kwargs["filepath"])
            if self._tracker is not None and self._tracker.saved(path, checkpoint_meta(trainer, path)):
                best = getattr(trainer.checkpoint_callback, "best_model_path", "")
                if best and os.path.abspath(best) in self._tracker.names:
                    self._tracker.mark_best(best, {"best_score": getattr(trainer.checkpoint_callback, "best_model_score", None)})
        return result

    def _on_remove(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        with guard("lightning: recording a removed checkpoint"):
            if self._tracker is not None:
                self._tracker.removed(os.fspath(args[0] if args else kwargs["filepath"]))
        return result

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is None:
            return
        with guard("lightning: recording the end of training"):
            stopping = early_stopping(trainer, at_end=True)
            if stopping:
                run.log_params(stopping)
            options = self._session.options if self._session else None
            if options and options.log_models and not trainer.checkpoint_callbacks:
                log_final_model(run, trainer, pl_module)

    # -- resume: the run id travels inside Lightning's own checkpoints ----------------------------
    def state_dict(self) -> dict[str, Any]:
        run = self._run
        return {"run_id": run.id} if run is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resumed_from = state_dict.get("run_id")
        run = self._run
        if run is not None and self._resumed_from:
            run.set_tags({"resumed_from": self._resumed_from})

    @property
    def state_key(self) -> str:
        return "AutotrackCallback"


def _user_run() -> bool:
    from autotrack._run import active_run

    return active_run() is not None


AutotrackCallback = type("AutotrackCallback", (_Recorder, *(ns.Callback for ns in _NS)), {
    "__module__": __name__,
    "__doc__": """Record every ``fit`` (and ``validate``/``test``) of the Trainer it is given to.

    Example::

        from autotrack.integrations.lightning import AutotrackCallback
        trainer = L.Trainer(max_epochs=5, callbacks=[AutotrackCallback(experiment="mnist")])
        trainer.fit(model, datamodule=dm)
    """,
})

def enable(config: Any) -> None:
    """autolog(): patch ``Trainer.fit/validate/test`` of each namespace, now or when imported."""
    _autolog.enable(AutotrackCallback, _Recorder)


def disable() -> None:
    _autolog.disable()
