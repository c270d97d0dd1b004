"""The one guard that keeps autotrack's own errors out of the user's training.

Policy (copied from MLflow autologging, not its machinery): an exception raised by the user's
code always propagates unchanged; an exception raised by autotrack is caught, warned about once
per kind and counted, so a tracking bug can never cost someone a training run. With
``AUTOTRACK_STRICT=1`` (the test suite sets it) autotrack's errors are raised instead, so bugs
cannot hide behind the guard.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import warnings
from collections import Counter
from typing import Any, Callable, Iterator, TypeVar

from autotrack import _forksafe

__all__ = ["AutotrackWarning", "guard", "guarded", "report", "error_counts", "strict"]

_log = logging.getLogger("autotrack")
_F = TypeVar("_F", bound=Callable[..., Any])

_counts: Counter[str] = Counter()
_warned: set[str] = set()
_lock = _forksafe.lock()


class AutotrackWarning(UserWarning):
    """Something went wrong inside autotrack; training went on."""


def strict() -> bool:
    """Read each time (not cached) so tests can toggle it with monkeypatch."""
    return os.environ.get("AUTOTRACK_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


def _outside_autotrack() -> int:
    """The ``stacklevel`` (for a warning raised in ``report``) of the first frame not autotrack's."""
    frame, level = sys._getframe(2), 2  # report's caller
    while frame is not None and frame.f_globals.get("__name__", "").startswith("autotrack."):
        frame, level = frame.f_back, level + 1
    return level


def report(kind: str, exc: BaseException, stacklevel: int | None = 3, message: str | None = None) -> None:
    """Count an internal error and warn the first time this kind happens (or raise in strict mode).

    ``stacklevel`` as for ``warnings.warn``; None: the user's line that called into autotrack.
    ``message``: the warning's whole text, when the default one would not say what happens next.
    A warning from one of autotrack's own threads (the writer's) comes with no source line: no
    line of the user's caused it, and one of autotrack's would only be noise."""
    with _lock:
        _counts[kind] += 1
        first = kind not in _warned
        _warned.add(kind)
    _log.debug("autotrack error in %s", kind, exc_info=exc)
    if strict():
        raise exc
    if not first:
        return
    text = message or (f"autotrack: {kind} failed ({type(exc).__name__}: {exc}); training continues, "
                       "further errors of this kind are counted silently (autotrack.error_counts()).")
    if threading.current_thread().name.startswith("autotrack-"):
        warnings.warn_explicit(text, AutotrackWarning, "autotrack", 0, module="autotrack")
    else:
        warnings.warn(text, AutotrackWarning, stacklevel=_outside_autotrack() if stacklevel is None else stacklevel)


@contextlib.contextmanager
def guard(kind: str) -> Iterator[None]:
    """Swallow and report ``Exception``s raised inside (never KeyboardInterrupt/SystemExit)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - that is the point of the guard
        report(kind, exc)


def guarded(kind: str, default: Any = None) -> Callable[[_F], _F]:
    """Decorator form of :func:`guard`; the wrapped call returns ``default`` on error."""

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                report(kind, exc)
                return default

        return wrapper  # type: ignore[return-value]

    return deco


def error_counts() -> dict[str, int]:
    """How many internal errors autotrack swallowed so far, by kind."""
    with _lock:
        return dict(_counts)
