"""What the Lightning callback records besides params: per-step values, data, checkpoints, the model.

Kept apart from ``lightning.py`` so the callback reads as a list of hooks. ``step_metrics`` is the
only thing here that can run per batch (and only with ``log_every_n_steps``): it reads the values
of the current step straight from Lightning's result collection, where ``self.log`` left them,
instead of ``trainer.callback_metrics``, which rebuilds every logged metric's callback, logger and
progress-bar views (and converts the progress-bar ones to numbers) on each read.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from autotrack.integrations._lightning_params import dataloader_info

__all__ = ["step_metrics", "learning_rates", "early_stopping", "log_loaders", "checkpoint_meta", "log_final_model"]


def step_metrics(trainer: Any) -> dict[str, Any] | None:
    """This step's values logged with ``on_step=True``, under the names Lightning's loggers use
    (``loss_step`` when also logged per epoch), as 1-element tensors: the Run turns them into
    numbers. ``None`` when the result collection is not readable (another Lightning version)."""
    results = getattr(trainer, "_results", None)
    if results is None or not hasattr(results, "valid_items"):
        return None
    out: dict[str, Any] = {}
    for _key, result in results.valid_items():
        meta = getattr(result, "meta", None)
        value = getattr(result, "_forward_cache", None)
        if meta is None or not meta.on_step or value is None or getattr(value, "numel", lambda: 0)() != 1:
            continue
        name = f"{meta.name}_step" if meta.on_epoch else meta.name
        if getattr(meta, "add_dataloader_idx", False) and getattr(meta, "dataloader_idx", None) is not None:
            name += f"/dataloader_idx_{meta.dataloader_idx}"
        out[name] = value.detach()
    return out


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
    out: dict[str, Any] = {}
    for cb in trainer.callbacks:
        if type(cb).__name__ == "EarlyStopping":
            out["early_stopping"] = {"stopped_epoch": cb.stopped_epoch, "best_score": cb.best_score} if at_end else \
                {"monitor": cb.monitor, "patience": cb.patience, "mode": cb.mode, "min_delta": float(cb.min_delta)}
    return out


def log_loaders(run: Any, prefix: str, loaders: Any) -> None:
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


def log_final_model(run: Any, trainer: Any, module: Any) -> None:
    """The final weights as ``model.ckpt``, which ``Module.load_from_checkpoint`` reads."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.ckpt")
        version = getattr(sys.modules.get(type(trainer).__module__.split(".")[0]), "__version__", "")
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(getattr(module, "hparams", {})),
                    "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                    "pytorch-lightning_version": version}, path)
        run.log_artifact(path, kind="model", metadata={"epoch": trainer.current_epoch, "step": trainer.global_step,
                                                        "format": "lightning-checkpoint"})
