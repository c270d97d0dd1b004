"""autolog() for Keras: thin wrappers around ``keras.Model.fit``, ``evaluate``, ``save``, ``save_weights``.

Installed by ``enable()`` only; ``disable()`` puts the very same functions back. They add what a
callback cannot see:

* ``fit``: begins the run, hands it to the user's ``AutotrackCallback`` (or to one added to a
  *new* list: the user's list is never touched) with ``attach``, records fit's arguments, its
  other callbacks and its data, and ends the run: ``failed``/``killed`` with the traceback when
  ``fit`` raises (the same exception goes on). Only the outermost of nested fits records.
* ``save``/``save_weights`` during a recorded fit: a checkpoint, whoever called (``ModelCheckpoint``,
  before or after our callback, or the user's own); ``Checkpoints`` adds ModelCheckpoint's
  monitored value and ``best`` mark once the epoch's logs are complete.
* ``evaluate``: ``test_*`` metrics into the active run, else the reopened run of the model's
  last fit, else a run of its own.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
import weakref
from typing import Any, Callable

import keras

from autotrack._run import active_run
from autotrack._safety import guard
from autotrack.integrations import _keras_params as P
from autotrack.integrations._common import FitRecorder, Patcher, resolve_options

__all__ = ["enable", "disable", "Checkpoints"]

_patcher = Patcher()
_callback: list[Any] = []  # [AutotrackCallback, the function that ends fits abandoned without autolog]
_local = threading.local()  # .depth: nested fit calls in this thread
_signatures: dict[Any, inspect.Signature] = {}
_recording: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()  # model -> its fit's callback
_last_fit: "weakref.WeakKeyDictionary[Any, tuple[Any, int, int, bool]]" = weakref.WeakKeyDictionary()


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


def _data(recorder: FitRecorder, name: str, x: Any, y: Any = None) -> None:
    """Arrays: shape, dtype, content hash; a ``tf.data`` dataset: cardinality, element spec. Not iterated."""
    if x is not None:
        recorder.data(name, x if y is None else (x, y), **P.data_extra(x))


def _fit(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    outer = not getattr(_local, "depth", 0)
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        fit = None
        with guard("keras: preparing the fit"):
            fit, args, kwargs = _prepare(wrapped, model, args, kwargs, outer)
        if fit is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:  # recorded as failed (or killed), then re-raised unchanged
            _end(model, *fit, exc)
            raise
        _end(model, *fit, None)
        return result
    finally:
        _local.depth -= 1


def _prepare(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], outer: bool) -> Any:
    """The callbacks that take part and the recorder they share; an inner fit's callbacks get a
    recorder that records nothing (only the outermost fit records), as do all but the first of
    several ``AutotrackCallback`` in one list."""
    bound = _bind(wrapped, args, kwargs)
    listed = P.flat_callbacks(bound.arguments.get("callbacks"))
    mine = [c for c in listed if isinstance(c, _callback[0])]
    if not outer and not mine:
        return None, args, kwargs
    if outer:
        _callback[1](model)
    cb = mine[0] if mine else _callback[0]()
    if not mine:
        bound.arguments["callbacks"] = _with_callback(bound.arguments.get("callbacks"), cb, model)
        args, kwargs = bound.args, bound.kwargs
    recorder = FitRecorder("keras", cb.options, record=outer and P.rank_zero())
    recorder.begin(cb.name)
    others = [c for c in listed if c not in mine]
    cb.attach(recorder, Checkpoints(recorder, others) if recorder.active else None)
    for extra in mine[1:]:
        extra.attach(FitRecorder("keras", extra.options, record=False))
    if recorder.active:
        _recording[model] = cb
        full = _bind(wrapped, args, kwargs)
        full.apply_defaults()
        recorder.params({**P.fit_params(full.arguments), **P.callback_params(others)})
        _data(recorder, "train", full.arguments.get("x"), full.arguments.get("y"))
        _data(recorder, "validation", full.arguments.get("validation_data"))
    return ([cb, *mine[1:]], recorder, others), args, kwargs


def _end(model: Any, callbacks: list[Any], recorder: FitRecorder, others: list[Any], exc: BaseException | None) -> None:
    try:
        with guard("keras: recording the end of the fit"):
            if exc is None:
                recorder.params(P.early_stopping_end(others))
        for cb in callbacks:
            cb.close()
        if exc is None and recorder.active:
            _last_fit[model] = (recorder.run, callbacks[0].epoch, callbacks[0].step, recorder.owned)
    finally:
        _recording.pop(model, None)
        with guard("keras: finishing the run"):
            recorder.end(exc)


def _evaluate(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Into the active run; else the model's last fit's run, reopened once evaluate returned (one
    that fit started and that finished well); else a run of its own, ``failed`` if evaluate raises."""
    if kwargs.get("_use_cached_eval_dataset"):  # fit's own validation: recorded as val_* already
        return wrapped(*args, **kwargs)
    recorder, reopen, last, arguments = None, None, None, {}
    with guard("keras: preparing evaluate()"):
        arguments = _bind(wrapped, args, kwargs).arguments
        given = [c for c in P.flat_callbacks(arguments.get("callbacks")) if isinstance(c, _callback[0])]
        recorder = FitRecorder("keras", given[0].options if given else resolve_options(), record=P.rank_zero(),
                               evaluation=True)
        last = _last_fit.get(model)
        reopen = last[0] if last is not None and last[3] and last[0].status == "finished" else None
        if active_run() is None and reopen is None:  # a run of its own, begun now to record a failure
            recorder.begin(given[0].name if given else None)
            recorder.params({**P.compile_params(model), **(P.size_params(model) or {})})
            for name, optimizer in P.optimizers(model).items():
                recorder.params(P.optimizer_params(name, optimizer))
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        if recorder is not None:
            recorder.end(exc)  # a run of its own ends failed; another run is left as it was
        raise
    if recorder is not None:
        with guard("keras: recording evaluate()"):
            if not recorder.active:
                recorder.begin(reopen=reopen)  # the active run, else the last fit's, reopened
            fitting = _recording.get(model)
            epoch, step = ((fitting.epoch, fitting.step) if fitting is not None else last[1:3] if last is not None
                           else (None, P.iterations(getattr(model, "optimizer", None))))
            values = result if isinstance(result, dict) else model.get_metrics_result()
            recorder.metrics(P.scalars(values, "test_"), step=step, epoch=epoch)
            _data(recorder, "test", arguments.get("x"), arguments.get("y"))
        with guard("keras: finishing evaluate()"):
            recorder.end()
    return result


def _saver(weights_only: bool) -> Callable[..., Any]:
    def wrapper(wrapped: Any, model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        cb = _recording.get(model)
        if cb is not None and cb.checkpoints is not None and not cb.saving_model:
            with guard("keras: recording a checkpoint"):
                cb.checkpoints.saved(args[0] if args else kwargs["filepath"], weights_only, cb.epoch)
        return result

    return wrapper


class Checkpoints:
    """Files saved during a recorded fit, and for those of a ``ModelCheckpoint`` its monitored
    value and ``best`` mark (one best per ModelCheckpoint), said on every save explicitly: a file
    saved again under one name (``best.keras``) is a new version of that record."""

    def __init__(self, recorder: FitRecorder, callbacks: list[Any]) -> None:
        self.recorder = recorder
        self.savers = [cb for cb in callbacks if isinstance(cb, keras.callbacks.ModelCheckpoint)]
        self.backups = [os.path.abspath(cb.backup_dir) + os.sep for cb in callbacks
                        if isinstance(cb, keras.callbacks.BackupAndRestore) and getattr(cb, "backup_dir", None)]
        self.pending: list[tuple[str, Any]] = []  # (artifact name, its ModelCheckpoint or None)
        self.best: dict[int, tuple[Any, str | None]] = {}  # id(ModelCheckpoint) -> (best value, its file)

    def saved(self, path: str, weights_only: bool, epoch: int) -> None:
        path = os.path.abspath(os.fspath(path))
        if any(path.startswith(folder) for folder in self.backups):
            return  # BackupAndRestore's own state, not a checkpoint
        mcs = [cb for cb in self.savers if bool(cb.save_weights_only) == weights_only]
        if len(mcs) > 1:
            mcs = [cb for cb in mcs if os.path.dirname(os.path.abspath(cb.filepath)) == os.path.dirname(path)]
        name = self.recorder.checkpoint(path, {"epoch": epoch, "weights_only": weights_only})
        if name:
            self.pending.append((name, mcs[0] if len(mcs) == 1 else None))

    def describe(self, logs: dict[str, Any], step: int | None) -> None:
        """Once the epoch's logs are complete: the monitored value, and whether it is the best."""
        pending, self.pending = self.pending, []
        run = self.recorder.run
        for name, mc in pending:
            if mc is None or mc.save_freq != "epoch":
                continue
            value = logs.get(mc.monitor)
            meta: dict[str, Any] = {"monitor": mc.monitor, "save_best_only": bool(mc.save_best_only), "step": step}
            if isinstance(value, (int, float)):
                best_value, best_name = self.best.get(id(mc), (None, None))
                op = getattr(mc, "monitor_op", None)
                improved = bool(mc.save_best_only or best_value is None or (op is not None and op(value, best_value)))
                if improved and best_name not in (None, name):
                    run.update_artifact(best_name, {"best": False})
                if improved or best_name == name:  # an overwritten best file holds the best no more
                    self.best[id(mc)] = (value, name) if improved else (best_value, None)
                meta.update(value=value, best=improved)
            run.update_artifact(name, meta)


def enable(callback: type, end_abandoned: Callable[..., Any]) -> None:
    """Wrap the four methods (once), each on the class that defines it (``fit`` is the backend
    trainer's), so that ``disable()`` leaves every class as it was."""
    _callback[:] = [callback, end_abandoned]
    if not _patcher:
        for name, wrapper in (("fit", _fit), ("evaluate", _evaluate), ("save", _saver(False)),
                              ("save_weights", _saver(True))):
            _patcher.wrap(next(k for k in keras.Model.__mro__ if name in vars(k)), name, wrapper)


def disable() -> None:
    _patcher.undo()
