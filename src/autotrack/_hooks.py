"""Post-import hooks: call a function when a module is imported, or at once if it already is.

A small ``sys.meta_path`` finder of our own instead of wrapt's (``import wrapt`` alone costs
more than all of ``autolog()`` needs). It only looks at the few module names hooks are
registered for; for those it asks the other finders for the spec and chains the loader, so
that the hooks run right after the module's code (like wrapt's ``_ImportHookChainedLoader``).
A hook runs each time its module is executed (also after a ``sys.modules`` removal), so hooks
must be idempotent. Errors in a hook are the hook's business (callers wrap them in ``guard``).
"""

from __future__ import annotations

import sys
import _thread  # not threading: a few ms of import time, and only locks are needed

from autotrack import _forksafe

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

__all__ = ["when_imported"]

_hooks: dict[str, list[Callable[[Any], None]]] = {}
_lock = _forksafe.lock()
_busy = _thread._local()


class _ChainedLoader:
    """Runs the real loader, then the hooks; everything else is the real loader's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        # the module sees its real loader, as it would without us
        if getattr(module, "__loader__", None) in (None, self):
            try:
                module.__loader__ = self._loader
            except AttributeError:
                pass
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "loader", None) is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        _fire(module.__name__, module)


class _Finder:
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _hooks:
            return None
        busy = getattr(_busy, "names", None)
        if busy is None:
            busy = _busy.names = set()
        if name in busy:
            return None
        busy.add(name)
        try:
            for finder in list(sys.meta_path):
                if finder is self or isinstance(finder, _Finder):
                    continue
                find = getattr(finder, "find_spec", None)
                spec = find(name, path, target) if find is not None else None
                if spec is not None:
                    loader = getattr(spec, "loader", None)
                    if loader is not None and hasattr(loader, "exec_module") and not isinstance(loader, _ChainedLoader):
                        spec.loader = _ChainedLoader(loader)
                    return spec
            return None
        finally:
            busy.discard(name)


_finder = _Finder()


def _fire(name: str, module: Any) -> None:
    with _lock:
        hooks = list(_hooks.get(name, ()))
    for hook in hooks:
        hook(module)


def when_imported(name: str, hook: Callable[[Any], None]) -> None:
    """Call ``hook(module)`` whenever module ``name`` is imported; now if it already is."""
    with _lock:
        if not any(f is _finder for f in sys.meta_path):
            sys.meta_path.insert(0, _finder)
        _hooks.setdefault(name, []).append(hook)
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
