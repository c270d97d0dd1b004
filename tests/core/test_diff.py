"""``diff_runs``: only what differs, by section; NaN equals NaN; plain data for any front end."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import autotrack
from autotrack._diff import diff_runs, same_value


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AUTOTRACK_URI", "AUTOTRACK_EXPERIMENT", "AUTOTRACK_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])  # no git capture of whatever repo pytest runs in


def _record(uri: str, *, params: dict[str, Any] | None = None, seeds: dict[str, Any] | None = None,
            metrics: list[dict[str, float]] | None = None, data: Any = None, experiment: str = "exp") -> Any:
    with autotrack.start_run(uri=uri, experiment=experiment, params=params or {"lr": 0.1, "layers": [8, 8]}) as run:
        run.log_seeds(seeds or {"random.seed": 1})
        for step, values in enumerate(metrics or [{"loss": 1.0}, {"loss": 0.5}]):
            run.log_metrics(values, step=step)
        run.log_data("train", np.arange(12).reshape(3, 4) if data is None else data)
    return autotrack.get_run(run.id, uri=uri)


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def test_identical_runs_have_no_differences(uri: str) -> None:
    a, b = _record(uri), _record(uri)
    assert diff_runs(a, b) == {}
    assert diff_runs(a, a) == {}


def test_changed_param(uri: str) -> None:
    a = _record(uri)
    b = _record(uri, params={"lr": 0.01, "layers": [8, 8], "dropout": 0.2})
    assert diff_runs(a, b) == {"params": {"dropout": (None, 0.2), "lr": (0.1, 0.01)}}


def test_changed_seed(uri: str) -> None:
    a, b = _record(uri, seeds={"random.seed": 1}), _record(uri, seeds={"random.seed": 2})
    assert diff_runs(a, b) == {"seeds": {"random.seed": (1, 2)}}


def test_changed_and_missing_metric(uri: str) -> None:
    a = _record(uri, metrics=[{"loss": 1.0, "acc": 0.5}, {"loss": 0.5}])
    b = _record(uri, metrics=[{"loss": 1.0}, {"loss": 0.4}])
    assert diff_runs(a, b) == {"metrics": {"acc": (0.5, None), "loss": (0.5, 0.4)}}


def test_nan_equals_nan(uri: str) -> None:
    a = _record(uri, metrics=[{"loss": 1.0}, {"loss": math.nan}], params={"lr": math.nan})
    b = _record(uri, metrics=[{"loss": 2.0}, {"loss": math.nan}], params={"lr": math.nan})
    assert diff_runs(a, b) == {}
    c = _record(uri, metrics=[{"loss": 0.3}], params={"lr": math.nan})
    found = diff_runs(a, c)
    assert list(found) == ["metrics"]
    assert math.isnan(found["metrics"]["loss"][0]) and found["metrics"]["loss"][1] == 0.3


def test_changed_data(uri: str) -> None:
    a = _record(uri)
    b = _record(uri, data=np.arange(12).reshape(3, 4) + 1)  # same shape, other content
    found = diff_runs(a, b)
    assert list(found) == ["data"]
    assert list(found["data"]) == ["train/sha256"]
    c = _record(uri, data=np.arange(16, dtype=np.float32).reshape(4, 4))
    found = diff_runs(a, c)["data"]
    assert found["train/shape"] == ([3, 4], [4, 4])
    assert found["train/rows"] == (3, 4)
    assert found["train/dtype"] == ("int64", "float32")
    assert "train/sha256" in found


def test_changed_experiment_is_a_run_difference(uri: str) -> None:
    a, b = _record(uri), _record(uri, experiment="other")
    assert diff_runs(a, b) == {"run": {"experiment": ("exp", "other")}}


def test_result_is_plain_json_data(uri: str) -> None:
    a = _record(uri, params={"lr": 0.1, "layers": [8, 8]})
    b = _record(uri, params={"lr": 0.2, "layers": [8, 16]}, data=np.zeros(3))
    found = diff_runs(a, b)
    json.dumps(found, allow_nan=False)  # tuples serialise as lists; nothing exotic inside


def _fake(**parts: Any) -> Any:
    env = {"python": {"version": "3.11.7"}, "platform": {"platform": "Linux-x86_64"},
           "packages": {"numpy": "2.0.0", "torch": "2.3.0"},
           "git": {"commit": "a" * 40, "branch": "main", "remote": "git@host:repo", "dirty": False, "diff": ""}}
    env.update(parts.pop("environment", {}))
    base = dict(framework="lightning", experiment="e", status="finished", params={}, seeds={}, data={},
                final_metrics={}, environment=env)
    base.update(parts)
    return SimpleNamespace(**base)


def test_git_packages_and_environment() -> None:
    a = _fake()
    b = _fake(status="failed", environment={
        "python": {"version": "3.12.1"},
        "packages": {"numpy": "2.1.0", "torch": "2.3.0", "pandas": "2.2.0"},
        "git": {"commit": "b" * 40, "branch": "main", "remote": "git@host:repo", "dirty": True,
                "diff": "--- a/x\n+++ b/x\n", "diff_bytes": 16},
    })
    found = diff_runs(a, b)
    assert found["run"] == {"status": ("finished", "failed"), "python": ("3.11.7", "3.12.1")}
    assert found["packages"] == {"numpy": ("2.0.0", "2.1.0"), "pandas": (None, "2.2.0")}
    git = found["git"]
    assert git["commit"] == ("a" * 40, "b" * 40) and git["dirty"] == (False, True)
    assert "branch" not in git and "remote" not in git
    left, right = git["diff"]
    assert left == "<empty>" and right.startswith("<16 bytes, sha256 ")
    assert list(found) == ["run", "git", "packages"]  # display order, empty sections left out


def test_git_missing_on_one_side() -> None:
    a, b = _fake(), _fake(environment={"git": None})
    found = diff_runs(a, b)["git"]
    assert found["commit"] == ("a" * 40, None) and found["diff"] == ("<empty>", None)


def test_same_diff_text_is_no_difference() -> None:
    git = {"commit": "c" * 40, "branch": None, "remote": None, "dirty": True, "diff": "+x\n"}
    assert diff_runs(_fake(environment={"git": dict(git)}), _fake(environment={"git": dict(git)})) == {}


def test_dataset_only_in_one_run() -> None:
    a = _fake(data={"train": {"type": "numpy.ndarray", "sha256": "1" * 64, "rows": 3}})
    b = _fake(data={"train": {"type": "numpy.ndarray", "sha256": "1" * 64, "rows": 3},
                    "eval": {"type": "numpy.ndarray", "sha256": "2" * 64, "rows": 2},
                    "stream": {"type": "tf.data.Dataset"}})
    found = diff_runs(a, b)["data"]
    assert found == {"eval/sha256": (None, "2" * 64), "eval/rows": (None, 2),
                     "stream/type": (None, "tf.data.Dataset")}


def test_same_value_rules() -> None:
    assert same_value(math.nan, math.nan)
    assert same_value([1, math.nan], [1, math.nan])
    assert same_value({"a": [math.nan]}, {"a": [math.nan]})
    assert same_value(1, 1.0)
    assert not same_value(True, 1)
    assert not same_value(None, 0)
    assert not same_value([1, 2], [1, 2, 3])
    assert not same_value(math.nan, 0.0)
