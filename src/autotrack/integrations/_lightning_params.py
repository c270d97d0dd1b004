"""What a Lightning fit is made of, as flat params: hyperparameters, Trainer, optimizers, data.

Kept apart from the callback so the callback reads as a list of hooks. Everything here runs once
per fit (at ``on_fit_start`` / ``on_train_start``), never per batch.
"""

from __future__ import annotations

import sys
from typing import Any

from autotrack._values import flatten, to_json

__all__ = ["fit_params", "dataloader_info", "epoch_metric_names", "scalar_metrics"]

_SCHEDULER_SKIP = {"base_lrs", "_last_lr", "last_epoch", "_step_count", "_get_lr_called_within_step",
                   "_is_initial", "verbose", "optimizer"}


def _optimizer_params(optimizer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": type(optimizer).__name__}
    groups = getattr(optimizer, "param_groups", [])
    for i, group in enumerate(groups):
        prefix = "" if len(groups) == 1 else f"pg{i}/"
        for key, value in group.items():
            if key != "params":
                out[prefix + key] = value
    return out


def _scheduler_params(config: Any) -> dict[str, Any]:
    scheduler = getattr(config, "scheduler", config)
    out: dict[str, Any] = {"name": type(scheduler).__name__}
    for key, value in getattr(scheduler, "state_dict", dict)().items():
        if key not in _SCHEDULER_SKIP and not key.startswith("_") and not callable(value):
            out[key] = value
    for key in ("interval", "frequency", "monitor"):
        if hasattr(config, key):
            out[key] = getattr(config, key)
    return out


def fit_params(trainer: Any, module: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    hparams = dict(getattr(module, "hparams", {}) or {})
    params.update(flatten(hparams))
    datamodule = getattr(trainer, "datamodule", None)
    for key, value in flatten(dict(getattr(datamodule, "hparams", {}) or {})).items():
        params[key if key not in params else f"datamodule/{key}"] = value
    torch = sys.modules.get("torch")
    params["trainer"] = {
        "max_epochs": trainer.max_epochs, "max_steps": trainer.max_steps, "min_epochs": trainer.min_epochs,
        "precision": str(trainer.precision), "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": trainer.gradient_clip_val, "gradient_clip_algorithm": trainer.gradient_clip_algorithm,
        "accelerator": type(trainer.accelerator).__name__, "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes, "strategy": type(trainer.strategy).__name__,
        "world_size": trainer.world_size, "check_val_every_n_epoch": trainer.check_val_every_n_epoch,
        "deterministic": bool(torch.are_deterministic_algorithms_enabled()) if torch else None,
    }
    optimizers = list(getattr(trainer, "optimizers", []) or [])
    for i, optimizer in enumerate(optimizers):
        params["optimizer" if len(optimizers) == 1 else f"optimizer_{i}"] = _optimizer_params(optimizer)
    schedulers = list(getattr(trainer, "lr_scheduler_configs", []) or [])
    for i, config in enumerate(schedulers):
        params["lr_scheduler" if len(schedulers) == 1 else f"lr_scheduler_{i}"] = _scheduler_params(config)
    tensors = list(module.parameters())
    params["model"] = {
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "params_total": sum(p.numel() for p in tensors),
        "params_trainable": sum(p.numel() for p in tensors if p.requires_grad),
    }
    return flatten(params)


def dataloader_info(loader: Any) -> dict[str, Any]:
    """Sample count, batch size and number of batches: read from the loader, never iterated."""
    info: dict[str, Any] = {"loader": f"{type(loader).__module__}.{type(loader).__qualname__}"}
    dataset = getattr(loader, "dataset", None)
    for key, get in (("samples", lambda: len(dataset)), ("batches", lambda: len(loader)),
                     ("batch_size", lambda: loader.batch_size)):
        try:
            info[key] = to_json(get())
        except Exception:  # noqa: BLE001 - iterable datasets have no length
            pass
    return info


def epoch_metric_names(trainer: Any, on_step: bool = False) -> set[str] | None:
    """Names the user logged in the loop now running (Lightning's own result collection).

    With ``on_step``: the per-step names, as Lightning's loggers show them (``loss_step`` when
    the value is logged both per step and per epoch).
    """
    results = getattr(trainer, "_results", None)
    if results is None or not hasattr(results, "valid_items"):
        return None
    names = set()
    for _key, result in results.valid_items():
        meta = getattr(result, "meta", None)
        if meta is None:
            continue
        if on_step and meta.on_step:
            names.add(f"{meta.name}_step" if meta.on_epoch else meta.name)
        elif not on_step and meta.on_epoch:
            names.add(meta.name)
    return names


def scalar_metrics(metrics: dict[str, Any], names: set[str] | None) -> dict[str, Any]:
    """Lightning's callback metrics minus its ``_step``/``_epoch`` copies, as scalars."""
    out = {}
    for key, value in metrics.items():
        if names is not None and key not in names:
            continue
        if names is None and (key.endswith("_step") or key.endswith("_epoch") and key[:-6] in metrics):
            continue
        numel = getattr(value, "numel", None)
        if numel is not None and numel() != 1:
            continue
        out[key] = value
    return out
