"""``autotrack.autolog()``: post-import hooks that switch framework adapters on.

Adapters register here by framework name with the modules that trigger them and the dotted
path of their integration module. When a trigger module is imported (before or after
``autolog()`` -- ``autotrack._hooks`` handles both), the integration module is imported and
its ``enable(config)`` called; ``autolog(disable=True)`` calls ``disable()`` on those enabled.
The core never imports a framework itself.

Cheap on purpose (``import autotrack; autotrack.autolog()`` is timed by bench/): no wrapt, no
dataclasses, no logging until a framework is actually imported. ``AutologConfig`` (a frozen
dataclass, for adapters) is built on first use.
"""

from __future__ import annotations

import sys

from autotrack import _forksafe
from autotrack._capture.seeds import install_seed_hooks
from autotrack._hooks import when_imported

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable

__all__ = ["AutologConfig", "autolog", "register_integration", "integrations", "current_config", "is_on",
           "wanted_frameworks", "check_register_as", "system_metrics_setting"]

_FIELDS = ("uri", "experiment", "log_checkpoints", "log_models", "log_every_n_steps", "register_as")
_config_class: Any = None


def _config_type() -> Any:
    """The ``AutologConfig`` dataclass, defined on first use (``dataclasses`` costs ~5-10 ms)."""
    global _config_class
    if _config_class is None:
        import dataclasses

        @dataclasses.dataclass(frozen=True)
        class AutologConfig:
            uri: str | None = None
            experiment: str | None = None
            log_checkpoints: bool | str = True
            log_models: bool = True
            log_every_n_steps: int | None = None
            register_as: str | None = None  # a model name: each successful fit's model becomes a version

        AutologConfig.__module__, AutologConfig.__qualname__ = __name__, "AutologConfig"
        _config_class = AutologConfig
    return _config_class


def __getattr__(name: str) -> Any:
    if name == "AutologConfig":
        return _config_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_register_as(name: Any) -> None:
    """``register_as=`` is refused at the call, not when the first fit ends: None or a valid
    model name (the registry's rule; imported only when one is given)."""
    if name is None:
        return
    from autotrack._registry_state import check_name

    try:
        check_name(name)
    except ValueError as exc:
        raise ValueError(f"register_as: {exc}") from None


class _guard:
    """``_safety.guard`` that imports ``_safety`` (and with it ``logging``) only when something
    failed: ``autolog()`` enters a guard on every call, and its imports are kept to a handful."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if not isinstance(exc, Exception):  # no error, or KeyboardInterrupt/SystemExit: not ours to stop
            return False
        from autotrack._safety import report

        report(self.kind, exc)
        return True


def _import(module: str) -> Any:
    __import__(module)
    return sys.modules[module]


# framework name -> (trigger modules, integration module path)
_INTEGRATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "lightning": (("lightning.pytorch", "pytorch_lightning"), "autotrack.integrations.lightning"),
    # transformers.trainer, not transformers: a tokenizer-only user must not pay for the Trainer
    "transformers": (("transformers.trainer",), "autotrack.integrations.transformers"),
    "sklearn": (("sklearn",), "autotrack.integrations.sklearn"),
    "xgboost": (("xgboost",), "autotrack.integrations.xgboost"),
    "lightgbm": (("lightgbm",), "autotrack.integrations.lightgbm"),
    "catboost": (("catboost",), "autotrack.integrations.catboost"),
    "keras": (("keras",), "autotrack.integrations.keras"),
    # plain loops: torch itself (Lightning's and transformers' own steps are left to their adapters)
    "torch": (("torch",), "autotrack.integrations.torch"),
    "optuna": (("optuna",), "autotrack.integrations.optuna"),
    # ray.tune, not ray: a Ray user who runs no search must not import Tune
    "ray": (("ray.tune",), "autotrack.integrations.ray"),
}
_hooked: set[str] = set()
_enabled: set[str] = set()
_wanted: set[str] = set()
_settings: tuple[Any, ...] | None = None  # the values of _FIELDS while autolog is on
_config: Any = None  # AutologConfig of _settings, built when first asked for
_system_metrics: bool | None = None  # autolog(system_metrics=...): runs started while it is on follow it
_lock = _forksafe.lock()


def register_integration(name: str, triggers: Iterable[str], module: str) -> None:
    """Make ``autolog()`` enable ``module`` when any of ``triggers`` is imported."""
    _INTEGRATIONS[name] = (tuple(triggers), module)


def integrations() -> dict[str, tuple[tuple[str, ...], str]]:
    return dict(_INTEGRATIONS)


def current_config() -> Any:
    """The active ``AutologConfig``, or None when autolog is off (adapters read this)."""
    global _config
    with _lock:
        if _settings is None:
            return None
        if _config is None:
            _config = _config_type()(*_settings)
        return _config


def wanted_frameworks() -> list[str]:
    """The frameworks ``autolog()`` is on for, imported yet or not (an adapter passing the same
    settings to another process: Ray Tune's trial workers)."""
    with _lock:
        return sorted(_wanted)


def system_metrics_setting() -> bool | None:
    """``autolog(system_metrics=...)`` while autolog is on (None: not said; see ``_sampler``)."""
    return _system_metrics if _settings is not None else None


def is_on(name: str) -> bool:
    """Whether ``autolog()`` is on for the framework ``name``: the one answer every adapter asks."""
    return name in _enabled


def _enable(name: str) -> None:
    with _lock:
        if name in _enabled or name not in _wanted or _settings is None:
            return
        with _guard(f"enabling the {name} integration"):
            module = _import(_INTEGRATIONS[name][1])
            module.enable(current_config())
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
    register_as: str | None = None,
    system_metrics: bool | None = None,
) -> None:
    """Record every supported framework's training from now on (idempotent; see docs/api.md)."""
    global _config, _settings, _system_metrics
    with _lock:
        if disable:
            names = set(_INTEGRATIONS) if frameworks is None else set(frameworks)
            for name in sorted(names & _enabled):
                with _guard(f"disabling the {name} integration"):
                    _import(_INTEGRATIONS[name][1]).disable()  # puts every original back
                _enabled.discard(name)
            _wanted.difference_update(names)  # not imported yet: it stays off when it is
            if not _wanted:
                _settings = _config = _system_metrics = None
                from autotrack._sampler_nodes import stop_node_sampler

                stop_node_sampler()
                from autotrack._capture.seeds import uninstall_seed_hooks

                uninstall_seed_hooks()
            return
        if log_checkpoints not in (True, False, "all"):  # refused here, not at the first fit
            raise ValueError(f"log_checkpoints must be True, False or 'all', not {log_checkpoints!r}")
        n = log_every_n_steps
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"log_every_n_steps must be a positive int or None, not {n!r}")
        check_register_as(register_as)
        if system_metrics is not None and not isinstance(system_metrics, bool):
            raise ValueError(f"system_metrics must be True, False or None, not {system_metrics!r}")
        if register_as and not log_models and not log_checkpoints:
            raise ValueError(f"register_as={register_as!r} needs log_models or log_checkpoints: with both off no "
                             "fit has a model to register")
        chosen = set(_INTEGRATIONS) if frameworks is None else set(frameworks)
        unknown = chosen - set(_INTEGRATIONS)
        if unknown:
            raise ValueError(f"unknown framework(s) {sorted(unknown)}; known: {sorted(_INTEGRATIONS)}")
        from autotrack._config import check_destination

        check_destination(uri, experiment)  # a bad URI or config file: a ConfigError now, not at the first fit
        new_settings = (uri, experiment, log_checkpoints, log_models, log_every_n_steps, register_as)
        reenable = set()
        if _settings is not None and new_settings != _settings:
            for name in list(_enabled):  # settings changed: re-enable every one with the new ones
                with _guard(f"disabling the {name} integration"):
                    _import(_INTEGRATIONS[name][1]).disable()
                _enabled.discard(name)
                reenable.add(name)
        if new_settings != _settings:
            _settings, _config = new_settings, None
        _wanted.update(chosen)
        chosen |= reenable
        install_seed_hooks()
        from autotrack._rng import on_autolog

        with _guard("reading the random state"):
            on_autolog()  # the random state a replay restores here (autotrack reproduce)
        _system_metrics = system_metrics
        try:  # another node of a multi-node job: its hardware into rank 0's run (_sampler_nodes)
            from autotrack._sampler_nodes import start_node_sampler

            start_node_sampler(uri, system_metrics)
        except Exception as exc:  # noqa: BLE001 - never stops a training
            from autotrack._safety import report

            report("starting this node's system metrics", exc)
        for name in sorted(chosen):
            for trigger in _INTEGRATIONS[name][0]:
                if (name, trigger) in _hooked:  # type: ignore[comparison-overlap]
                    continue
                _hooked.add((name, trigger))  # type: ignore[arg-type]
                when_imported(trigger, _make_hook(name))  # at once if already imported
            for trigger in _INTEGRATIONS[name][0]:
                if trigger in sys.modules:
                    _enable(name)
