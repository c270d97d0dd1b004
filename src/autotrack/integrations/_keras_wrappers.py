"""The Keras adapter's wrappers around ``keras.Model``: ``fit``, ``evaluate``, ``save``, ``save_weights``.

Keras has no exception hook, and a callback sees neither ``fit``'s arguments nor who saves a
file, so the adapter wraps four methods of ``keras.Model`` at class level, thinly: a call made
without autotrack in play (no ``autolog()``, no ``AutotrackCallback``) goes straight through.

* ``fit``: picks the user's ``AutotrackCallback`` or, under ``autolog()``, adds one to a *new*
  list (the user's list is never touched); records the arguments and data; ends the run
  ``failed``/``killed`` with the traceback when ``fit`` raises, and re-raises the same exception.
* ``save``/``save_weights`` during a recorded fit: a checkpoint, whoever called.
* ``evaluate``: ``test_*`` metrics into the active run, else the reopened run of the model's
  last fit, else (``autolog()`` or a callback given) a run of its own.
"""

from __future__ import annotations

import copy
import inspect
import threading
import weakref
from typing import Any

import keras

from autotrack._run import active_run
from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations._common import FitSession, Patcher, resolve_options

__all__ = ["install", "fitting", "state", "recording", "last_fit"]

state = {"autolog": False}
recording: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()  # model -> its fit's recorder
last_fit: "weakref.WeakKeyDictionary[Any, tuple[Any, int, bool]]" = weakref.WeakKeyDictionary()  # (run, epoch, owned)
_classes: list[type] = []  # AutotrackCallback and the class autolog() injects
_patcher = Patcher()
_local = threading.local()  # depth of nested fit calls in this thread
_signatures: dict[Any, inspect.Signature] = {}


def _bind(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
    """A call's arguments by name (the signature is looked up once per function)."""
    key = getattr(wrapped, "__func__", wrapped)
    if key not in _signatures:
        _signatures[key] = inspect.signature(wrapped)
    return _signatures[key].bind(*args, **kwargs)


def _with_callback(callbacks: Any, cb: Any, model: Any) -> Any:
    """The user's callbacks plus ours, in a new container: theirs is left exactly as it was."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        new = copy.copy(callbacks)
        new.callbacks = [*callbacks.callbacks, cb]
        cb.set_model(model)
        cb.set_params(callbacks.params)
        return new
    if callbacks is None:
        return [cb]
    return [*callbacks, cb] if isinstance(callbacks, (list, tuple)) else [callbacks, cb]


def fitting() -> bool:
    """Whether a ``fit`` (wrapped, recorded or not) is running in this thread."""
    return getattr(_local, "depth", 0) > 0


def _fit(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Only the outermost of nested fits (a callback that trains another model) records."""
    cb, outer = None, not fitting()
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        if outer:
            with guard("keras: preparing the fit"):
                bound = _bind(wrapped, args, kwargs)
                listed = P.flat_callbacks(bound.arguments.get("callbacks"))
                mine = [c for c in listed if isinstance(c, _classes[0])]
                if mine or state["autolog"]:
                    chosen = mine[0] if mine else _classes[1]()
                    if not mine:
                        bound.arguments["callbacks"] = _with_callback(bound.arguments.get("callbacks"), chosen, model)
                    full = _bind(wrapped, args, kwargs)
                    full.apply_defaults()
                    args, kwargs, cb = bound.args, bound.kwargs, chosen
                    cb._wrapped = True
                    cb._begin(model, dict(full.arguments), [c for c in listed if c is not cb])
        if cb is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:  # recorded as failed (or killed), then re-raised unchanged
            cb._finish(model, exc)
            raise
        finally:
            cb._wrapped = False
        cb._finish(model)
        return result
    finally:
        _local.depth -= 1


def _evaluate(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs.get("_use_cached_eval_dataset"):  # fit's own validation: recorded as val_* already
        return wrapped(*args, **kwargs)
    target = None
    with guard("keras: preparing evaluate()"):
        target = _evaluate_target(model, _bind(wrapped, args, kwargs).arguments)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        if target is not None and target[1] is not None:
            target[1].end(exc)  # a run of its own ends failed; a fit's run is left as it was
        raise
    if target is not None:
        with guard("keras: recording evaluate()"):
            _record_evaluate(model, *target, result)
    return result


def _evaluate_target(model: Any, arguments: dict[str, Any]) -> tuple[dict[str, Any], FitSession | None] | None:
    """Whether (and where) to record: the active run, the reopened run of the model's last fit,
    or -- under autolog() or with an AutotrackCallback given -- a run of its own."""
    given = [c for c in P.flat_callbacks(arguments.get("callbacks")) if isinstance(c, _classes[0])]
    last = last_fit.get(model)
    if active_run() is not None:
        return (arguments, None) if state["autolog"] or given or last or model in recording else None
    if last is not None and last[2] and last[0].status == "finished":
        return arguments, None
    if not (state["autolog"] or given):
        return None
    session = FitSession("keras", given[0].options if given else resolve_options(), record=P.rank_zero())
    session.begin(given[0]._name if given else None)
    session.run.log_params({**P.compile_params(model), **(P.size_params(model) or {})})
    return arguments, session


def _record_evaluate(model: Any, arguments: dict[str, Any], session: FitSession | None, result: Any) -> None:
    recorder, last = recording.get(model), last_fit.get(model)
    run = session.run if session is not None else active_run()
    reopened = run is None
    if reopened:
        run = last[0].reopen()
    try:
        epoch = recorder._epoch if recorder is not None else (last[1] if last is not None else None)
        values = result if isinstance(result, dict) else model.get_metrics_result()
        run.log_metrics(P.scalars(values, "test_"), step=P.global_step(model), epoch=epoch)
        P.log_data(run, "test", arguments.get("x"), arguments.get("y"))
    finally:
        if reopened:
            run.finish()
        elif session is not None:
            session.end()


def _saver(weights_only: bool) -> Any:
    def wrapper(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        cb = recording.get(model)
        if cb is not None and cb._session is not None and cb.options.log_checkpoints:
            with guard("keras: recording a checkpoint"):
                cb._checkpoints.saved(args[0] if args else kwargs["filepath"], weights_only, cb._epoch)
        return result

    return wrapper


def install(callback: type, injected: type) -> None:
    """Wrap Model.fit/evaluate/save/save_weights (once); ``callback`` is the adapter's class."""
    _classes[:] = [callback, injected]
    if not _patcher:
        _patcher.wrap(keras.Model, "fit", _fit)
        _patcher.wrap(keras.Model, "evaluate", _evaluate)
        _patcher.wrap(keras.Model, "save", _saver(False))
        _patcher.wrap(keras.Model, "save_weights", _saver(True))

