"""One plain-PyTorch run as recorded: what ``autotrack.integrations.torch``'s hooks tell it, turned
into params, metrics, data and checkpoints of one ``FitRecorder``.

The hooks call in at four moments: an optimizer's first step (``add_optimizer``: its params, the
model, scheduler and grad scaler of the loop), every step (``stepped``: a counter and a look at
the learning rates, nothing else), a DataLoader iterated (``loader``: its settings and data once,
then one epoch more each time the training loader starts again), a ``torch.save`` (``saved``).
``finish_up`` records the totals when the run ends. Only ``stepped`` is on the hot path: a few
attribute reads and a comparison; a metric call only when a learning rate changed.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Iterable, Mapping

import torch

from autotrack._safety import guard
from autotrack._values import flatten
from autotrack.integrations import _torch_describe as describe
from autotrack.integrations._common import FitRecorder

__all__ = ["Session"]


class _Optimizer:
    """What is kept per optimizer: its label, steps in this run, the learning rates last recorded."""

    __slots__ = ("label", "logged", "metric", "plain", "primary", "steps")

    def __init__(self, label: str, metric: str, primary: bool) -> None:
        self.label, self.metric, self.primary = label, metric, primary
        self.steps = 0
        self.logged: list[float | None] = []  # per param group
        self.plain = True  # every lr a Python number (not a tensor): compared as is


class Session:
    def __init__(self, recorder: FitRecorder) -> None:
        self.recorder = recorder
        self.run = recorder.run
        self.every = recorder.options.log_every_n_steps
        self.step = 0  # optimizer steps taken in this run (of its first optimizer)
        self.epoch: int | None = None  # times the training loader started, from 0; None without one
        self.optimizers: weakref.WeakKeyDictionary[Any, _Optimizer] = weakref.WeakKeyDictionary()
        self._loaders: weakref.WeakKeyDictionary[Any, dict[bool, str]] = weakref.WeakKeyDictionary()
        self._train: weakref.ref[Any] | None = None
        self._seen: list[weakref.ref[Any]] = []  # models and schedulers recorded (by identity)
        self._labels: list[str] = []
        self._states: list[_Optimizer] = []
        self._scalers: list[weakref.ref[Any]] = []
        self._probe: Any = None

    # -- start and end ---------------------------------------------------------------------------
    def start(self, loaders: Iterable[tuple[Any, dict, dict, bool]], metrics: Iterable[tuple[dict, Any, Any]]) -> None:
        """Settings read once; the loaders iterated and the metrics logged before the first step."""
        with guard("torch: reading the determinism settings"):
            self.recorder.params(describe.determinism())
        for seen in loaders:
            with guard("torch: recording a data loader"):
                self.loader(*seen)
        for values, step, epoch in metrics:
            self.recorder.metrics(values, step=step, epoch=epoch)
        # autocast is entered around the forward pass, not the step: look at the next training forward
        self._probe = torch.nn.modules.module.register_module_forward_pre_hook(self._autocast_probe)

    def _autocast_probe(self, module: Any, args: Any) -> None:
        if not torch.is_grad_enabled():
            return  # an evaluation pass
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.remove()
            with guard("torch: reading autocast"):
                self.recorder.params(flatten({"amp": describe.autocast_state()}))

    def finish_up(self) -> None:
        """Totals when the run ends: steps per optimizer, epochs, the grad scaler's final scale.
        (No last learning rate: one a scheduler set after the last step was used by no step.)"""
        if self._probe is not None:
            self._probe.remove()
            self._probe = None
        values: dict[str, Any] = {f"{state.label}_steps": state.steps for state in self._states}
        if self.epoch is not None:
            values["epochs"] = self.epoch + 1
        self.recorder.metrics({**values, **self._scale()}, step=self.step, epoch=self.epoch)

    def _scale(self) -> dict[str, float]:
        """The grad scaler's current scale (read at epoch starts and at the end: it waits for the GPU)."""
        for ref in self._scalers:
            scaler = ref()
            if scaler is not None and scaler.is_enabled():
                return {"amp/scale": float(scaler.get_scale())}
        return {}

    # -- optimizers ------------------------------------------------------------------------------
    def add_optimizer(self, optimizer: Any, frame: Any) -> None:
        """An optimizer's first step in this run: what it trains, with what, and how."""
        index = len(self._states)
        label = "optimizer" if index == 0 else f"optimizer_{index}"
        metric = "lr" if index == 0 else f"lr-{type(optimizer).__name__}-{index}"
        state = self.optimizers[optimizer] = _Optimizer(label, metric, primary=index == 0)
        self._states.append(state)  # its totals outlive it: a script's main() returns before the exit
        with guard("torch: recording the learning rate"):
            changed = self._lrs(optimizer, state)
            if changed:
                self.recorder.metrics(changed, step=self.step, epoch=self.epoch)
        with guard("torch: recording an optimizer"):
            self.recorder.params(flatten({label: describe.optimizer_params(optimizer)}))
        with guard("torch: finding the model"):
            self._found(*describe.find_objects(frame, optimizer))

    def _found(self, model: Any, schedulers: list[Any], scaler: Any) -> None:
        """The model, schedulers and grad scaler of an optimizer, each recorded once per run."""
        params: dict[str, Any] = {}
        if model is not None and self._new(model):
            count = sum(1 for key in self._labels if key.startswith("model"))
            name = "model" if count == 0 else f"model_{count}"
            self._labels.append(name)
            params[name] = describe.model_params(model)
        for scheduler in schedulers:
            if self._new(scheduler):
                count = sum(1 for key in self._labels if key.startswith("lr_scheduler"))
                name = "lr_scheduler" if count == 0 else f"lr_scheduler_{count}"
                self._labels.append(name)
                params[name] = describe.scheduler_params(scheduler)
        if scaler is not None and self._new(scaler):
            self._scalers.append(weakref.ref(scaler))
            params["amp"] = describe.scaler_params(scaler)
        self.recorder.params(flatten(params))

    def _new(self, obj: Any) -> bool:
        if any(ref() is obj for ref in self._seen):
            return False
        self._seen.append(weakref.ref(obj))
        return True

    def stepped(self, optimizer: Any, state: _Optimizer) -> None:
        """Hot path, before each step: the learning rates the step is about to use, if changed."""
        if self.every is None or state.steps % self.every == 0:
            groups, logged = optimizer.param_groups, state.logged
            if len(groups) == 1 and len(logged) == 1 and state.plain:  # the common case, without a generator
                same = groups[0]["lr"] == logged[0]
            else:
                same = state.plain and len(groups) == len(logged) and all(
                    g["lr"] == v for g, v in zip(groups, logged))
            if not same:
                changed = self._lrs(optimizer, state)
                if changed:
                    self.recorder.metrics(changed, step=self.step, epoch=self.epoch)
        state.steps += 1
        if state.primary:
            self.step += 1

    def _lrs(self, optimizer: Any, state: _Optimizer) -> dict[str, float]:
        """The learning rates that differ from those last recorded (``lr``, ``lr/pg<j>``)."""
        raw = [g["lr"] for g in optimizer.param_groups]
        state.plain = all(type(lr) is float or type(lr) is int for lr in raw)
        values = [describe.lr_value(lr) for lr in raw]  # None: a tensor on an accelerator, not read
        previous = state.logged if len(state.logged) == len(values) else [None] * len(values)
        state.logged = values
        return {state.metric if len(values) == 1 else f"{state.metric}/pg{j}": value
                for j, (value, before) in enumerate(zip(values, previous)) if value is not None and value != before}

    # -- data and files --------------------------------------------------------------------------
    def loader(self, key: Any, info: dict[str, Any], seeds: dict[str, Any], grad: bool) -> None:
        """A DataLoader starts an iteration (``describe.loader_info``): recorded the first time
        (``train``, ``eval``: gradients on or off), and the training data starting again is the
        next epoch."""
        names = self._loaders.get(key)
        if names is not None and grad in names:
            if grad and self._train is not None and self._train() is key and self.epoch is not None:
                self.epoch += 1
                scale = self._scale()
                if scale:
                    self.recorder.metrics(scale, step=self.step, epoch=self.epoch - 1)
            return
        base = "train" if grad else "eval"
        taken = {name for known in self._loaders.values() for name in known.values()}
        name = base if base not in taken else next(f"{base}_{i}" for i in range(1, 10_000) if f"{base}_{i}" not in taken)
        self._loaders.setdefault(key, {})[grad] = name
        if grad and self._train is None:
            self._train, self.epoch = weakref.ref(key), 0
        self.recorder.data(name, describe.data_target(key), **info)
        self.recorder.seeds(seeds)

    def saved(self, obj: Any, path: Any) -> None:
        """``torch.save(obj, f)`` just wrote a file: a checkpoint if ``obj`` is a model, a
        state_dict or a dict holding one. ``f`` a path, or a file opened on one (``with
        open(path, "wb") as f``: flushed first, so the file holds what was saved); a buffer
        (``io.BytesIO``) has no file to record."""
        contents = describe.checkpoint_contents(obj)
        if contents is None:
            return
        if not isinstance(path, (str, os.PathLike)):
            name = getattr(path, "name", None)
            if not isinstance(name, str) or not os.path.isfile(name) or not callable(getattr(path, "flush", None)):
                return
            path.flush()
            path = name
        meta: Mapping[str, Any] = {"step": self.step, "epoch": self.epoch, "contents": contents, "source": "torch.save"}
        self.recorder.checkpoint(os.fspath(path), {k: v for k, v in meta.items() if v is not None})
