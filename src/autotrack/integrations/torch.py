"""Plain PyTorch loops: recorded by ``autotrack.autolog()`` with no logging code in the loop.

PyTorch has no callback API and a plain loop no ``fit`` call, so the run's life follows the
process: it starts at the first ``optimizer.step()`` (or joins a run the user started with
``autotrack.start_run()``, or the one an Optuna trial runs in) and ends when the process does,
when the user starts the next run, or when another framework's fit begins.

What ``autolog()`` installs (``autolog(disable=True)`` removes all of it):

* a global optimizer step pre-hook (torch's own ``register_optimizer_step_pre_hook``, nothing
  patched): on an optimizer's first step it records the optimizer, the model, scheduler and grad
  scaler the loop holds (``_torch_describe``); on each step it counts and looks at the learning
  rates. Steps that Lightning, transformers or Keras drive are left to their adapters;
* wrappers around ``DataLoader.__iter__`` (once per epoch: loader settings, data fingerprint,
  the epoch count) and ``torch.save`` (a model or state_dict saved to a path: a checkpoint);
* listeners of autotrack's own run events (``autotrack._events``: a run starting, another
  framework's fit beginning, a run finishing), so that the run started here ends where a new one
  starts, and its totals (steps, epochs) are recorded before any run it recorded into ends.

``log_metrics`` records the loss (or anything) at the current optimizer step; tensors are read
on autotrack's writer thread, not the training thread.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any, Mapping

import torch
import torch.utils.data
from torch.optim.optimizer import register_optimizer_step_pre_hook

from autotrack import _autolog, _events
from autotrack import _run as run_module
from autotrack._safety import AutotrackWarning, guard, report
from autotrack.integrations import _torch_describe as describe
from autotrack.integrations._common import (
    FitRecorder,
    Patcher,
    autolog_on,
    resolve_options,
)
from autotrack.integrations._torch_session import Session

__all__ = ["autolog", "log_metrics", "enable", "disable"]

_MAX_PENDING = 1000  # metrics logged before the first step, kept for the run that starts there
_patcher = Patcher()
_hook: Any = None
_session: Session | None = None
_beginning = False  # inside our own FitRecorder.begin: its run_starting must not end anything
_skip: weakref.WeakSet[Any] = weakref.WeakSet()  # optimizers another framework drives, or not recorded
_pending_loaders: list[tuple[weakref.ref[Any], dict, dict, bool]] = []  # iterated before the first step
_pending_metrics: list[tuple[dict[str, Any], Any, Any]] = []
_warned_no_run = False


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, epoch: int | None = None) -> None:
    """Record ``metrics`` (``{"loss": loss}``) in the plain-PyTorch run at the current optimizer
    step and epoch (or those given). A one-element tensor is read on autotrack's writer thread,
    so this never waits for the GPU. Before the first ``optimizer.step()`` the values are kept for
    the run that step starts; with no run to come (autolog off), they go to the active run or,
    with none, are dropped with one warning."""
    global _warned_no_run
    s = _session
    if s is not None:
        s.recorder.metrics(metrics, step=s.step if step is None else step, epoch=s.epoch if epoch is None else epoch)
        return
    active = run_module.active_run()
    if active is not None:
        active.log_metrics(metrics, step=step, epoch=epoch)
    elif autolog_on("torch"):
        if len(_pending_metrics) < _MAX_PENDING:
            _pending_metrics.append((dict(metrics), 0 if step is None else step, epoch))
    elif not _warned_no_run:
        _warned_no_run = True
        import warnings

        warnings.warn("autotrack: log_metrics() outside a run: call autotrack.autolog() (a run starts at the first "
                      "optimizer.step()) or autotrack.start_run(); these values were not recorded",
                      AutotrackWarning, stacklevel=2)


def autolog(uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
            log_every_n_steps: int | None = None, register_as: str | None = None, disable: bool = False) -> None:
    """``autotrack.autolog(frameworks=["torch"])``; settings not given keep those of an
    ``autotrack.autolog()`` already on."""
    if disable:
        _autolog.autolog(frameworks=["torch"], disable=True)
        return
    import dataclasses

    now = _autolog.current_config() or _autolog.AutologConfig()
    given = {"uri": uri, "experiment": experiment, "log_checkpoints": log_checkpoints,
             "log_every_n_steps": log_every_n_steps, "register_as": register_as}
    config = dataclasses.replace(now, **{k: v for k, v in given.items() if v is not None})
    _autolog.autolog(**dataclasses.asdict(config), frameworks=["torch"])


# -- the hooks -----------------------------------------------------------------------------------
def _before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Every optimizer step of the process (hot path: two lookups for a known optimizer)."""
    s = _session
    if s is not None:
        state = s.optimizers.get(optimizer)
        if state is not None:
            try:
                s.stepped(optimizer, state)
            except Exception as exc:  # noqa: BLE001 - never into training
                report("torch: recording a step", exc)
            return
    if optimizer in _skip:
        return
    try:
        _first_step(optimizer, sys._getframe(1))
    except Exception as exc:  # noqa: BLE001
        _skip.add(optimizer)
        report("torch: recording an optimizer", exc)
    return


def _another_fit() -> bool:
    """A fit of another framework is being recorded (its adapter began a run for it)."""
    run = run_module.active_run()
    return run is not None and getattr(run, "open_fit", None) not in (None, "torch")


def _first_step(optimizer: Any, frame: Any) -> None:
    if not autolog_on("torch") or describe.driver(frame) is not None or _another_fit():
        _skip.add(optimizer)  # a Trainer's optimizer: its adapter records that training
        return
    s = _session if _session is not None else _begin()
    if s is None:
        _skip.add(optimizer)  # not recorded here: another rank, AUTOTRACK_DISABLE
        return
    s.add_optimizer(optimizer, frame)
    s.stepped(optimizer, s.optimizers[optimizer])


def _begin() -> Session | None:
    global _session, _beginning
    recorder = FitRecorder("torch", resolve_options(), record=describe.rank_zero())
    _beginning = True
    try:
        recorder.begin()
    finally:
        _beginning = False
    if not recorder.active:
        return None
    if recorder.owned:
        recorder.run.open_fit = None  # a loop has no end but the process's: exiting is a normal end
    s = _session = Session(recorder)
    loaders = [(key, info, seeds, grad) for ref, info, seeds, grad in _pending_loaders if (key := ref()) is not None]
    metrics = list(_pending_metrics)
    _pending_loaders.clear()
    _pending_metrics.clear()
    s.start(loaders, metrics)
    return s


def _iterating(wrapped: Any, loader: Any, args: tuple, kwargs: dict) -> Any:
    """``DataLoader.__iter__``: once per epoch of each loader."""
    if loader is not None and autolog_on("torch"):
        try:
            if describe.driver(sys._getframe(1)) is None and not _another_fit():
                grad = torch.is_grad_enabled()
                key, info, seeds = describe.loader_info(loader)
                s = _session
                if s is not None:
                    s.loader(key, info, seeds, grad)
                elif len(_pending_loaders) < 16 and not any(ref() is key and g == grad for ref, _, _, g in _pending_loaders):
                    _pending_loaders.append((weakref.ref(key), info, seeds, grad))
        except Exception as exc:  # noqa: BLE001
            report("torch: recording a data loader", exc)
    return wrapped(*args, **kwargs)


def _saving(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
    """``torch.save``: recorded as a checkpoint once written (errors of the save are the user's)."""
    result = wrapped(*args, **kwargs)
    s = _session
    if s is not None:
        try:
            obj = args[0] if args else kwargs.get("obj")
            path = args[1] if len(args) > 1 else kwargs.get("f")
            if describe.driver(sys._getframe(1)) is None:
                s.saved(obj, path)
        except Exception as exc:  # noqa: BLE001
            report("torch: recording a checkpoint", exc)
    return result


def _run_finishing(run: Any, status: str) -> None:
    """A run is finishing (``_events``): if it is the one recorded here, its totals go in first,
    then ``register_as`` (the run, still open, is flushed for it)."""
    global _session
    s = _session
    if s is None or run is not s.run:
        return
    _session = None
    with guard("torch: recording the end of the run"):
        s.finish_up()
    with guard("torch: ending the run"):
        s.recorder.owned = False  # the run is finishing already: end() only registers the model
        s.recorder.end(status=status)


def _end_auto_run() -> None:
    """The run this adapter started ends where another begins (a joined run is its owner's);
    also the ``run_starting`` listener."""
    s = _session
    if s is not None and not _beginning and s.recorder.owned and s.run.status == "running":
        with guard("torch: ending the run"):
            s.run.finish()


def _fit_beginning(recorder: Any) -> None:
    """Another framework's fit begins recording (``_events``): the loop's run ends first."""
    if recorder.framework != "torch":
        _end_auto_run()


_LISTENERS = (("run_starting", _end_auto_run), ("fit_beginning", _fit_beginning), ("run_finishing", _run_finishing))


def _forked() -> None:
    """A forked child (a DataLoader worker) records nothing of its parent's run."""
    global _session
    _session = None
    _pending_loaders.clear()
    _pending_metrics.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``."""
    global _hook
    if _hook is None:
        _hook = register_optimizer_step_pre_hook(_before_step)
    if _patcher:
        return
    _patcher.wrap(torch.serialization, "save", _saving)
    _patcher.wrap(torch, "save", _saving)
    _patcher.wrap(torch.utils.data.DataLoader, "__iter__", _iterating)
    for event, listener in _LISTENERS:
        _events.on(event, listener)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: a run started here ends, every hook goes."""
    global _hook
    _end_auto_run()
    s = _session
    if s is not None:  # a joined run goes on without us: its totals now
        with guard("torch: recording the end of the run"):
            s.finish_up()
        _forked()
    for event, listener in _LISTENERS:
        _events.off(event, listener)
    if _hook is not None:
        _hook.remove()
        _hook = None
    _patcher.undo()
    _skip.clear()
