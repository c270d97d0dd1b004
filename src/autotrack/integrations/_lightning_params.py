"""What a Lightning fit is made of, read once per fit from public attributes: hyperparameters,
Trainer settings, optimizers, schedulers, data loaders, EarlyStopping, checkpoint metadata, and
the final model file. Kept apart so the callback reads as a list of hooks; nothing here runs per batch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any, Iterator

from autotrack._values import flatten, to_json

__all__ = ["fit_params", "loaders", "learning_rates", "early_stopping", "checkpoint_meta", "write_final_model"]

_SCHEDULER_SKIP = {"base_lrs", "last_epoch", "verbose", "optimizer"}


def _optimizer_params(optimizer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": type(optimizer).__name__}
    groups = optimizer.param_groups
    for i, group in enumerate(groups):
        prefix = "" if len(groups) == 1 else f"pg{i}/"
        out.update({prefix + key: value for key, value in group.items() if key != "params"})
    return out


def _scheduler_params(config: Any) -> dict[str, Any]:
    scheduler = config.scheduler
    out: dict[str, Any] = {"name": type(scheduler).__name__}
    for key, value in getattr(scheduler, "state_dict", dict)().items():  # a custom scheduler may have none
        if key not in _SCHEDULER_SKIP and not key.startswith("_") and not callable(value):
            out[key] = value
    out.update(interval=config.interval, frequency=config.frequency, monitor=config.monitor)
    return out


def fit_params(trainer: Any, module: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(flatten(dict(module.hparams)))
    datamodule = trainer.datamodule
    for key, value in flatten(dict(getattr(datamodule, "hparams", {}) or {})).items():
        params[key if key not in params else f"datamodule/{key}"] = value  # a clash keeps both
    torch = sys.modules.get("torch")
    params["trainer"] = {
        "max_epochs": trainer.max_epochs, "max_steps": trainer.max_steps, "min_epochs": trainer.min_epochs,
        "precision": str(trainer.precision), "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": trainer.gradient_clip_val, "gradient_clip_algorithm": trainer.gradient_clip_algorithm,
        "accelerator": type(trainer.accelerator).__name__, "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes, "strategy": type(trainer.strategy).__name__,
        "world_size": trainer.world_size, "check_val_every_n_epoch": trainer.check_val_every_n_epoch,
        "log_every_n_steps": trainer.log_every_n_steps,
        "deterministic": bool(torch.are_deterministic_algorithms_enabled()) if torch else None,
    }
    optimizers = trainer.optimizers
    for i, optimizer in enumerate(optimizers):
        params["optimizer" if len(optimizers) == 1 else f"optimizer_{i}"] = _optimizer_params(optimizer)
    schedulers = trainer.lr_scheduler_configs
    for i, config in enumerate(schedulers):
        params["lr_scheduler" if len(schedulers) == 1 else f"lr_scheduler_{i}"] = _scheduler_params(config)
    tensors = list(module.parameters())
    params["model"] = {
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "params_total": sum(p.numel() for p in tensors),
        "params_trainable": sum(p.numel() for p in tensors if p.requires_grad),
    }
    return flatten(params)


def loaders(prefix: str, given: Any) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """``(name, what to fingerprint, info)`` per data loader: ``train``, ``val``, ``val/<i>``. The
    info (samples, batches, batch size) is read from the loader, never iterated; a dataset of
    in-memory tensors (``TensorDataset``) is fingerprinted by content."""
    if given is None:
        return
    items = given.items() if isinstance(given, dict) else (
        enumerate(given) if isinstance(given, (list, tuple)) else [(None, given)])
    for key, loader in items:
        dataset = getattr(loader, "dataset", None)
        info: dict[str, Any] = {"loader": f"{type(loader).__module__}.{type(loader).__qualname__}"}
        for field, obj, get in (("samples", dataset, len), ("batches", loader, len),
                                ("batch_size", loader, lambda o: o.batch_size)):
            with contextlib.suppress(Exception):  # iterable datasets have no length
                info[field] = to_json(get(obj))
        tensors = getattr(dataset, "tensors", None)
        yield (prefix if key is None else f"{prefix}/{key}"), (tuple(tensors) if tensors is not None else
                                                               dataset if dataset is not None else loader), info


def learning_rates(trainer: Any) -> dict[str, Any]:
    """``lr`` (several optimizers: ``lr-<Class>-<i>``; several param groups: ``/pg<j>``)."""
    lrs = {}
    for i, opt in enumerate(trainer.optimizers):
        for j, group in enumerate(opt.param_groups):
            key = "lr" if len(trainer.optimizers) == 1 else f"lr-{type(opt).__name__}-{i}"
            lrs[key if len(opt.param_groups) == 1 else f"{key}/pg{j}"] = group["lr"]
    return lrs


def early_stopping(trainer: Any, at_end: bool) -> dict[str, Any]:
    """EarlyStopping's settings at the start, where it stopped at the end ({} without one)."""
    for cb in trainer.callbacks:
        if type(cb).__name__ == "EarlyStopping":
            if at_end:
                return {"early_stopping/stopped_epoch": cb.stopped_epoch, "early_stopping/best_score": cb.best_score}
            return {"early_stopping/monitor": cb.monitor, "early_stopping/patience": cb.patience,
                    "early_stopping/mode": cb.mode, "early_stopping/min_delta": float(cb.min_delta)}
    return {}


def checkpoint_meta(trainer: Any, path: str) -> dict[str, Any]:
    """Epoch, step, and what each ModelCheckpoint says of this file (score, ``last``)."""
    meta: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
    for cb in trainer.checkpoint_callbacks:
        scores = getattr(cb, "best_k_models", {})
        if path in scores:
            meta.update(monitor=cb.monitor, score=scores[path])
        if path == getattr(cb, "last_model_path", None):
            meta["last"] = True
    return meta


@contextlib.contextmanager
def write_final_model(trainer: Any, module: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The final weights as ``model.ckpt`` in a temporary folder, in the layout
    ``Module.load_from_checkpoint`` reads; yields its path and metadata."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.ckpt")
        version = getattr(sys.modules.get(type(trainer).__module__.split(".")[0]), "__version__", "")
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                    "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                    "pytorch-lightning_version": version}, path)
        yield path, {"epoch": trainer.current_epoch, "step": trainer.global_step, "format": "lightning-checkpoint"}
