"""Hyperparameter searches (``GridSearchCV``, ``RandomizedSearchCV``, the halving variants and any
search exposing ``cv_results_``): best params and score on the parent run, the full
``cv_results_`` as a CSV artifact, and one child run per best candidate.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
from typing import Any

import numpy as np

from autotrack._run import start_run
from autotrack._values import to_json
from autotrack.integrations._common import writes
from autotrack.integrations._sklearn_record import clean, seeds

__all__ = ["is_search", "log_search", "candidate_order"]


def is_search(est: Any) -> bool:
    results = getattr(est, "cv_results_", None)
    return isinstance(results, dict) and "params" in results


def _rank_key(search: Any, results: dict[str, Any]) -> str | None:
    refit = getattr(search, "refit", None)
    if isinstance(refit, str) and f"rank_test_{refit}" in results:
        return f"rank_test_{refit}"
    if "rank_test_score" in results:
        return "rank_test_score"
    return next((k for k in results if k.startswith("rank_test_")), None)


def candidate_order(search: Any, results: dict[str, Any]) -> list[int]:
    """Row indices of ``cv_results_``, best first, one row per distinct candidate.

    The best is the search's own ``best_index_`` (what it refitted, whatever ``refit`` is: a
    scorer's name or a callable); the others follow by rank. Successive halving evaluates
    survivors again with more resources: a candidate that reached a later iteration beats any
    that did not, whatever its rank, and only its last row counts.
    """
    n = len(results["params"])
    key = _rank_key(search, results)
    ranks = results[key] if key else np.arange(1, n + 1)
    iters = results.get("iter")
    best = getattr(search, "best_index_", None)
    order = sorted(range(n), key=lambda i: (i != best, -int(iters[i]) if iters is not None else 0, int(ranks[i]), i))
    seen: set[str] = set()
    unique = []
    for i in order:
        ident = json.dumps(to_json(clean(results["params"][i])), sort_keys=True)
        if ident not in seen:
            seen.add(ident)
            unique.append(i)
    return unique


def _cell(value: Any) -> Any:
    if value is np.ma.masked:
        return ""
    if isinstance(value, dict):
        return json.dumps(to_json(clean(value)), sort_keys=True)
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (numbers.Number, str)) or value is None else json.dumps(to_json(clean(value)))


def _csv(results: dict[str, Any]) -> tuple[bytes, int]:
    """``cv_results_`` as CSV bytes, made here (the search may be fit again and change them) and
    written by the run's writer thread: no file system call on the training thread."""
    keys = list(results)
    n = len(results["params"])
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(keys)
    for i in range(n):
        writer.writerow([_cell(results[k][i]) for k in keys])
    return text.getvalue().encode("utf-8"), n


def _scores(results: dict[str, Any], i: int) -> dict[str, float]:
    out = {}
    for key, column in results.items():
        if key == "params" or key.startswith("param_"):
            continue
        value = column[i]
        if value is not np.ma.masked and isinstance(value, (numbers.Real, np.number)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def log_search(run: Any, search: Any, max_tuning_runs: int | None) -> None:
    """Parent run: best params/score, cv_results.csv; then children for the best candidates."""
    results = search.cv_results_
    best: dict[str, Any] = {}
    if hasattr(search, "best_params_"):
        best["best_params"] = clean(search.best_params_)
    if hasattr(search, "best_index_"):
        best["best_index"] = int(search.best_index_)
    if best:
        run.log_params(best)
    score = getattr(search, "best_score_", None)
    if isinstance(score, (numbers.Real, np.number)):
        run.log_metrics({"best_score": float(score)}, step=0)
    data, rows = _csv(results)
    run._log_made("cv_results.csv", "file", {"format": "csv", "rows": rows, "source": "cv_results_"}, writes(data))
    order = candidate_order(search, results)
    if max_tuning_runs is not None:
        order = order[:max_tuning_runs]
    base = type(getattr(search, "estimator", search)).__name__
    key = _rank_key(search, results)
    for position, i in reversed(list(enumerate(order))):  # the best last: `autotrack show last` shows it
        params = clean(results["params"][i])
        tags = {"candidate_index": i, "position": position + 1}
        if key:
            tags["rank"] = int(results[key][i])
        with start_run(name=f"{base}-candidate-{i}", uri=run.uri, experiment=run.experiment,
                       framework="sklearn", parent_id=run.id) as child:
            child.log_params(params)
            child.set_tags(tags)
            found = seeds(params)
            if found:
                child.log_seeds(found)
            child.log_metrics(_scores(results, i))
