"""scikit-learn: every outermost ``fit`` / ``fit_transform`` / ``fit_predict`` is one run.

scikit-learn has no callback API, so ``autotrack.autolog()`` (or this module's ``autolog()``)
patches those methods where they are defined:

* on every ``BaseEstimator`` subclass that exists when autolog is switched on (found through
  ``__subclasses__()``, which costs well under a millisecond and imports nothing), and on the
  mixins in their MRO (``TransformerMixin.fit_transform``, ...);
* on every subclass defined later (scikit-learn modules imported later, your own estimators),
  through a ``BaseEstimator.__init_subclass__`` hook that runs once per class definition.

Only the outermost of nested calls records (a Pipeline, a meta-estimator or a search is one
run). XGBoost's scikit-learn estimators are left to the xgboost adapter, which shares the
"outermost" key with this one: an XGBoost model alone is one ``xgboost`` run, inside a Pipeline
or a search it is an inner fit. ``autolog(disable=True)`` puts every original back; a wrapper
that another decorator has wrapped since (scikit-learn's ``set_output`` machinery does this to
``fit_transform`` of classes defined while autolog is on) stays in place but does nothing.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Callable

import sklearn  # noqa: F401 - the framework, imported at the top as every integration does
import wrapt
from sklearn.base import BaseEstimator

from autotrack._autolog import AutologConfig
from autotrack._safety import guard
from autotrack.integrations import _sklearn_record as rec
from autotrack.integrations._common import FitSession, Patcher, env_rank_zero, outermost, resolve_options
from autotrack.integrations._sklearn_search import is_search, log_search

__all__ = ["autolog", "enable", "disable", "FIT_METHODS", "OUTERMOST_KEY"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
OUTERMOST_KEY = "sklearn"  # the xgboost adapter uses it too

_config: AutologConfig | None = None
_max_tuning_runs: int | None = 5
_lock = threading.RLock()
_hook: tuple[Any, Any] | None = None  # (our __init_subclass__, what BaseEstimator had of its own)


# -- the wrapper -----------------------------------------------------------------------------
def _fit_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    with outermost(OUTERMOST_KEY) as first:
        config = _config
        if not first or config is None or instance is None or isinstance(instance, type):
            return wrapped(*args, **kwargs)
        session: FitSession | None = None
        X = y = None
        with guard("sklearn: starting the run"):
            options = resolve_options(uri=config.uri, experiment=config.experiment, log_models=config.log_models)
            session = FitSession("sklearn", options, record=env_rank_zero())
            X, y = _data_args(wrapped, args, kwargs)
            _start(session, instance, X, y)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if session is not None:
                with guard("sklearn: ending the run"):
                    session.end(exc)
            raise
        if session is not None:
            if session.active:
                _record(session, instance, X, y)
            with guard("sklearn: ending the run"):
                session.end()
        return result


def _data_args(wrapped: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """X and y as passed to fit, whatever the method calls them (X, raw_documents, Y...)."""
    try:
        names = [p.name for p in inspect.signature(wrapped).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    names += ["X", "y"][len(names):]
    X = args[0] if args else kwargs.get(names[0])
    y = args[1] if len(args) > 1 else kwargs.get(names[1])
    return X, y


def _start(session: FitSession, est: Any, X: Any, y: Any) -> None:
    run = session.begin(name=type(est).__name__)
    if session.active:
        params = rec.estimator_params(est)
        run.log_params(params)
        found = rec.seeds(params)
        if found:
            run.log_seeds(found)
        rec.log_data(run, X, y)


def _record(session: FitSession, est: Any, X: Any, y: Any) -> None:
    run = session.run
    search = is_search(est)
    if search:
        with guard("sklearn: recording the search"):
            log_search(run, est, _max_tuning_runs)
    with guard("sklearn: computing training metrics"):
        metrics = rec.training_metrics(est, X, y)
        if metrics:
            run.log_metrics(metrics)
    if session.options.log_models:
        with guard("sklearn: logging the model"):
            model = getattr(est, "best_estimator_", None) if search else est
            if model is not None:
                rec.log_model(run, model, estimator="best_estimator_" if search else "self")


# -- patching --------------------------------------------------------------------------------
class _Patches(Patcher):
    """A Patcher whose undo leaves alone a wrapper that something else has wrapped since: putting
    the original back there would drop that other wrapper. Ours then stays, doing nothing."""

    def __init__(self) -> None:
        super().__init__()
        self._ours: dict[tuple[Any, str], Any] = {}

    def wrap(self, owner: Any, attr: str, wrapper: Callable[..., Any]) -> None:
        super().wrap(owner, attr, wrapper)
        self._ours[(owner, attr)] = owner.__dict__.get(attr)

    def undo(self) -> None:
        self._applied = [(o, a, orig) for o, a, orig in self._applied if o.__dict__.get(a) is self._ours.get((o, a))]
        self._ours.clear()
        super().undo()


_patches = _Patches()


def _is_ours(fn: Any) -> bool:
    for _ in range(8):
        if isinstance(fn, wrapt.FunctionWrapper) and getattr(fn, "_self_wrapper", None) is _fit_wrapper:
            return True
        fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            return False
    return False


def _foreign(cls: type) -> bool:
    """XGBoost's estimators (and subclasses of them) belong to the xgboost adapter."""
    return any((getattr(k, "__module__", "") or "").split(".")[0] == "xgboost" for k in cls.__mro__)


def _patch_class(cls: type) -> None:
    if _foreign(cls):
        return
    for klass in cls.__mro__[:-1]:
        for name in FIT_METHODS:
            fn = klass.__dict__.get(name)
            if fn is None or _is_ours(fn) or not (callable(fn) or hasattr(fn, "__get__")):
                continue
            with guard(f"sklearn: patching {klass.__qualname__}.{name}"):
                _patches.wrap(klass, name, _fit_wrapper)


def _subclasses(root: type) -> list[type]:
    found, stack, seen = [], [root], {root}
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                found.append(sub)
                stack.append(sub)
    return found


def _install_hook() -> None:
    global _hook
    own = BaseEstimator.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if own is not None:
            own.__get__(None, cls)(**kwargs)
        else:
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
        if _config is not None:
            with guard("sklearn: patching a new estimator class"):
                _patch_class(cls)

    hook = classmethod(__init_subclass__)
    BaseEstimator.__init_subclass__ = hook  # type: ignore[assignment]
    _hook = (hook, own)


def _remove_hook() -> None:
    global _hook
    if _hook is None:
        return
    hook, own = _hook
    _hook = None
    if BaseEstimator.__dict__.get("__init_subclass__") is hook:
        if own is None:
            del BaseEstimator.__init_subclass__
        else:
            BaseEstimator.__init_subclass__ = own  # type: ignore[assignment]


# -- switching on and off --------------------------------------------------------------------
def enable(config: AutologConfig) -> None:
    """Called by ``autotrack.autolog()`` (and by :func:`autolog`); idempotent."""
    global _config
    with _lock:
        _config = config
        if _hook is None:
            _install_hook()
            for cls in [BaseEstimator, *_subclasses(BaseEstimator)]:
                _patch_class(cls)


def disable() -> None:
    """Put every original method back (see the module docstring for the one exception)."""
    _switch_off()


def _switch_off() -> None:
    global _config
    with _lock:
        _config = None
        _remove_hook()
        _patches.undo()


def autolog(uri: str | None = None, experiment: str | None = None, log_models: bool = True,
            max_tuning_runs: int | None = 5, disable: bool = False) -> None:
    """Record scikit-learn fits only (``autotrack.autolog()`` records every framework).

    ``max_tuning_runs``: child runs for the best candidates of a search (``None``: all of them).
    The setting also applies when ``autotrack.autolog()`` enables this adapter.
    """
    global _max_tuning_runs
    if disable:
        _switch_off()
        return
    if max_tuning_runs is not None and (isinstance(max_tuning_runs, bool) or not isinstance(max_tuning_runs, int)
                                        or max_tuning_runs < 0):
        raise ValueError(f"max_tuning_runs must be a non-negative int or None, not {max_tuning_runs!r}")
    _max_tuning_runs = max_tuning_runs
    enable(AutologConfig(uri=uri, experiment=experiment, log_models=log_models))
