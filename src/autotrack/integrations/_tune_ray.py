"""Ray Tune, in the trial's worker process: the trial's run, recorded where the trial trains.

The driver's ``AutotrackLoggerCallback`` sends ``begin`` to a trial's actor as soon as Tune has
started it and before Tune asks it to train (``actor.__ray_call__``: the two calls leave the
driver in that order, and an actor runs one caller's calls in order). ``begin`` starts the
trial's run in that process, on whatever node it is, with the trial's config as params, and
makes it the active run, so that a framework fit inside the trainable records into it; with
``autolog()`` on in the driver it switches autolog on here too, with the same settings.

In the worker, and only there, it wraps Ray's methods once per process: ``_TrainSession.report``
(what ``ray.tune.report`` calls: the reported numbers become metrics at step = the report's
number, a reported checkpoint's folder a checkpoint artifact, pinned before Tune moves it), and
the trainable class's ``step`` (one that raised ends the run ``failed``; the function's end,
``finished``) and ``cleanup`` (a trial that Tune stops -- a stopping criterion, a scheduler --
ends ``finished``). A worker killed outright leaves its run with a
heartbeat that goes stale: readers report it ``killed``.
"""

from __future__ import annotations

import os
from typing import Any

from autotrack import _forksafe
from autotrack._run import status_for
from autotrack._safety import guard
from autotrack.integrations._common import Patcher
from autotrack.integrations._tune_common import numbers_only, start_child

__all__ = ["begin", "end", "current"]

_DUPLICATE = "__duplicate__"  # ray.tune.result.RESULT_DUPLICATE: the function's end, not a report
_patcher = Patcher()
_patched: set[type] = set()
_lock = _forksafe.lock()


class _Trial:
    def __init__(self, run: Any, log_checkpoints: Any) -> None:
        self.run, self.log_checkpoints = run, log_checkpoints
        self.reports = 0
        self.checkpoints = 0


current: _Trial | None = None


def begin(actor: Any, payload: dict[str, Any]) -> str | None:
    """In the trial's actor: start its run (ending the previous trial's, if the actor is reused).
    Returns the run's id, for the driver."""
    global current
    with guard("ray: starting the trial's run in its worker"):
        _install(type(actor))
        end("finished")
        if payload.get("autolog") is not None:
            import autotrack

            autotrack.autolog(**payload["autolog"])
        run = start_child(payload["parent_id"], active=True, name=payload["name"], uri=payload["uri"],
                          experiment=payload["experiment"], framework=None)
        run.log_params(dict(getattr(actor, "config", None) or {}))
        run.set_tags({"ray.trial_id": payload["trial_id"], "ray.trial_name": payload["name"],
                      "ray.experiment": payload["experiment_name"]})
        with _lock:
            current = _Trial(run, payload["log_checkpoints"])
        return run.id
    return None


def end(status: str, error: str | None = None) -> None:
    """End the trial's run of this process, if one is open."""
    global current
    with _lock:
        trial, current = current, None
    if trial is not None and trial.run.status == "running":
        if trial.run.framework is None:  # no framework fit joined it
            trial.run.set_framework("ray")
        trial.run.finish(status, error)


def _report(wrapped: Any, session: Any, args: tuple, kwargs: dict) -> Any:
    trial = current
    if trial is not None:
        with guard("ray: recording a report"):
            metrics = args[0] if args else kwargs.get("metrics") or {}
            checkpoint = args[1] if len(args) > 1 else kwargs.get("checkpoint")
            if _DUPLICATE not in metrics:
                trial.reports += 1
                trial.run.log_metrics(numbers_only(metrics), step=trial.reports)
            path = getattr(checkpoint, "path", None)
            if checkpoint is not None and trial.log_checkpoints and isinstance(path, str) and os.path.isdir(path):
                name = f"checkpoints/checkpoint_{trial.checkpoints:06d}"  # the name Tune gives it in storage
                trial.checkpoints += 1
                trial.run.log_artifact(path, name=name, kind="checkpoint",
                                       metadata={"training_iteration": trial.reports, "source": "ray.tune.report"})
    return wrapped(*args, **kwargs)


def _step(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        with guard("ray: ending the trial's run"):
            end(*status_for(exc))
        raise
    if isinstance(result, dict) and (result.get("done") or result.get(_DUPLICATE)):
        with guard("ray: ending the trial's run"):
            end("finished")
    return result


def _cleanup(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        return wrapped(*args, **kwargs)
    finally:
        with guard("ray: ending the trial's run"):
            end("finished")


def _install(trainable: type) -> None:
    """Once per worker process and trainable class (never in the driver, which runs no trial).
    ``step`` and ``cleanup``, not ``train`` and ``stop``: Ray calls an actor's methods as they were
    when the actor was made, and ``train``/``stop`` call these two through the instance."""
    from ray.train._internal.session import _TrainSession

    with _lock:
        if not _patched:
            _patcher.wrap(_TrainSession, "report", _report)
        if trainable not in _patched:
            _patched.add(trainable)
            _patcher.wrap(trainable, "step", _step)
            _patcher.wrap(trainable, "cleanup", _cleanup)
