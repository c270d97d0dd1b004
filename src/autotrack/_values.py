"""Turning whatever users and frameworks hand us into numbers and plain JSON, in one place.

Frameworks pass metric values as floats, numpy scalars, 0-d tensors (CPU or GPU) and the odd
Decimal; hyperparameters come as enums, paths, dataclasses, classes, callables, arrays. Adapters
never convert: the ``Run`` does, through this module, so every backend stores the same thing.
Duck typing only: this module must not import numpy, torch or anything heavy.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import enum
import math
import os
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = ["to_number", "to_step", "to_epoch", "check_metrics", "numbers", "to_json", "flatten", "encode_float", "decode_float",
           "qualname", "json_safe", "text"]

_MAX_INLINE_ELEMENTS = 1000
_MAX_REPR = 2000


def qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def to_number(value: Any) -> int | float:
    """A metric value as a Python int/float; raises TypeError for things that are not numbers."""
    if type(value) is float or type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value.__float__() if isinstance(value, float) else value.__index__()
    if isinstance(value, (Decimal, Fraction)):
        return float(value)
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, (str, bytes)):
        # numpy scalars, 0-d / 1-element arrays and tensors (``.item()`` syncs a GPU tensor once).
        detach = getattr(value, "detach", None)
        if detach is not None:
            value = detach()
        result = value.item()
        if isinstance(result, bool):
            return int(result)
        if type(result) is int or type(result) is float:
            return result
        if isinstance(result, (int, float)):
            return to_number(result)
        return float(result)
    numpy_method = getattr(value, "numpy", None)  # TensorFlow eager tensors
    if numpy_method is not None:
        return to_number(numpy_method())
    if hasattr(value, "__float__") and not isinstance(value, (str, bytes)):
        return float(value)
    if hasattr(value, "__index__"):
        return int(value.__index__())
    raise TypeError(f"metric value must be a number, got {type(value).__name__}: {value!r:.80}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} ({value!r:.60})"


def to_step(value: Any) -> int:
    """A step as a Python int: any integer (numpy, a 0-d tensor, ``__index__``) or a float that
    is one (``6.0``); anything else is a TypeError naming what it got."""
    if type(value) is int:
        return value
    if not isinstance(value, bool):
        try:
            number = to_number(value)
        except Exception:  # noqa: BLE001 - whatever the object raised, it is not a step
            number = None
        if type(number) is int:
            return number
        if type(number) is float and number.is_integer():
            return int(number)
    raise TypeError(f"step must be an integer, not {_describe(value)}")


def to_epoch(value: Any) -> int | float:
    """An epoch as an int, or a finite float (transformers counts fractional epochs)."""
    if type(value) is int:
        return value
    if not isinstance(value, bool):
        try:
            number = to_number(value)
        except Exception:  # noqa: BLE001
            number = None
        if type(number) is int:
            return number
        if type(number) is float and math.isfinite(number):
            return number
    raise TypeError(f"epoch must be an integer or a finite float, not {_describe(value)}")


def check_metrics(values: dict[Any, Any]) -> tuple[dict[str, Any], list[TypeError], bool]:
    """A metric call's values as ``{str: number}``, one error for each entry refused, and whether
    some values are still tensors (to be made numbers by the writer thread: ``to_number``).

    The writer can encode whatever this returns, so a bad entry costs that entry only: it is
    refused here, on the caller's thread, and never reaches a segment. A one-element torch tensor
    on an accelerator is only detached here: ``.item()`` would wait for the GPU at every logged
    step; on the CPU it is read at once (the writer thread converting it later held the GIL the
    training thread needed: 16 µs a call with two tensors, against 2 µs for floats).
    """
    out: dict[str, Any] = {}
    refused: list[TypeError] = []
    deferred = False
    for key, value in values.items():
        if type(key) is not str:
            if not isinstance(key, str):
                refused.append(TypeError(f"metric key must be a string, not {_describe(key)}"))
                continue
            key = str(key)  # numpy.str_ and other str subclasses
        try:
            if _is_torch_tensor(value):
                if value.numel() != 1 or value.is_complex():
                    raise TypeError
                if value.device.type == "cpu":  # no device to wait for: a number now (~1 µs) costs
                    out[key] = to_number(value.item())  # less than the writer thread's GIL time later
                else:
                    out[key], deferred = value.detach(), True
            else:
                out[key] = to_number(value)
        except Exception:  # noqa: BLE001 - any failure to convert means: not a number
            refused.append(TypeError(f"metric {key!r} must be a number, not {_describe(value)}"))
    return out, refused, deferred


def _is_torch_tensor(value: Any) -> bool:
    cls = type(value)
    return cls.__module__.startswith("torch") and hasattr(cls, "detach") and hasattr(cls, "numel")


def numbers(values: dict[str, Any]) -> tuple[dict[str, int | float], list[TypeError]]:
    """The writer's half of ``check_metrics``: deferred tensors made numbers (off the training thread)."""
    out: dict[str, int | float] = {}
    refused: list[TypeError] = []
    for key, value in values.items():
        try:
            out[key] = value if type(value) is float or type(value) is int else to_number(value)
        except Exception as exc:  # noqa: BLE001
            refused.append(TypeError(f"metric {key!r} could not be read ({type(exc).__name__}: {exc})"))
    return out, refused


def text(value: Any, what: str) -> str:
    """A name as a plain ``str`` (``numpy.str_`` included); anything else is a TypeError."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"{what} must be a string, not {_describe(value)}")


def encode_float(value: float) -> float | str:
    """Strict JSON has no NaN/Infinity: store them as the strings JavaScript would print."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def decode_float(value: Any) -> Any:
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
    return value


def _array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and (hasattr(value, "tolist") or hasattr(value, "numpy"))


def to_json(value: Any, _depth: int = 0) -> Any:
    """A readable, JSON-safe rendering of ``value``; floats stay floats (NaN handled at write)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if _depth > 20:
        return repr(value)[:_MAX_REPR]
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (Decimal, Fraction)):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value) if isinstance(os.fspath(value), str) else repr(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, type):
        return qualname(value)
    if dataclasses.is_dataclass(value):
        return {f.name: to_json(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, argparse.Namespace):
        return {str(k): to_json(v, _depth + 1) for k, v in vars(value).items()}
    if isinstance(value, Mapping):
        return {str(k): to_json(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_json(v, _depth + 1) for v in value]
        return sorted(items, key=repr)
    if _array_like(value):
        return _array_to_json(value, _depth)
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        try:
            return to_json(value.item(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    if callable(value):
        return qualname(value) if hasattr(value, "__qualname__") else f"<{qualname(type(value))} instance>"
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def _array_to_json(value: Any, depth: int) -> Any:
    shape = [int(s) for s in tuple(value.shape)]
    size = 1
    for s in shape:
        size *= s
    if size <= _MAX_INLINE_ELEMENTS:
        try:
            data = value
            if hasattr(data, "detach"):
                data = data.detach().cpu()
            if not hasattr(data, "tolist") and hasattr(data, "numpy"):
                data = data.numpy()
            return to_json(data.tolist(), depth + 1)
        except Exception:  # noqa: BLE001 - fall back to the summary below
            pass
    return {"type": qualname(type(value)), "shape": shape, "dtype": str(value.dtype)}


def _flattenable(value: Any) -> bool:
    return isinstance(value, (Mapping, argparse.Namespace)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def flatten(params: Mapping[str, Any] | Any, prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """Nested mappings/dataclasses/namespaces become ``a/b/c`` keys; lists stay list values."""
    if isinstance(params, argparse.Namespace):
        params = vars(params)
    elif dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if _flattenable(value) and (not isinstance(value, Mapping) or len(value) > 0):
            out.update(flatten(value, name, sep))
        else:
            out[name] = to_json(value)
    return out


def json_safe(value: Any) -> Any:
    """Strict JSON for readers (``--json``, the dashboard): NaN and infinities become the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (the store's own encoding, and lossless, unlike
    null); tuples become lists, datetimes ISO text."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value
