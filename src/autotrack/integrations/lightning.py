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
import tempfile
from typing import Any

from autotrack._safety import guard
from autotrack.integrations._common import (CheckpointTracker, FitSession, Patcher, explicit_options,
                                             resolve_options)
from autotrack.integrations._lightning_params import dataloader_info, epoch_metric_names, fit_params, scalar_metrics

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
            if self._session.active and stage == "fit" and options.log_checkpoints:
                self._tracker = CheckpointTracker(self._session.run, keep_all=options.log_checkpoints == "all")
                self._patcher.wrap(trainer, "save_checkpoint", self._on_save)
                self._patcher.wrap(trainer.strategy, "remove_checkpoint", self._on_remove)

    def _end(self, exc: BaseException | None = None) -> None:
        self._patcher.undo()
        self._tracker = None
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
                for cb in trainer.callbacks:
                    if type(cb).__name__ == "EarlyStopping":
                        run.log_params({"early_stopping": {"monitor": cb.monitor, "patience": cb.patience,
                                                           "mode": cb.mode, "min_delta": float(cb.min_delta)}})

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None:
            with guard("lightning: fingerprinting data"):
                _log_loaders(run, "train", trainer.train_dataloader)

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None and not trainer.sanity_checking and not self._val_logged:
            self._val_logged = True
            with guard("lightning: fingerprinting data"):
                _log_loaders(run, "val", trainer.val_dataloaders)

    # -- metrics ----------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._run
        if run is not None:
            with guard("lightning: recording the learning rate"):
                lrs = {}
                for i, opt in enumerate(trainer.optimizers):
                    for j, group in enumerate(opt.param_groups):
                        key = "lr" if len(trainer.optimizers) == 1 else f"lr-{type(opt).__name__}-{i}"
                        lrs[key if len(opt.param_groups) == 1 else f"{key}/pg{j}"] = group["lr"]
                run.log_metrics(lrs, step=trainer.global_step, epoch=trainer.current_epoch)

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
        n = self._session.options.log_every_n_steps if self._session is not None else None
        run = self._run
        if n and run is not None and trainer.global_step % n == 0:
            with guard("lightning: recording step metrics"):
                names = epoch_metric_names(trainer, on_step=True)
                values = scalar_metrics(trainer.callback_metrics, names) if names else {}
                if values:
                    run.log_metrics(values, step=trainer.global_step, epoch=trainer.current_epoch)

    # -- checkpoints and the final model ------------------------------------------------------
    def _on_save(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        with guard("lightning: recording a checkpoint"):
            trainer = instance
            path = os.fspath(args[0] if args else kwargs["filepath"])
            meta: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
            for cb in trainer.checkpoint_callbacks:
                scores = getattr(cb, "best_k_models", {})
                if path in scores:
                    meta.update(monitor=cb.monitor, score=scores[path])
                if path == getattr(cb, "last_model_path", None):
                    meta["last"] = True
            if self._tracker is not None and self._tracker.saved(path, meta):
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
            for cb in trainer.callbacks:
                if type(cb).__name__ == "EarlyStopping":
                    run.log_params({"early_stopping": {"stopped_epoch": cb.stopped_epoch,
                                                       "best_score": cb.best_score}})
            options = self._session.options if self._session else None
            if options and options.log_models and not trainer.checkpoint_callbacks:
                _log_final_model(run, trainer, pl_module)

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


def _log_loaders(run: Any, prefix: str, loaders: Any) -> None:
    if loaders is None:
        return
    items = loaders.items() if isinstance(loaders, dict) else (
        enumerate(loaders) if isinstance(loaders, (list, tuple)) else [(None, loaders)])
    for key, loader in items:
        name = prefix if key is None else f"{prefix}/{key}"
        info = dataloader_info(loader)
        tensors = getattr(getattr(loader, "dataset", None), "tensors", None)
        if tensors is not None:
            run.log_data(name, tuple(tensors), **info)  # in-memory tensors: content fingerprint too
        else:
            run.log_data(name, getattr(loader, "dataset", loader), **info)


def _log_final_model(run: Any, trainer: Any, module: Any) -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.ckpt")
        version = getattr(sys.modules.get(type(trainer).__module__.split(".")[0]), "__version__", "")
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(getattr(module, "hparams", {})),
                    "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                    "pytorch-lightning_version": version}, path)
        run.log_artifact(path, kind="model", metadata={"epoch": trainer.current_epoch, "step": trainer.global_step,
                                                        "format": "lightning-checkpoint"})


AutotrackCallback = type("AutotrackCallback", (_Recorder, *(ns.Callback for ns in _NS)), {
    "__module__": __name__,
    "__doc__": """Record every ``fit`` (and ``validate``/``test``) of the Trainer it is given to.

    Example::

        from autotrack.integrations.lightning import AutotrackCallback
        trainer = L.Trainer(max_epochs=5, callbacks=[AutotrackCallback(experiment="mnist")])
        trainer.fit(model, datamodule=dm)
    """,
})

_patcher = Patcher()


def _inject(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """autolog(): give the trainer our callback for this call unless the user already did."""
    trainer = instance
    cb = None
    with guard("lightning: adding the autolog callback"):
        if not any(isinstance(c, _Recorder) for c in trainer.callbacks):
            cb = trainer.__dict__.get("_autotrack_callback") or AutotrackCallback()
            trainer.__dict__["_autotrack_callback"] = cb
            trainer.callbacks = [*trainer.callbacks, cb]  # a new list: the user's stays untouched
    try:
        return wrapped(*args, **kwargs)
    finally:
        if cb is not None:
            trainer.callbacks = [c for c in trainer.callbacks if c is not cb]


_state = {"enabled": False, "hooked": False}


def _patch(module: Any) -> None:
    if _state["enabled"]:
        for method in ("fit", "validate", "test"):
            _patcher.wrap(module.Trainer, method, _inject)


def enable(config: Any) -> None:
    """autolog(): patch ``Trainer.fit/validate/test`` of each namespace, now or when imported."""
    import wrapt

    _state["enabled"] = True
    if not _state["hooked"]:
        _state["hooked"] = True
        for name in ("lightning.pytorch", "pytorch_lightning"):
            wrapt.register_post_import_hook(lambda _m, _n=name: _patch(sys.modules[_n]), name)
    for name in ("lightning.pytorch", "pytorch_lightning"):
        if name in sys.modules:  # both may be loaded; the hooks above fire only once per import
            _patch(sys.modules[name])


def disable() -> None:
    _state["enabled"] = False
    _patcher.undo()
