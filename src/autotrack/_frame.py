"""Runs as a pandas DataFrame, one row per run, in the shape MLflow's ``search_runs`` made familiar.

Notebooks compare runs with pandas (``df.sort_values("metrics.val_loss")``), so the columns are
flat and prefixed: ``params.<name>``, ``metrics.<name>`` (the last value) and ``tags.<name>``.
pandas is an optional dependency: it is imported here, inside the function, and only when called.
"""

from __future__ import annotations

import json
from typing import Any

from autotrack._records import runs

__all__ = ["runs_dataframe", "BASE_COLUMNS"]

BASE_COLUMNS = ("id", "name", "experiment", "status", "framework", "parent_id",
                "start_time", "end_time", "duration")


def _cell(value: Any) -> Any:
    """Lists and dicts become their JSON text: a cell holding a list breaks pandas comparisons."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict), default=str)
    return value


def runs_dataframe(uri: str | None = None, experiment: str | None = None, status: str | None = None) -> Any:
    """A ``pandas.DataFrame`` of the runs in the store, newest first.

    Columns: ``id, name, experiment, status, framework, parent_id, start_time, end_time,
    duration`` (seconds), then ``params.*``, ``metrics.*`` (last value of each metric) and
    ``tags.*``, each group sorted by name. A run without some param/metric/tag has NaN/None there.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("runs_dataframe needs pandas: pip install 'autotrack-ml[pandas]'") from None

    records = runs(uri, experiment=experiment, status=status)
    rows: list[dict[str, Any]] = []
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    for run in records:
        row: dict[str, Any] = {
            "id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
            "framework": run.framework, "parent_id": run.parent_id, "start_time": run.start_time,
            "end_time": run.end_time, "duration": run.duration,
        }
        for key, value in run.params.items():
            row[f"params.{key}"] = _cell(value)
            params.add(key)
        for key, value in run.final_metrics.items():
            row[f"metrics.{key}"] = value
            metrics.add(key)
        for key, value in run.tags.items():
            row[f"tags.{key}"] = _cell(value)
            tags.add(key)
        rows.append(row)
    columns = [*BASE_COLUMNS,
               *(f"params.{k}" for k in sorted(params)),
               *(f"metrics.{k}" for k in sorted(metrics)),
               *(f"tags.{k}" for k in sorted(tags))]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in ("duration", *(f"metrics.{k}" for k in metrics)):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame
