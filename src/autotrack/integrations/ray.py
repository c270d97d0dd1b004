"""Ray Tune: an experiment is a parent run, each trial a child run recorded by the trial's worker.

``AutotrackLoggerCallback`` (a ``ray.tune.logger.LoggerCallback``, for
``tune.Tuner(..., run_config=tune.RunConfig(callbacks=[...]))``) runs in the driver. It starts the
experiment's run when the first trial starts (or joins a run you started) and, for every trial,
has the trial's own worker process -- on whatever node Ray put it -- record the trial's run into
the same store or server (``_tune_ray``): the trial's config as params, every ``tune.report``'s
numbers as metrics at step = the report's number (Ray's ``training_iteration``), each reported
checkpoint's files as a checkpoint artifact, the worker's environment, and the trial's end
(``finished``, or ``failed`` with the traceback). A framework fit inside the trainable
(Lightning, Keras, XGBoost...) records into the trial's run. When the experiment ends the parent
gets the trials' counts by status and ends ``finished``.

The store must be one every node reaches: a shared path, S3, or a tracking server
(``AUTOTRACK_URI=http://...``; give the workers ``AUTOTRACK_TOKEN`` with Ray's
``runtime_env={"env_vars": ...}``). A relative local path is made absolute in the driver.

``autotrack.autolog()`` wraps ``ray.tune.run`` (what ``Tuner.fit`` calls; ``autolog(disable=True)``
puts it back) to add the callback when you gave none, and switches autolog on in each trial's
worker with the same settings.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import ray
from ray.tune.impl import tuner_internal
from ray.tune.logger import LoggerCallback

from autotrack import _autolog, _lifecycle
from autotrack._run import active_run, start_run
from autotrack._safety import guard
from autotrack.integrations import _tune_ray
from autotrack.integrations._common import (
    Patcher,
    autolog_on,
    explicit_options,
    resolve_options,
)
from autotrack.integrations._tune_common import detach, own_runs

__all__ = ["AutotrackLoggerCallback", "enable", "disable"]


class AutotrackLoggerCallback(LoggerCallback):
    """The Tune experiment as a parent run; each trial a child run recorded in its worker.

    Example::

        from autotrack.integrations.ray import AutotrackLoggerCallback
        tuner = tune.Tuner(train_fn, param_space={"lr": tune.loguniform(1e-4, 1e-1)},
                           run_config=tune.RunConfig(callbacks=[AutotrackLoggerCallback()]))
        tuner.fit()

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults
    (``log_checkpoints=False``: reported checkpoints are not stored).
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None) -> None:
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps))
        self.parent: Any = None
        self._owned = False
        self._spec: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}  # trial id -> the worker's answer to begin (a Ray ObjectRef)
        self._autolog: dict[str, Any] | None = None

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        self._spec = {"stop": stop, "num_samples": num_samples, "total_num_samples": total_num_samples,
                      **{k: v for k, v in info.items() if k == "time_budget_s"}}
        config = _autolog.current_config()
        self._autolog = None if config is None else {
            "uri": config.uri, "experiment": config.experiment, "log_checkpoints": config.log_checkpoints,
            "log_models": config.log_models, "log_every_n_steps": config.log_every_n_steps,
            "register_as": config.register_as, "frameworks": _autolog.wanted_frameworks()}

    def _begin_parent(self, name: str) -> None:
        current = active_run()
        if current is not None and current.id not in own_runs:  # a run you started: the experiment's run
            self.parent, self._owned = current, False
        else:
            self.parent, self._owned = start_run(name=name, uri=self.options.uri, experiment=self.options.experiment,
                                                 framework="ray"), True
            own_runs.add(self.parent.id)
            detach(self.parent)
        self.parent.log_params({k: v for k, v in self._spec.items() if v is not None})
        self.parent.set_tags({"ray.experiment": name, "ray.version": ray.__version__})

    def log_trial_start(self, trial: Any) -> None:
        if _lifecycle.disabled():
            return
        with guard("ray: starting the trial's run"):
            if self.parent is None:
                self._begin_parent(trial.experiment_dir_name)
            actor = trial.temporary_state.ray_actor
            if actor is None or not self.parent.id:
                return
            payload = {"parent_id": self.parent.id, "uri": _absolute(self.parent.uri),
                       "experiment": self.parent.experiment, "name": str(trial),
                       "trial_id": trial.trial_id, "experiment_name": trial.experiment_dir_name,
                       "log_checkpoints": self.options.log_checkpoints, "autolog": self._autolog}
            self._pending[trial.trial_id] = actor.__ray_call__.remote(_tune_ray.begin, payload)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        ref = self._pending.pop(trial.trial_id, None)
        if ref is not None:
            with guard("ray: the trial's run in its worker"):
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    ray.get(ready[0])  # an error starting it there (raised here in strict mode)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.parent is None:
            return
        with guard("ray: ending the experiment's run"):
            counts: dict[str, int] = {}
            for trial in trials:
                counts[f"trials_{str(trial.status).lower()}"] = counts.get(f"trials_{str(trial.status).lower()}", 0) + 1
            self.parent.log_metrics(counts, step=0)
            if self._owned:
                self.parent.finish("finished")
        self.parent, self._owned = None, False


def _absolute(uri: str) -> str:
    """A local path as every worker reads it (Ray starts trials in their own folders)."""
    head, sep, _ = uri.partition("://")
    if sep and len(head) > 1:
        return uri
    return os.path.abspath(uri)


_patcher = Patcher()


def _run(wrapped: Any, _instance: Any, args: tuple, kwargs: dict) -> Any:
    if autolog_on("ray"):
        callbacks = list(kwargs.get("callbacks") or [])
        if not any(isinstance(c, AutotrackLoggerCallback) for c in callbacks):
            kwargs = {**kwargs, "callbacks": [*callbacks, AutotrackLoggerCallback()]}
    return wrapped(*args, **kwargs)


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``: wrap ``ray.tune.run`` where Tune and its users name it."""
    if _patcher:
        return
    # by sys.modules, not attributes: autolog() before the import enables this adapter while
    # ray.tune is still being imported, before Ray sets it as an attribute of ray
    for module in (importlib.import_module("ray.tune.tune"), tuner_internal, importlib.import_module("ray.tune")):
        if getattr(module, "run", None) is not None:
            _patcher.wrap(module, "run", _run)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put ``ray.tune.run`` back."""
    _patcher.undo()
