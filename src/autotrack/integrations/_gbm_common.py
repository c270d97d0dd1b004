"""What the LightGBM and CatBoost adapters share (neither library is imported here).

Both libraries' callbacks see one iteration at a time and neither tells a callback that training
is over, so the adapters share the same two shapes:

* under ``autotrack.autolog()`` a wrapper around the library's train/fit call begins the run,
  ``attach``es it to the callback and ends it when the call returns or raises (``drive``);
* a callback used alone keeps the run it began open after the last iteration it saw (``Open``):
  it ends it as soon as it can tell the training is over, else at its next training, else at
  the program's end (an exit hook here).

Plus the small helpers both wrappers need: reading a call's arguments as the library does,
making params JSON-friendly, and the ``feature_importance.json`` artifact.
"""

from __future__ import annotations

import atexit
import inspect
import numbers
import os
import sys
import warnings
from typing import Any, Callable

from autotrack import _forksafe
from autotrack._run import deactivate
from autotrack._safety import AutotrackWarning, guard
from autotrack.integrations._common import FitRecorder, outermost

__all__ = ["OUTERMOST_KEY", "nested", "bind", "clean", "unread", "drive", "Open"]

OUTERMOST_KEY = "sklearn"  # shared with scikit-learn and XGBoost: inside a Pipeline or search, an inner fit
_warned: set[str] = set()


def nested() -> bool:
    """Inside another fit that records (a scikit-learn Pipeline or search, an estimator's fit)."""
    with outermost(OUTERMOST_KEY) as first:
        return not first


def bind(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """The arguments by name, as the library maps them, defaults included; None if they do not fit
    (a newer version with an argument we do not know: the call is then passed on unrecorded)."""
    params = [p for p in (signature.parameters.values() if signature is not None else ())
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    names = [p.name for p in params]
    positional = [p.name for p in params if p.kind != p.KEYWORD_ONLY]
    if not names or len(args) > len(positional) or any(k not in names or k in positional[:len(args)] for k in kwargs):
        return None
    bound = {p.name: p.default for p in params if p.default is not p.empty}
    bound.update(zip(positional, args), **kwargs)
    return bound if len(bound) == len(names) else None


def clean(value: Any) -> Any:
    """A param value as JSON can hold it: containers kept, numbers/strings/None as they are, a
    callable or an object by its name (never its repr with an address)."""
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, str, numbers.Number)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(value):
        return getattr(value, "__qualname__", None) or type(value).__name__
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value  # an array: the core's value conversion decides
    return type(value).__name__ if type(value).__repr__ is object.__repr__ else repr(value)


def unread(library: str, what: str, call: Callable[[], Any]) -> Any:
    """A call whose arguments the wrapper could not read: run as it was, one warning."""
    result = call()
    if what not in _warned:
        _warned.add(what)
        warnings.warn(f"autotrack: could not read the arguments of {what}(...) (a newer {library}?): it ran "
                      "unchanged and autolog did not record it; an AutotrackCallback in its callbacks does",
                      AutotrackWarning, stacklevel=3)
    return result


def drive(framework: str, recorder: FitRecorder, cb: Any, call: Callable[[], Any],
          after: Callable[[Any], None] | None = None) -> Any:
    """Run the user's training; ``after(result)`` records its end; the run ends ``failed`` with the
    traceback if it raised (the exception propagates unchanged)."""
    try:
        result = call()
    except BaseException as exc:
        cb.detach()
        with guard(f"{framework}: ending the run"):
            recorder.end(exc)
        raise
    if after is not None and recorder.active:
        with guard(f"{framework}: recording the trained model"):
            after(result)
    cb.detach()
    with guard(f"{framework}: ending the run"):
        recorder.end()
    return result


class Open:
    """The runs callbacks began on their own and could not end yet (see the module doc).

    ``add(cb, recorder)`` right after a callback began a run of its own: the run stops being the
    active run (``autotrack.active_run()``), so that nothing the program does after the training
    -- a ``start_run()``, another framework's fit -- joins it or becomes its child; that also takes
    it out of autotrack's exit hook, so the hook here ends it. ``cb.close_open()`` ends it
    (idempotent). At the program's end every one still open is closed by its callback, which
    says how it ended (``exit_error``: the exception the program died of, if any).
    """

    _callbacks: set[Any] = set()  # strong: a callback made inline is gone after its training
    _lock = _forksafe.lock()
    _hooked = False

    @classmethod
    def add(cls, cb: Any, recorder: FitRecorder) -> None:
        if not recorder.owned:  # a run the user started: theirs to end
            return
        deactivate(recorder.run)
        with cls._lock:
            cls._callbacks.add(cb)
            if not cls._hooked:
                cls._hooked = True
                atexit.register(cls.close_all)

    @staticmethod
    def exit_error() -> BaseException | None:
        """The exception the program is dying of (None: it ends normally)."""
        return getattr(sys, "last_value", None) if hasattr(sys, "last_type") else None

    @classmethod
    def discard(cls, cb: Any) -> None:
        with cls._lock:
            cls._callbacks.discard(cb)

    @classmethod
    def close_all(cls) -> None:
        with cls._lock:
            callbacks = list(cls._callbacks)
        for cb in callbacks:
            with guard("ending a run left open by a callback"):
                cb.close_open(at_exit=True)
