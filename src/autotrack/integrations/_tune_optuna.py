"""Optuna: one parent run per study, also when several processes share the study's storage.

A study in an RDB or journal storage (``optuna.create_study(storage="sqlite:///s.db",
load_if_exists=True)`` in several processes or machines) is one search, so it gets one parent
run: the process that records first starts it and writes its id into the study's system
attributes (``autotrack:run``); every other process reads it there and files its trials' runs
under it. The study's storage is what all these processes share, so it is also where they agree.

Optuna's storage has no compare-and-set, so starting the parent is settled by claims: a process
that finds no parent writes a claim (``autotrack:claim:<token>`` = ``[time, token]``), waits
``SETTLE_S``, and reads the attributes again. If a parent appeared meanwhile, it joins it; if its
own claim is the smallest, it starts the parent and writes its id at once; otherwise it waits (up
to ``WAIT_S``) for the winner's id. Two processes can only both start a parent if one claimed
after the other had read, and then the first wrote its id before the second reads (a start takes
milliseconds, far below ``SETTLE_S``). A study in memory is one process's: no claim, no wait.

The storage's private handle (``study._storage``, ``study._study_id``) is the only way to reach
system attributes, which Optuna reserves for libraries like this one (user attributes are the
user's); if a future Optuna renames it, each process records a parent run of its own.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from optuna.trial import TrialState

__all__ = ["ATTR", "CLAIM", "SETTLE_S", "WAIT_S", "STATUS", "Study", "study_key", "shared", "find_parent", "claim",
           "publish", "named", "frozen", "summary"]

ATTR = "autotrack:run"
CLAIM = "autotrack:claim:"
SETTLE_S = 0.5
WAIT_S = 10.0
STATUS = {TrialState.COMPLETE: "finished", TrialState.PRUNED: "killed", TrialState.FAIL: "failed"}


class Study:
    """One study as this process records it."""

    def __init__(self, parent: Any, parent_id: str | None, uri: str | None, experiment: str | None,
                 owned: bool, names: list[str] | None, maximize: bool) -> None:
        self.parent, self.parent_id, self.uri, self.experiment = parent, parent_id, uri, experiment
        self.owned, self.names, self.maximize = owned, names, maximize
        self.children: dict[int, Any] = {}  # trial number -> its run, while the trial trains
        self.returned: dict[int, Any] = {}  # trial number -> what the objective returned
        self.done: set[int] = set()  # trials whose run ended when the objective raised
        self.in_flight = 0
        self.concurrent = False
        self.best: float | None = None


def study_key(study: Any) -> tuple[str, int]:
    return study.study_name, getattr(study, "_study_id", -1)


def shared(study: Any) -> bool:
    """Whether other processes can open this study (any storage but the in-memory one)."""
    from optuna.storages import InMemoryStorage

    storage = getattr(study, "_storage", None)
    return storage is not None and not isinstance(storage, InMemoryStorage)


def _attrs(study: Any) -> dict[str, Any]:
    return study._storage.get_study_system_attrs(study._study_id)


def find_parent(study: Any) -> dict[str, Any] | None:
    """The parent run another process (or an earlier session) published for this study."""
    found = _attrs(study).get(ATTR)
    return found if isinstance(found, dict) and isinstance(found.get("id"), str) else None


def claim(study: Any) -> dict[str, Any] | None:
    """Settle who starts the study's parent: None if this process should (and then publishes it
    at once), else the parent another process published."""
    token = uuid.uuid4().hex
    study._storage.set_study_system_attr(study._study_id, CLAIM + token, [time.time(), token])
    time.sleep(SETTLE_S)
    attrs = _attrs(study)
    found = attrs.get(ATTR)
    if isinstance(found, dict):
        return found
    claims = sorted(tuple(v) for k, v in attrs.items() if k.startswith(CLAIM) and isinstance(v, list) and len(v) == 2)
    if not claims or claims[0][1] == token:
        return None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # the winner publishes within milliseconds of its read
        time.sleep(0.05)
        found = find_parent(study)
        if found is not None:
            return found
    return None  # the winner died before publishing: start one here


def publish(study: Any, run: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, ATTR,
                                         {"id": run.id, "experiment": run.experiment, "time": time.time()})


def named(record: Study, values: Any) -> dict[str, float]:
    values = list(values)
    names = record.names if record.names and len(record.names) == len(values) else \
        ["value"] if len(values) == 1 else [f"values_{i}" for i in range(len(values))]
    return dict(zip(names, values))


def frozen(trial: Any) -> Any:
    """The trial as stored (its intermediate values): ``optuna.trial.Trial`` keeps them private."""
    try:
        return trial.study._storage.get_trial(trial._trial_id)
    except Exception:  # noqa: BLE001 - a future Optuna: the run lacks them, nothing else
        return None


def summary(parent: Any, study: Any) -> None:
    trials = study.get_trials(deepcopy=False)
    counts = {f"trials_{state.name.lower()}": sum(t.state == state for t in trials) for state in STATUS}
    last = max((t.number for t in trials), default=0)
    parent.log_metrics(counts, step=last)
    if len(study.directions) == 1 and counts["trials_complete"]:  # every process's trials: the study's best
        best = study.best_trial
        parent.log_params({"best_params": best.params, "best_trial": best.number})
        parent.log_metrics({"best_value": best.value}, step=last)
