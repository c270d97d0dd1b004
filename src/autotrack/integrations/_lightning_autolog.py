"""``autolog()`` for Lightning: ``Trainer.fit/validate/test`` of each namespace get the callback.

Kept apart from ``lightning.py`` (which owns the callback). The wrapper adds an
``AutotrackCallback`` for the length of the call, unless the user gave one, and never changes
the list the user passed to the Trainer.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from autotrack._safety import guard
from autotrack.integrations._common import Patcher

__all__ = ["enable", "disable"]

_NAMESPACES = ("lightning.pytorch", "pytorch_lightning")
_patcher = Patcher()
_state: dict[str, Any] = {"enabled": False, "hooked": False, "make": None, "ours": None}


def _inject(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Give the trainer our callback for this call unless the user already did."""
    trainer = instance
    cb = None
    with guard("lightning: adding the autolog callback"):
        if not any(isinstance(c, _state["ours"]) for c in trainer.callbacks):
            cb = trainer.__dict__.get("_autotrack_callback") or _state["make"]()
            trainer.__dict__["_autotrack_callback"] = cb
            trainer.callbacks = [*trainer.callbacks, cb]  # a new list: the user's stays untouched
    try:
        return wrapped(*args, **kwargs)
    finally:
        if cb is not None:
            trainer.callbacks = [c for c in trainer.callbacks if c is not cb]


def _patch(module: Any) -> None:
    if _state["enabled"]:
        for method in ("fit", "validate", "test"):
            _patcher.wrap(module.Trainer, method, _inject)


def enable(make: Callable[[], Any], ours: type) -> None:
    """Patch each namespace now, or when it is imported; ``make()`` builds the callback and
    ``ours`` is the class that marks a callback the user already gave."""
    import wrapt

    _state.update(enabled=True, make=make, ours=ours)
    if not _state["hooked"]:
        _state["hooked"] = True
        for name in _NAMESPACES:
            wrapt.register_post_import_hook(lambda _m, _n=name: _patch(sys.modules[_n]), name)
    for name in _NAMESPACES:
        if name in sys.modules:  # both may be loaded; the hooks above fire only once per import
            _patch(sys.modules[name])


def disable() -> None:
    _state["enabled"] = False
    _patcher.undo()
