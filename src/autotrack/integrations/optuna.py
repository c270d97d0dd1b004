"""Optuna: a study is a parent run, each trial a child run.

``AutotrackCallback`` (for ``study.optimize(callbacks=[...])``) records each trial when Optuna
hands it over, after it ended: its params, value(s) (``value``, ``values_0``..., or the names of
``study.set_metric_names``), intermediate values (``intermediate_value`` at each reported step),
user attributes (as tags) and its state (complete/pruned/failed -> ``finished``/``killed``/
``failed``). The parent gets every value at step = trial number, the best so far, and the best
params. Optuna calls callbacks only after a trial, so to make a trial's run the active run *while*
it trains -- a Lightning, Keras, XGBoost or scikit-learn fit inside the objective then records
into it instead of starting a run of its own -- wrap the objective: ``cb.track(objective)``.

``autotrack.autolog()`` wraps ``Study.optimize`` (``autolog(disable=True)`` puts it back): it adds
the callback (yours if you gave one), tracks the objective, records the optimize arguments on the
parent and, when ``optimize`` returns, the study's best trial and trial counts, and ends the
parent ``finished`` (``failed``/``killed`` if ``optimize`` raised). With the callback alone the
parent ends when the program does. One study = one parent run, also across processes that share
its storage (``_tune_optuna``). With ``n_jobs > 1`` trials run in threads of one process: their
runs are then never the active run (a fit inside would not know which trial it belongs to).
"""

from __future__ import annotations

import atexit
import inspect
import sys
import threading
import weakref
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from autotrack import _lifecycle
from autotrack._run import active_run, start_run, status_for
from autotrack._safety import guard
from autotrack.integrations import _tune_optuna as coord
from autotrack.integrations._common import (
    Patcher,
    autolog_on,
    explicit_options,
    resolve_options,
)
from autotrack.integrations._tune_common import detach, own_runs, start_child
from autotrack.integrations._tune_optuna import STATUS, Study, frozen, named, summary

__all__ = ["AutotrackCallback", "enable", "disable", "STATUS"]

class AutotrackCallback:
    """A study as a parent run and each trial as a child run.

    Example::

        from autotrack.integrations.optuna import AutotrackCallback
        cb = AutotrackCallback(experiment="churn-search")
        study.optimize(cb.track(objective), n_trials=50, callbacks=[cb])

    Arguments given here beat ``autotrack.autolog()``'s settings, which beat the defaults.
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None) -> None:
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps))
        self._studies: dict[tuple[str, int], Study] = {}
        self._lock = threading.RLock()
        _callbacks.add(self)

    # -- the study's parent run ----------------------------------------------------------------
    def _study(self, study: Any, params: dict[str, Any] | None = None) -> Study:
        key = coord.study_key(study)
        with self._lock:
            record = self._studies.get(key)
            if record is None:
                record = self._studies[key] = self._parent_for(study)
            elif record.owned and record.parent.status != "running":  # optimize() again on this study
                record.parent.reopen()
                detach(record.parent)
            if params and record.parent is not None:
                record.parent.log_params(params)
            return record

    def _parent_for(self, study: Any) -> Study:
        names = study.metric_names
        maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        current = active_run()
        if current is not None and current.id not in own_runs:  # a run the user started: it is the parent
            return Study(current, current.id, current.uri, current.experiment, False, names, maximize)
        found = None
        with guard("optuna: finding the study's run"):
            if coord.shared(study):
                found = coord.find_parent(study) or coord.claim(study)
        if found is not None:
            return Study(None, found["id"], self.options.uri, found.get("experiment"), False, names, maximize)
        parent = start_run(name=study.study_name, uri=self.options.uri, experiment=self.options.experiment,
                           framework="optuna")
        own_runs.add(parent.id)
        detach(parent)
        parent.log_params({"study_name": study.study_name, "directions": [d.name.lower() for d in study.directions],
                           "sampler": type(study.sampler).__name__, "pruner": type(study.pruner).__name__})
        parent.set_tags({"optuna.study": study.study_name, "optuna.storage": type(study._storage).__name__})
        with guard("optuna: publishing the study's run"):
            if coord.shared(study):
                coord.publish(study, parent)
        return Study(parent, parent.id, parent.uri, parent.experiment, True, names, maximize)

    # -- a trial's run while it trains ---------------------------------------------------------
    def track(self, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """The objective, with each trial's run started before it and active while it runs."""
        if getattr(func, "__autotrack_optuna__", None) is self:
            return func

        def objective(trial: Any) -> Any:
            record = child = None
            with guard("optuna: starting the trial's run"):
                record, child = self._trial_begin(trial)
            try:
                result = func(trial)
            except BaseException as exc:
                if child is not None:
                    with guard("optuna: ending the trial's run"):
                        self._trial_raised(record, trial, child, exc)
                raise
            if record is not None:
                record.returned[trial.number] = result
            return result

        objective.__autotrack_optuna__ = self  # type: ignore[attr-defined]
        objective.__wrapped__ = func  # type: ignore[attr-defined]
        return objective

    def _trial_begin(self, trial: Any) -> tuple[Study | None, Any]:
        if _lifecycle.disabled():
            return None, None
        record = self._study(trial.study)
        with self._lock:
            record.in_flight += 1
            if record.in_flight > 1 and not record.concurrent:  # threads (n_jobs > 1): no run is active
                record.concurrent = True
                for other in record.children.values():
                    detach(other)
            child = start_child(record.parent_id, active=not record.concurrent, name=f"trial-{trial.number}",
                                uri=record.uri, experiment=record.experiment)
            record.children[trial.number] = child
        return record, child

    def _trial_raised(self, record: Study, trial: Any, child: Any, exc: BaseException) -> None:
        """Optuna's own rule: TrialPruned -> PRUNED, any other exception -> FAIL; either way its
        callbacks may never run (an uncaught exception leaves ``optimize``), so the run ends here."""
        pruned = isinstance(exc, optuna.TrialPruned)
        stored = frozen(trial)
        self._record_trial(record, trial.study, child, trial.number, dict(trial.params), dict(trial.user_attrs),
                           stored.intermediate_values if stored is not None else {}, None,
                           TrialState.PRUNED if pruned else TrialState.FAIL)
        status, error = status_for(exc)
        record.done.add(trial.number)
        self._end_trial(record, trial.number, child, "killed" if pruned else status, None if pruned else error)

    # -- Optuna's callback: a trial has ended ---------------------------------------------------
    def __call__(self, study: Any, trial: Any) -> None:
        if _lifecycle.disabled():
            return
        with guard("optuna: recording the trial"):
            record = self._study(study)
            with self._lock:
                child = record.children.get(trial.number)
                done = trial.number in record.done
                record.done.discard(trial.number)
            if child is None and not done and trial.number not in record.returned:  # not tracked: after the fact
                child = start_child(record.parent_id, active=False, name=f"trial-{trial.number}",
                                    uri=record.uri, experiment=record.experiment)
            if child is not None:
                self._record_trial(record, study, child, trial.number, trial.params, trial.user_attrs,
                                   trial.intermediate_values, trial.values, trial.state)
                error = None
                if trial.state == TrialState.FAIL and trial.number in record.returned:
                    error = f"Optuna failed trial {trial.number}: the objective returned " \
                            f"{record.returned[trial.number]!r}, which is not a valid value"
                elif trial.state == TrialState.FAIL:  # Optuna keeps no trace of why: its log has it
                    error = f"Optuna failed trial {trial.number}: the objective raised or returned an invalid " \
                            "value (Optuna's log says which; cb.track(objective) records the traceback)"
                self._end_trial(record, trial.number, child, STATUS.get(trial.state, "finished"), error)
            record.returned.pop(trial.number, None)
            self._record_in_parent(record, trial)

    def _record_trial(self, record: Study, study: Any, child: Any, number: int, params: dict[str, Any],
                      user_attrs: dict[str, Any], intermediate: dict[int, float], values: Any, state: Any) -> None:
        child.log_params(params)
        child.set_tags({"optuna.study": study.study_name, "optuna.trial_number": number, "optuna.state": state.name,
                        **{f"optuna.user_attr.{k}": v for k, v in user_attrs.items()}})
        for step in sorted(intermediate):
            child.log_metrics({"intermediate_value": intermediate[step]}, step=step)
        if values is not None:
            child.log_metrics(named(record, values), step=max(intermediate, default=0))
        if child.framework is None:  # no framework fit joined it
            child.set_framework("optuna")

    def _end_trial(self, record: Study, number: int, child: Any, status: str, error: str | None) -> None:
        with self._lock:
            if record.children.pop(number, None) is not None:
                record.in_flight -= 1
        child.finish(status, error)

    def _record_in_parent(self, record: Study, trial: Any) -> None:
        parent = record.parent
        if parent is None or trial.state != TrialState.COMPLETE or not trial.values:
            return
        parent.log_metrics(named(record, trial.values), step=trial.number)
        if len(trial.values) == 1:
            value = trial.values[0]
            if record.best is None or (value > record.best if record.maximize else value < record.best):
                record.best = value
                parent.log_params({"best_params": trial.params, "best_trial": trial.number})
            parent.log_metrics({"best_value": record.best}, step=trial.number)

    # -- for autolog's wrapper of Study.optimize ------------------------------------------------
    def begin_study(self, study: Any, params: dict[str, Any], concurrent: bool = False) -> None:
        """``concurrent``: trials will run in threads (``n_jobs != 1``): none of their runs is active."""
        if not _lifecycle.disabled():
            with guard("optuna: starting the study's run"):
                self._study(study, params).concurrent = concurrent

    def end_study(self, study: Any, exc: BaseException | None = None) -> None:
        """``optimize`` returned (or raised): the study's totals, and the parent ends if it is ours."""
        with self._lock:
            record = self._studies.get(coord.study_key(study))
        if record is None or record.parent is None:
            return
        with guard("optuna: recording the study"):
            summary(record.parent, study)
        if record.owned:
            status, error = status_for(exc)
            record.parent.finish(status, error)

    def close(self, exc: BaseException | None = None) -> None:
        """End the parent runs this callback started (at the program's end, or when you call it)."""
        with self._lock:
            records = list(self._studies.values())
        status, error = status_for(exc)
        for record in records:
            if record.owned and record.parent.status == "running":
                with guard("optuna: ending the study's run"):
                    record.parent.finish(status, error)


_callbacks: "weakref.WeakSet[AutotrackCallback]" = weakref.WeakSet()  # their parents end with the program


@atexit.register
def _close_all() -> None:
    exc = getattr(sys, "last_value", None) if hasattr(sys, "last_type") else None  # as _lifecycle reads it
    for cb in list(_callbacks):
        cb.close(exc)


_patcher = Patcher()
_OPTIMIZE = inspect.signature(optuna.Study.optimize)


def _optimize(wrapped: Any, study: Any, args: tuple, kwargs: dict) -> Any:
    if study is None or not autolog_on("optuna"):
        return wrapped(*args, **kwargs)
    try:
        bound = _OPTIMIZE.bind(study, *args, **kwargs)
    except TypeError:
        return wrapped(*args, **kwargs)  # Optuna will say what is wrong with the call
    arguments = {**{k: p.default for k, p in _OPTIMIZE.parameters.items() if p.default is not p.empty},
                 **bound.arguments}
    arguments.pop("self", None)
    callbacks = list(arguments.get("callbacks") or [])
    tracked = getattr(arguments["func"], "__autotrack_optuna__", None)  # you wrote cb.track(objective)
    cb = tracked or next((c for c in callbacks if isinstance(c, AutotrackCallback)), None) or AutotrackCallback()
    if cb not in callbacks:
        callbacks.append(cb)
    arguments["callbacks"] = callbacks
    arguments["func"] = cb.track(arguments["func"])
    catch = arguments.get("catch") or ()
    cb.begin_study(study, {"optimize": {
        "n_trials": arguments.get("n_trials"), "timeout": arguments.get("timeout"), "n_jobs": arguments.get("n_jobs"),
        "catch": [c.__name__ for c in (catch if isinstance(catch, (tuple, list)) else (catch,))],
        "gc_after_trial": arguments.get("gc_after_trial")}}, concurrent=arguments.get("n_jobs") != 1)
    try:
        result = wrapped(**arguments)
    except BaseException as exc:
        cb.end_study(study, exc)
        raise
    cb.end_study(study)
    return result


def enable(config: Any) -> None:
    """Called by ``autotrack.autolog()``: wrap ``optuna.Study.optimize``."""
    if not _patcher:
        _patcher.wrap(optuna.study.Study, "optimize", _optimize)


def disable() -> None:
    """Called by ``autotrack.autolog(disable=True)``: put ``Study.optimize`` back."""
    _patcher.undo()
