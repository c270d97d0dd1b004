"""What a Keras fit is made of, as flat params, data facts and a few numbers read per epoch.

Kept apart from the callback so that it reads as a list of hooks. Everything here runs a few
times per fit (fit start, epoch ends, fit end), never per batch, and reads only what is in
memory. Names are Keras's own where it has them (``learning_rate``, ``epochs``, ``val_loss``).
A model may hold several optimizers (a GAN's custom ``compile(d_optimizer, g_optimizer, ...)``):
every attribute that is a Keras optimizer is recorded under its attribute name.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import keras

from autotrack.integrations._common import env_rank_zero

__all__ = ["rank_zero", "flat_callbacks", "fit_params", "callback_params", "early_stopping_end", "compile_params",
           "optimizers", "optimizer_params", "size_params", "data_extra", "iterations", "learning_rate", "scalars"]

_FIT_ARGS = ("batch_size", "validation_split", "steps_per_epoch", "initial_epoch", "shuffle",
             "validation_steps", "validation_batch_size", "validation_freq")


def rank_zero() -> bool:
    """Whether this process records: the launcher's rank 0, TensorFlow's chief (or worker 0 when
    ``TF_CONFIG`` names no chief), JAX's process 0."""
    if not env_rank_zero():
        return False
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        config = {}
    task = config.get("task") or {}
    if task:
        first = ("chief", 0) if "chief" in (config.get("cluster") or {}) else ("worker", 0)
        if (task.get("type"), int(task.get("index", 0))) != first:
            return False
    jax = sys.modules.get("jax") if keras.backend.backend() == "jax" else None
    return jax is None or jax.process_index() == 0


def flat_callbacks(callbacks: Any) -> list[Any]:
    """The callbacks of a fit as one list (Keras accepts nested lists and a ``CallbackList``)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    if isinstance(callbacks, (list, tuple)):
        return [c for item in callbacks for c in flat_callbacks(item)]
    return [callbacks]


def fit_params(arguments: dict[str, Any]) -> dict[str, Any]:
    """``fit``'s own arguments (``epochs`` comes from the callback); weights and validation data
    say only whether they were given."""
    params = {name: arguments.get(name) for name in _FIT_ARGS if name in arguments}
    for name in ("class_weight", "sample_weight", "validation_data"):
        if name in arguments:
            params[name] = arguments[name] is not None
    return params


def callback_params(callbacks: list[Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"callbacks": [type(c).__name__ for c in callbacks]}
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            params["early_stopping"] = {"monitor": cb.monitor, "patience": cb.patience, "min_delta": abs(cb.min_delta),
                                        "mode": cb.mode, "restore_best_weights": cb.restore_best_weights}
            break
    return params


def early_stopping_end(callbacks: list[Any]) -> dict[str, Any]:
    """EarlyStopping's stopped epoch (None: ran to the end) and best value, at the end of the fit."""
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping):
            best = cb.best
            return {"early_stopping": {"stopped_epoch": int(cb.stopped_epoch) if cb.stopped_epoch else None,
                                       "best_epoch": int(getattr(cb, "best_epoch", 0) or 0),
                                       "best_value": float(best) if best is not None else None}}
    return {}


def _name(obj: Any) -> Any:
    """A loss or metric as written in ``compile`` (serialized by Keras): its name."""
    if isinstance(obj, dict) and "class_name" in obj:
        config = obj.get("config")  # a function is {"class_name": "function", "config": "its_name"}
        if isinstance(config, dict):
            return config.get("name", obj["class_name"])
        return config if isinstance(config, str) else obj["class_name"]
    if isinstance(obj, dict):
        return {str(k): _name(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_name(v) for v in obj]
    return obj if obj is None or isinstance(obj, (str, int, float, bool)) else repr(obj)


def _plain(obj: Any) -> Any:
    """A serialized Keras object (module, class_name, config) as its class name and config."""
    if isinstance(obj, dict) and "class_name" in obj and isinstance(obj.get("config"), dict):
        config = {k: _plain(v) for k, v in obj["config"].items() if k != "name"}
        return {"name": obj["class_name"], **config}
    return obj


def optimizers(model: Any) -> dict[str, Any]:
    """The model's optimizers by attribute name: ``optimizer`` (set by ``compile``) and any other
    (a custom ``compile`` keeping ``d_optimizer``/``g_optimizer``)."""
    return {name: value for name, value in vars(model).items()
            if not name.startswith("_") and isinstance(value, keras.optimizers.Optimizer)}


def optimizer_params(name: str, optimizer: Any) -> dict[str, Any]:
    """Class and whole config (a schedule's included) under ``name/``; mixed precision: the inner one."""
    inner = getattr(optimizer, "inner_optimizer", None)  # LossScaleOptimizer wraps the real one
    config = dict((inner or optimizer).get_config())
    config.pop("name", None)
    params = {"name": type(inner or optimizer).__name__, **{k: _plain(v) for k, v in config.items()}}
    if inner is not None:
        params["loss_scale"] = type(optimizer).__name__
    return {name: params}


def compile_params(model: Any) -> dict[str, Any]:
    """Backend, model class, loss, metrics, compile flags (optimizers: ``optimizer_params``)."""
    params: dict[str, Any] = {"backend": keras.backend.backend(),
                              "model": {"class": type(model).__name__, "name": model.name}}
    try:
        compiled = model.get_compile_config() if getattr(model, "compiled", False) else None
    except Exception:  # noqa: BLE001 - e.g. a lambda loss Keras cannot serialize: its name will do
        loss = getattr(model, "loss", None)
        compiled = {"loss": loss if isinstance(loss, str) else getattr(loss, "__name__", None) or type(loss).__name__}
    if compiled:
        loss = compiled.get("loss")
        params["loss"] = _name(loss)
        if isinstance(loss, dict) and isinstance(loss.get("config"), dict):
            params["loss_config"] = {k: v for k, v in loss["config"].items() if k != "name"}
        for key in ("metrics", "weighted_metrics", "loss_weights"):
            if compiled.get(key) is not None:
                params[key] = _name(compiled[key])
        for key in ("steps_per_execution", "jit_compile", "run_eagerly"):
            if key in compiled:
                params[key] = compiled[key]
    return params


def size_params(model: Any) -> dict[str, Any] | None:
    """Parameter counts from weight shapes (no values read); None while the model has no weights
    yet (built lazily, at the first batch). A subclass that is never built itself (a GAN) counts
    the weights of the models it holds."""
    if not model.built and not model.weights:
        return None

    def count(weights: Any) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in weights)

    return {"model": {"params_total": count(model.weights), "params_trainable": count(model.trainable_weights),
                      "layers": len(model.layers)}}


def data_extra(data: Any) -> dict[str, Any]:
    """What a ``tf.data.Dataset`` says of itself without being iterated: cardinality, element spec."""
    extra: dict[str, Any] = {}
    cardinality = getattr(data, "cardinality", None)
    if callable(cardinality) and hasattr(data, "element_spec"):
        n = int(cardinality())
        extra["cardinality"] = {-1: "infinite", -2: "unknown"}.get(n, n)
        extra["element_spec"] = repr(data.element_spec)
    return extra


def _number(value: Any) -> int | float:
    return keras.ops.convert_to_numpy(value).item()


def iterations(optimizer: Any) -> int | None:
    """Steps an optimizer has taken (one device read)."""
    return int(_number(optimizer.iterations)) if hasattr(optimizer, "iterations") else None


def learning_rate(optimizer: Any) -> float | None:
    """An optimizer's current learning rate; a schedule is evaluated at the current step."""
    if optimizer is None or hasattr(optimizer, "optimizers") or not hasattr(optimizer, "learning_rate"):
        return None
    return float(_number(optimizer.learning_rate))


def scalars(logs: Any, prefix: str = "") -> dict[str, Any]:
    """The numbers of a ``logs`` dict (Keras has already made them Python floats)."""
    out = {}
    for key, value in (logs or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + str(key)] = value
        elif getattr(value, "shape", None) in ((), (1,)):  # a tensor evaluate() handed back
            out[prefix + str(key)] = value
    return out
