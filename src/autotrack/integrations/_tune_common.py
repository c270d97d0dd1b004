"""What the two hyperparameter-search adapters (Optuna, Ray Tune) share.

A search is a *parent* run with one *child* run per trial. A child run becomes the active run
while its trial trains, so that a framework fit inside the trial (Lightning, Keras, XGBoost,
scikit-learn) records into it instead of starting a run of its own. The parent is never the
active run: a fit after the search (retraining the best model) must not land in the search's
run, and with trials running in parallel threads no fit could tell which trial it belongs to.
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping

from autotrack import _run
from autotrack._noop import NoopRun

__all__ = ["numbers_only", "detach", "own_runs", "start_child"]

own_runs: set[str] = set()  # ids of the parent and child runs these adapters started in this process


def numbers_only(values: Mapping[str, Any], prefix: str = "") -> dict[str, float | int]:
    """The real numbers of a reported result (nested dicts joined with ``/``): a trial's result
    holds strings, dates and lists too (Ray adds ``hostname``, ``date``, ``config``), which are
    no metrics and would only make ``log_metrics`` warn."""
    out: dict[str, float | int] = {}
    for key, value in values.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(numbers_only(value, name))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[name] = value  # numpy scalars too: log_metrics makes them Python numbers
        elif getattr(value, "shape", None) == () and hasattr(value, "item"):  # a 0-d array or tensor
            item = value.item()
            if isinstance(item, numbers.Real) and not isinstance(item, bool):
                out[name] = item
    return out


def detach(run: Any) -> None:
    """Not the active run any more (it keeps recording)."""
    if not isinstance(run, NoopRun):
        _run.deactivate(run)


def start_child(parent_id: str | None, *, active: bool, **kwargs: Any) -> Any:
    """A trial's run under ``parent_id``; the active run only when ``active``."""
    child = _run.start_run(parent_id=parent_id, **kwargs)
    if not isinstance(child, NoopRun):
        own_runs.add(child.id)
        if not active:
            detach(child)
    return child
