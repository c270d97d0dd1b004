"""``autotrack.autolog()``: post-import hooks that switch framework adapters on.

Adapters register here by framework name with the modules that trigger them and the dotted
path of their integration module. When a trigger module is imported (before or after
``autolog()`` -- wrapt's post-import hooks handle both), the integration module is imported and
its ``enable(config)`` called; ``autolog(disable=True)`` calls ``disable()`` on those enabled.
The core never imports a framework itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import Any, Iterable

import wrapt

from autotrack._capture.seeds import install_seed_hooks
from autotrack._safety import guard

__all__ = ["AutologConfig", "autolog", "register_integration", "integrations", "current_config"]


@dataclasses.dataclass(frozen=True)
class AutologConfig:
    uri: str | None = None
    experiment: str | None = None
    log_checkpoints: bool | str = True
    log_models: bool = True
    log_every_n_steps: int | None = None


# framework name -> (trigger modules, integration module path)
_INTEGRATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "lightning": (("lightning.pytorch", "pytorch_lightning"), "autotrack.integrations.lightning"),
    # transformers.trainer, not transformers: a tokenizer-only user must not pay for the Trainer
    "transformers": (("transformers.trainer",), "autotrack.integrations.transformers"),
    "sklearn": (("sklearn",), "autotrack.integrations.sklearn"),
    "xgboost": (("xgboost",), "autotrack.integrations.xgboost"),
    "keras": (("keras",), "autotrack.integrations.keras"),
}
_hooked: set[str] = set()
_enabled: set[str] = set()
_wanted: set[str] = set()
_config: AutologConfig | None = None
_lock = threading.RLock()


def register_integration(name: str, triggers: Iterable[str], module: str) -> None:
    """Make ``autolog()`` enable ``module`` when any of ``triggers`` is imported."""
    _INTEGRATIONS[name] = (tuple(triggers), module)


def integrations() -> dict[str, tuple[tuple[str, ...], str]]:
    return dict(_INTEGRATIONS)


def current_config() -> AutologConfig | None:
    """The active autolog settings, or None when autolog is off (adapters read this)."""
    return _config


def _enable(name: str) -> None:
    with _lock:
        if name in _enabled or name not in _wanted or _config is None:
            return
        with guard(f"enabling the {name} integration"):
            module = importlib.import_module(_INTEGRATIONS[name][1])
            module.enable(_config)
            _enabled.add(name)


def _make_hook(name: str) -> Any:
    def hook(_module: Any) -> None:
        _enable(name)

    return hook


def autolog(
    uri: str | None = None,
    experiment: str | None = None,
    log_checkpoints: bool | str = True,
    log_models: bool = True,
    log_every_n_steps: int | None = None,
    frameworks: Iterable[str] | None = None,
    disable: bool = False,
) -> None:
    """Record every supported framework's training from now on (idempotent; see docs/api.md)."""
    global _config
    with _lock:
        if disable:
            for name in sorted(_enabled if frameworks is None else set(frameworks) & _enabled):
                with guard(f"disabling the {name} integration"):
                    importlib.import_module(_INTEGRATIONS[name][1]).disable()
                _enabled.discard(name)
                _wanted.discard(name)
            if frameworks is None:
                _wanted.clear()
                _config = None
            return
        chosen = set(_INTEGRATIONS) if frameworks is None else set(frameworks)
        unknown = chosen - set(_INTEGRATIONS)
        if unknown:
            raise ValueError(f"unknown framework(s) {sorted(unknown)}; known: {sorted(_INTEGRATIONS)}")
        new_config = AutologConfig(uri, experiment, log_checkpoints, log_models, log_every_n_steps)
        reenable = set()
        if _config is not None and new_config != _config:
            for name in list(_enabled):  # settings changed: re-enable every one with the new ones
                with guard(f"disabling the {name} integration"):
                    importlib.import_module(_INTEGRATIONS[name][1]).disable()
                _enabled.discard(name)
                reenable.add(name)
        _config = new_config
        _wanted.update(chosen)
        chosen |= reenable
        install_seed_hooks()
        for name in sorted(chosen):
            for trigger in _INTEGRATIONS[name][0]:
                if (name, trigger) in _hooked:  # type: ignore[comparison-overlap]
                    continue
                _hooked.add((name, trigger))  # type: ignore[arg-type]
                wrapt.register_post_import_hook(_make_hook(name), trigger)
            for trigger in _INTEGRATIONS[name][0]:
                import sys

                if trigger in sys.modules:
                    _enable(name)
