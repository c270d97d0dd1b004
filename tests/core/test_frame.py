"""``runs_dataframe``: one row per run, newest first, MLflow-style prefixed columns."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

import autotrack

pd = pytest.importorskip("pandas")


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AUTOTRACK_URI", "AUTOTRACK_EXPERIMENT", "AUTOTRACK_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])


@pytest.fixture
def uri(tmp_path: Path) -> str:
    uri = str(tmp_path / "store")
    with autotrack.start_run(name="old", uri=uri, experiment="a", params={"lr": 0.1, "layers": [64, 32]},
                             tags={"team": "ml"}) as run:
        run.log_metrics({"loss": 1.0, "acc": 0.5}, step=0)
        run.log_metrics({"loss": 0.25}, step=1)
    with autotrack.start_run(name="new", uri=uri, experiment="b", params={"lr": 0.01, "opt": {"name": "adam"}}) as run:
        run.log_metrics({"loss": math.nan}, step=0)
    return uri


def test_columns_and_values(uri: str) -> None:
    df = autotrack.runs_dataframe(uri)
    assert list(df.columns) == [
        "id", "name", "experiment", "status", "framework", "parent_id", "start_time", "end_time", "duration",
        "params.layers", "params.lr", "params.opt/name", "metrics.acc", "metrics.loss", "tags.team",
    ]
    assert list(df["name"]) == ["new", "old"]  # newest first
    old, new = df.iloc[1], df.iloc[0]
    assert old["params.lr"] == 0.1 and new["params.lr"] == 0.01
    assert json.loads(old["params.layers"]) == [64, 32]  # lists as their JSON text
    assert pd.isna(new["params.layers"])
    assert new["params.opt/name"] == "adam"
    assert old["metrics.loss"] == 0.25 and old["metrics.acc"] == 0.5  # the last value of each metric
    assert math.isnan(new["metrics.loss"]) and math.isnan(new["metrics.acc"])
    assert old["tags.team"] == "ml"
    assert set(df["status"]) == {"finished"}
    assert list(df["experiment"]) == ["b", "a"]
    assert str(df["start_time"].dt.tz) == "UTC" and (df["end_time"] >= df["start_time"]).all()
    assert df["duration"].dtype == "float64" and (df["duration"] >= 0).all()
    assert df["id"].tolist() == [r.id for r in autotrack.runs(uri)]


def test_filters(uri: str) -> None:
    df = autotrack.runs_dataframe(uri, experiment="a")
    assert list(df["name"]) == ["old"]
    assert "params.opt/name" not in df.columns
    assert autotrack.runs_dataframe(uri, status="failed").empty


def test_empty_store(tmp_path: Path) -> None:
    df = autotrack.runs_dataframe(str(tmp_path / "nothing"))
    assert df.empty and list(df.columns)[:3] == ["id", "name", "experiment"]


def test_missing_pandas_is_a_clear_import_error(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"runs_dataframe needs pandas: pip install 'autotrack-ml\[pandas\]'"):
        autotrack.runs_dataframe(uri)
