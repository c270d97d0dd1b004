"""What a plain PyTorch loop is made of, read from the objects themselves: the optimizer, the model
it trains, its LR scheduler and grad scaler, the data loaders, the determinism and autocast
settings, and what a ``torch.save`` wrote.

A plain loop hands autotrack nothing but the optimizer (its step hook), so the model, scheduler
and scaler are found where the loop holds them: in the variables of the code that called
``optimizer.step()`` and of its callers (a script's globals, a function's locals, attributes of a
``self``). That is read once per optimizer, never per step. Names follow the Lightning adapter's
(``optimizer/name``, ``optimizer/lr``, ``optimizer/pg1/lr``, ``model/params_total``, ``lr``), so
the same model trained both ways compares param for param.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import warnings
import weakref
from typing import Any, Iterator

import torch

from autotrack._values import flatten, to_json

__all__ = ["class_name", "optimizer_params", "scheduler_params", "model_params", "find_objects", "loader_info",
           "data_target", "determinism", "autocast_state", "scaler_params", "checkpoint_contents", "driver", "rank_zero",
           "user_frames", "lr_value"]

# code that drives torch itself and has an adapter of its own: its steps, loaders and saves are its run's
_DRIVERS = {"lightning.pytorch": "lightning", "pytorch_lightning": "lightning", "transformers": "transformers",
            "keras": "keras"}
_SCHEDULER_SKIP = {"base_lrs", "last_epoch", "verbose", "optimizer", "_last_lr"}
_MAX_FRAMES = 40  # how far up the stack the loop's variables are looked for


def class_name(obj: Any) -> str:
    """``torch.optim.AdamW`` where torch exports the class under a shorter name, else its full path."""
    cls = type(obj)
    module = cls.__module__ or ""
    for short in ("torch.optim", "torch.optim.lr_scheduler", "torch.utils.data", "torch.nn"):
        if module.startswith(short + ".") and getattr(sys.modules.get(short), cls.__name__, None) is cls:
            return f"{short}.{cls.__name__}"
    return f"{module}.{cls.__qualname__}"


def lr_value(lr: Any) -> float | None:
    """A learning rate as a float; None for a tensor on an accelerator (reading it would wait for it)."""
    if type(lr) is float or type(lr) is int:
        return lr
    if isinstance(lr, torch.Tensor):
        return float(lr) if lr.device.type == "cpu" and lr.numel() == 1 else None
    try:
        return float(lr)
    except (TypeError, ValueError):
        return None


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """Class and every hyperparameter of each param group (``pg<i>/`` when there are several),
    with the number of tensors and values each group trains."""
    out: dict[str, Any] = {"name": type(optimizer).__name__, "class": class_name(optimizer)}
    groups = optimizer.param_groups
    for i, group in enumerate(groups):
        prefix = "" if len(groups) == 1 else f"pg{i}/"
        for key, value in group.items():
            if key == "params":
                out[prefix + "tensors"] = len(value)
                out[prefix + "params"] = sum(p.numel() for p in value)
            elif isinstance(value, torch.Tensor):
                out[prefix + key] = value.tolist() if value.device.type == "cpu" and value.numel() <= 16 else str(value.dtype)
            else:
                out[prefix + key] = value
    return out


def scheduler_params(scheduler: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": type(scheduler).__name__, "class": class_name(scheduler)}
    with contextlib.suppress(Exception):  # a custom scheduler may have no usable state_dict
        for key, value in scheduler.state_dict().items():
            if key not in _SCHEDULER_SKIP and not key.startswith("_") and not callable(value):
                out[key] = value
    return out


def _unwrap(model: Any) -> tuple[Any, list[str]]:
    """The user's model inside DistributedDataParallel, DataParallel, FSDP or ``torch.compile``."""
    wrappers: list[str] = []
    for _ in range(4):
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(model, "module", None) if type(model).__name__ in (
                "DistributedDataParallel", "DataParallel", "FullyShardedDataParallel") else None
        if not isinstance(inner, torch.nn.Module):
            break
        wrappers.append(class_name(model))
        model = inner
    return model, wrappers


def model_params(model: Any) -> dict[str, Any]:
    inner, wrappers = _unwrap(model)
    tensors = [p for p in inner.parameters() if not isinstance(p, torch.nn.parameter.UninitializedParameter)]
    dtypes = sorted({str(p.dtype).rpartition(".")[2] for p in tensors})
    out: dict[str, Any] = {
        "class": class_name(inner),
        "params_total": sum(p.numel() for p in tensors),
        "params_trainable": sum(p.numel() for p in tensors if p.requires_grad),
        "dtype": dtypes[0] if len(dtypes) == 1 else dtypes,
    }
    devices = sorted({p.device.type for p in tensors})
    if devices:
        out["device"] = devices[0] if len(devices) == 1 else devices
    if wrappers:
        out["wrappers"] = wrappers
    return out


def user_frames(frame: Any) -> Iterator[Any]:
    """The frames above ``frame`` that are not torch's or autotrack's (the loop and its callers)."""
    seen = 0
    while frame is not None and seen < _MAX_FRAMES:
        name = frame.f_globals.get("__name__") or ""
        if not name.startswith(("torch.", "autotrack.")) and name not in ("torch", "autotrack"):
            seen += 1
            yield frame
        frame = frame.f_back


def _values(frame: Any) -> Iterator[Any]:
    """A frame's variables, and the attributes of those that are plain objects (``self.model``)."""
    for value in list(frame.f_locals.values()):
        yield value
        if isinstance(value, (torch.nn.Module, type, types.ModuleType)) or type(value).__module__.startswith("torch"):
            continue
        try:
            attrs = object.__getattribute__(value, "__dict__")  # never a lazy object's __getattr__
        except (AttributeError, TypeError):
            continue
        if isinstance(attrs, dict):
            yield from list(attrs.values())[:200]


def find_objects(frame: Any, optimizer: Any) -> tuple[Any, list[Any], Any]:
    """``(model, schedulers, grad scaler)`` of ``optimizer``, from the variables of ``frame`` and
    its callers; the model is the module holding most of the optimizer's parameters (the larger
    one on a tie: the whole model rather than a fine-tuned head)."""
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    best, best_key, schedulers, seen = None, (0, 0), [], set()
    scheduler_type = torch.optim.lr_scheduler.LRScheduler
    for user in user_frames(frame):
        for value in _values(user):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, torch.nn.Module):
                tensors = list(value.parameters())
                key = (sum(id(p) in params for p in tensors), sum(p.numel() for p in tensors
                                                                  if not isinstance(p, torch.nn.parameter.UninitializedParameter)))
                if key[0] and key > best_key:
                    best, best_key = value, key
            elif isinstance(value, scheduler_type) and getattr(value, "optimizer", None) is optimizer:
                schedulers.append(value)
    return best, schedulers, _scaler(frame)


def _scaler(frame: Any) -> Any:
    """The ``GradScaler`` whose ``step`` called this optimizer step, if one did."""
    scaler_type = getattr(torch.amp, "GradScaler", None) or torch.cuda.amp.GradScaler  # torch.amp's: 2.3+
    for _ in range(12):
        if frame is None or scaler_type is None:
            return None
        owner = frame.f_locals.get("self") if frame.f_code.co_varnames[:1] == ("self",) else None
        if isinstance(owner, scaler_type):
            return owner
        frame = frame.f_back
    return None


def scaler_params(scaler: Any) -> dict[str, Any]:
    return {"grad_scaler": True, "grad_scaler_enabled": scaler.is_enabled(),
            "init_scale": getattr(scaler, "_init_scale", None), "growth_factor": scaler.get_growth_factor(),
            "backoff_factor": scaler.get_backoff_factor(), "growth_interval": scaler.get_growth_interval()}


def loader_info(loader: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(key, settings, seeds)`` of a DataLoader, read from it, never iterated. The key is its
    dataset (a loop may make a new DataLoader over the same data each epoch), or the loader for
    a dataset that takes no weak reference."""
    dataset = getattr(loader, "dataset", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    # the sampler the batches come from (Accelerate's loaders keep a placeholder in .sampler)
    sampler = getattr(batch_sampler, "sampler", None) or getattr(loader, "sampler", None)
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is None:
        batch_size = getattr(batch_sampler, "batch_size", None)
    shuffle = (True if isinstance(sampler, torch.utils.data.RandomSampler) else
               False if isinstance(sampler, torch.utils.data.SequentialSampler) else
               getattr(sampler, "shuffle", None))
    info: dict[str, Any] = {"loader": class_name(loader), "batch_size": batch_size, "shuffle": shuffle,
                            "num_workers": getattr(loader, "num_workers", None),
                            "drop_last": getattr(loader, "drop_last", None),
                            "pin_memory": getattr(loader, "pin_memory", None),
                            "sampler": class_name(sampler) if sampler is not None else None,
                            "dataset": class_name(dataset) if dataset is not None else None}
    for field, obj in (("samples", dataset), ("batches", loader)):
        with contextlib.suppress(Exception):  # an IterableDataset has no length
            info[field] = len(obj)
    seeds: dict[str, Any] = {}
    generator = getattr(loader, "generator", None)
    if generator is not None:
        with contextlib.suppress(Exception):
            seeds["DataLoader.generator"] = generator.initial_seed()
    key = loader
    if dataset is not None:
        with contextlib.suppress(TypeError):
            weakref.ref(dataset)
            key = dataset
    return key, to_json({k: v for k, v in info.items() if v is not None}), seeds


def data_target(key: Any) -> Any:
    """What to fingerprint for a loader's key: in-memory data (``TensorDataset``, a dataset with
    ``data``/``targets`` arrays as torchvision's) by content; any other dataset by type and length."""
    dataset = getattr(key, "dataset", key) if isinstance(key, torch.utils.data.DataLoader) else key
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, (tuple, list)):
        return tuple(tensors)
    if hasattr(getattr(dataset, "data", None), "shape"):
        labels = getattr(dataset, "targets", None)
        return (dataset.data, labels) if hasattr(labels, "__len__") else dataset.data
    return dataset


def determinism() -> dict[str, Any]:
    """The settings that decide whether a torch run repeats bit for bit."""
    out: dict[str, Any] = {}
    reads = {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled,
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled,
        "cudnn_deterministic": lambda: torch.backends.cudnn.deterministic,
        "cudnn_benchmark": lambda: torch.backends.cudnn.benchmark,
        "float32_matmul_precision": torch.get_float32_matmul_precision,
        "cuda_matmul_allow_tf32": lambda: torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": lambda: torch.backends.cudnn.allow_tf32,
    }
    with warnings.catch_warnings():  # newer torch warns about the TF32 flags' old names
        warnings.simplefilter("ignore")
        for key, read in reads.items():
            with contextlib.suppress(Exception):
                out[key] = read()
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
        out["CUBLAS_WORKSPACE_CONFIG"] = os.environ["CUBLAS_WORKSPACE_CONFIG"]
    return flatten({"determinism": out})


def autocast_state() -> dict[str, Any]:
    """Whether the code running now is inside ``torch.autocast``, on which device, in which dtype."""
    if not hasattr(torch, "get_autocast_dtype"):  # torch < 2.4: no device argument
        return {"autocast": bool(torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled())}
    for device in ("cuda", "cpu", "xpu", "mps", "hpu"):
        with contextlib.suppress(Exception):  # a device type this build does not know
            if torch.is_autocast_enabled(device):
                return {"autocast": True, "autocast_device": device,
                        "autocast_dtype": str(torch.get_autocast_dtype(device)).rpartition(".")[2]}
    return {"autocast": False}


def checkpoint_contents(obj: Any) -> str | None:
    """What a ``torch.save`` wrote, if it is a checkpoint: ``module``, ``state_dict`` (a model's),
    ``optimizer_state``, ``checkpoint`` (a dict holding either); None for anything else (a tensor,
    a list of embeddings), which is not recorded."""
    if isinstance(obj, torch.nn.Module):
        return "module"
    if not isinstance(obj, dict) or not obj:
        return None
    if "state" in obj and "param_groups" in obj:
        return "optimizer_state"
    values = list(obj.values())[:10_000]
    if all(isinstance(v, torch.Tensor) for v in values):
        return "state_dict"
    if any(isinstance(v, torch.nn.Module) or isinstance(v, dict) and v and (
            all(isinstance(x, torch.Tensor) for x in list(v.values())[:100]) or "param_groups" in v) for v in values):
        return "checkpoint"
    return None


def driver(frame: Any) -> str | None:
    """The framework whose code is running this (a Lightning or transformers Trainer, Keras), or
    None for the user's own loop (Fabric and Accelerate loops are the user's)."""
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        for prefix, framework in _DRIVERS.items():
            if name == prefix or name.startswith(prefix + "."):
                return framework
        frame = frame.f_back
    return None


def rank_zero() -> bool:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    from autotrack.integrations._common import env_rank_zero

    return env_rank_zero()
