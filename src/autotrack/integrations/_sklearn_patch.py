"""Patching the fit methods of every scikit-learn estimator class, now and later, and undoing it.

* Classes that exist when ``install()`` runs: every ``BaseEstimator`` subclass, found through
  ``__subclasses__()`` (well under a millisecond, imports nothing), and the mixins in their MRO
  (``TransformerMixin.fit_transform``, ``ClusterMixin.fit_predict``...).
* Classes defined later (a scikit-learn module imported later, your own estimators): a
  ``BaseEstimator.__init_subclass__`` hook patches each one as it is defined, once.

A method is wrapped where it is defined (in the class's own ``__dict__``), so an inherited method
is wrapped once for all its heirs. XGBoost's and LightGBM's estimators (and their subclasses) are
skipped: their own adapters record them. ``undo()`` puts every original back, except where something has
wrapped our wrapper since (scikit-learn's ``set_output`` does this to ``fit_transform`` of a
class defined while the hook is on): putting the original back would drop that other wrapper,
so ours stays there, inert (the wrapper checks ``is_on`` on every call), and is reused, not
doubled, if autolog comes back.
"""

from __future__ import annotations

from typing import Any, Callable

import wrapt
from sklearn.base import BaseEstimator

from autotrack._safety import guard
from autotrack.integrations._common import Patcher

__all__ = ["EstimatorPatcher"]

_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)  # wrapt 2 split them; 1.x has one


class _Patches(Patcher):
    """A Patcher whose undo leaves alone a wrapper that something else has wrapped since."""

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


_OWN_ADAPTERS = ("xgboost", "lightgbm")  # estimators whose own adapter records them (one run, not two)


def _foreign(cls: type) -> bool:
    return any((getattr(k, "__module__", "") or "").split(".")[0] in _OWN_ADAPTERS for k in cls.__mro__)


def _subclasses(root: type) -> list[type]:
    found, stack, seen = [], [root], {root}
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                found.append(sub)
                stack.append(sub)
    return found


class EstimatorPatcher:
    def __init__(self, wrapper: Callable[..., Any], methods: tuple[str, ...], is_on: Callable[[], bool]) -> None:
        self.wrapper, self.methods, self.is_on = wrapper, methods, is_on
        self._patches = _Patches()
        self._hook: tuple[Any, Any] | None = None  # (our __init_subclass__, BaseEstimator's own or None)

    def is_ours(self, fn: Any) -> bool:
        """Our wrapper, bound or not, possibly under other decorators (set_output's)."""
        for _ in range(8):
            if isinstance(fn, _PROXY) and getattr(fn, "_self_wrapper", None) is self.wrapper:
                return True
            fn = getattr(fn, "__wrapped__", None)
            if fn is None:
                return False
        return False

    def patch_class(self, cls: type) -> None:
        if _foreign(cls):
            return
        for klass in cls.__mro__[:-1]:
            for name in self.methods:
                fn = klass.__dict__.get(name)
                if fn is None or self.is_ours(fn) or not (callable(fn) or hasattr(fn, "__get__")):
                    continue
                with guard(f"sklearn: patching {klass.__qualname__}.{name}"):
                    self._patches.wrap(klass, name, self.wrapper)

    def install(self) -> None:
        """Idempotent: the hook first (no class defined meanwhile is missed), then the scan."""
        if self._hook is not None:
            return
        own = BaseEstimator.__dict__.get("__init_subclass__")
        patcher = self

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if own is not None:
                own.__get__(None, cls)(**kwargs)
            else:
                super(BaseEstimator, cls).__init_subclass__(**kwargs)
            if patcher.is_on():
                with guard("sklearn: patching a new estimator class"):
                    patcher.patch_class(cls)

        hook = classmethod(__init_subclass__)
        BaseEstimator.__init_subclass__ = hook  # type: ignore[assignment]
        self._hook = (hook, own)
        for cls in [BaseEstimator, *_subclasses(BaseEstimator)]:
            self.patch_class(cls)

    def undo(self) -> None:
        if self._hook is not None:
            hook, own = self._hook
            self._hook = None
            if BaseEstimator.__dict__.get("__init_subclass__") is hook:
                if own is None:
                    del BaseEstimator.__init_subclass__
                else:
                    BaseEstimator.__init_subclass__ = own  # type: ignore[assignment]
        self._patches.undo()
