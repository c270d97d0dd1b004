"""What a transformers ``train()`` is made of, as flat params: ``TrainingArguments`` (secrets
redacted), the model's class, size and config, a PEFT adapter's config; seeds; log values.

Kept apart from the callback so the callback reads as a list of hooks. Everything here runs once
per ``train()`` (``on_train_begin``) except :func:`scalar_logs`, which runs per ``on_log``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from autotrack._values import flatten, qualname, to_number

__all__ = ["REDACTED", "is_secret", "args_params", "model_params", "train_params", "seeds",
           "scalar_logs", "loader_info", "checkpoint_score", "checkpoint_dir", "tokenizer_of"]

REDACTED = "<redacted>"
# Whole words of a name, so ``hub_token`` is a secret and ``include_tokens_per_second`` is not.
_SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "key", "apikey",
                           "credential", "credentials", "auth"})


def is_secret(name: str) -> bool:
    return not _SECRET_WORDS.isdisjoint(name.lower().replace("-", "_").split("_"))


def args_params(args: Any) -> dict[str, Any]:
    """Every ``TrainingArguments`` field under its own name; a secret that is set becomes REDACTED."""
    to_dict = getattr(args, "to_dict", None)
    plain = to_dict() if callable(to_dict) else {
        f.name: getattr(args, f.name) for f in dataclasses.fields(args) if f.init}
    for key in plain:  # to_dict() writes "<HUB_TOKEN>" even when none is set: say which it is
        if is_secret(key):
            plain[key] = REDACTED if getattr(args, key, None) not in (None, "") else None
    for key in ("train_batch_size", "eval_batch_size", "world_size"):
        try:
            plain[key] = getattr(args, key)
        except Exception:  # noqa: BLE001 - properties that need a device; not worth failing over
            pass
    flat = flatten(plain)
    return {key: REDACTED if value not in (None, "", REDACTED) and any(is_secret(p) for p in key.split("/"))
            else value for key, value in flat.items()}  # nested dicts (model_init_kwargs/token, ...)


def model_params(model: Any) -> dict[str, Any]:
    """Class, parameter counts, the config (without the label maps), a PEFT config when present."""
    tensors = list(model.parameters()) if hasattr(model, "parameters") else []
    out: dict[str, Any] = {
        "class": qualname(type(model)),
        "params_total": sum(p.numel() for p in tensors),
        "params_trainable": sum(p.numel() for p in tensors if p.requires_grad),
    }
    config = getattr(model, "config", None)
    if callable(getattr(config, "to_dict", None)):
        values = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}
        if getattr(config, "num_labels", None) is not None:
            values["num_labels"] = config.num_labels
        out["config"] = values
    params: dict[str, Any] = {"model": out}
    peft = getattr(model, "peft_config", None)
    if isinstance(peft, Mapping) and peft:
        plain = {str(name): cfg.to_dict() if callable(getattr(cfg, "to_dict", None)) else vars(cfg)
                 for name, cfg in peft.items()}
        params["peft"] = next(iter(plain.values())) if len(plain) == 1 else plain
    return flatten(params)


def train_params(args: Any, model: Any) -> dict[str, Any]:
    params = args_params(args)
    if model is not None:
        params.update(model_params(model))
    return params


def seeds(args: Any) -> dict[str, int]:
    return {f"TrainingArguments.{name}": getattr(args, name) for name in ("seed", "data_seed")
            if getattr(args, name, None) is not None}


def scalar_logs(logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of one ``on_log`` under transformers' names; ``epoch``/``step`` go to the point."""
    out: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if key in ("epoch", "step") or value is None or isinstance(value, (str, bytes)):
            continue
        try:
            out[key] = to_number(value)
        except Exception:  # noqa: BLE001 - lists, multi-element tensors: not a metric
            continue
    return out


def loader_info(loader: Any, batch_size: int | None) -> dict[str, Any]:
    """Sample and batch counts, read from the loader (never iterated)."""
    info: dict[str, Any] = {"batch_size": batch_size}
    for key, get in (("samples", lambda: len(loader.dataset)), ("batches", lambda: len(loader))):
        try:
            info[key] = int(get())
        except Exception:  # noqa: BLE001 - iterable datasets have no length
            pass
    return info


def checkpoint_score(args: Any, state: Any) -> dict[str, Any]:
    """``metric_for_best_model`` as evaluated at the checkpoint's step, when it was."""
    name = getattr(args, "metric_for_best_model", None)
    if not name:
        return {}
    key = name if name.startswith("eval_") else f"eval_{name}"
    for entry in reversed(getattr(state, "log_history", [])):
        if entry.get("step") == state.global_step and key in entry:
            return {"monitor": key, "score": entry[key]}
    return {"monitor": key}


def checkpoint_dir(args: Any, state: Any) -> str:
    return os.path.join(args.output_dir, f"checkpoint-{state.global_step}")


def tokenizer_of(processing_class: Any, loader: Any) -> Any:
    """The Trainer's ``processing_class``, else the tokenizer of its data collator (the usual
    ``DataCollatorWithPadding(tokenizer)``), which the Trainer saves into checkpoints then."""
    if callable(getattr(processing_class, "save_pretrained", None)):
        return processing_class
    collator = getattr(loader, "collate_fn", None)
    collator = getattr(collator, "data_collator", collator)  # RemoveColumnsCollator wraps the user's
    tokenizer = getattr(collator, "tokenizer", None)
    return tokenizer if callable(getattr(tokenizer, "save_pretrained", None)) else None
