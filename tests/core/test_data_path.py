"""The metric data path: columns built while draining, orjson/json encoding, the lazy point list."""

from __future__ import annotations

import json
import math
import pickle

import pytest

import autotrack
from autotrack import _writer
from autotrack._points import MetricPoint, MetricPoints
from autotrack._segment import Segment
from autotrack.backends import _codec as file_backend


def _call(ns: int, step, epoch, values):  # noqa: ANN001
    return ("m", ns, step, epoch, values)


def test_segment_columns_same_names_and_mixed_names_in_call_order() -> None:
    seg = Segment()
    seg.add_calls([_call(1_000_000_000, 0, None, {"a": 1.0, "b": 2}), _call(2_000_000_000, 1, 0, {"a": 3.0, "b": 4})])
    seg.add_calls([_call(3_000_000_000, 2, 0, {"a": 5.0}), _call(4_000_500_000, 3, 1, {"b": 6, "c": 7.5})])
    doc = seg.to_doc(0, "r")
    assert seg.calls == 4
    assert doc["metrics"] == {
        "a": {"step": [0, 1, 2], "epoch": [None, 0, 0], "value": [1.0, 3.0, 5.0], "time_ms": [1000, 2000, 3000]},
        "b": {"step": [0, 1, 3], "epoch": [None, 0, 1], "value": [2, 4, 6], "time_ms": [1000, 2000, 4000]},
        "c": {"step": [3], "epoch": [1], "value": [7.5], "time_ms": [4000]},
    }
    # columns of different names never share a list (a later batch extends each once)
    a, b = seg.metrics["a"], seg.metrics["b"]
    assert all(x is not y for x, y in zip(a, b))


def test_segment_non_finite_values_become_strings() -> None:
    seg = Segment()
    seg.add_calls([_call(0, i, None, {"x": v}) for i, v in enumerate([math.nan, math.inf, -math.inf, 1.5, 2**70])])
    assert seg.to_doc(0, "r")["metrics"]["x"]["value"] == ["NaN", "Infinity", "-Infinity", 1.5, 2**70]


def test_writer_turns_calls_into_columns_while_draining(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_writer, "_BATCH", 7)
    monkeypatch.setattr(_writer, "_MAX_CALLS_PER_SEGMENT", 50)
    run = autotrack.start_run(uri=str(tmp_path / "s"))
    for i in range(120):
        run.log_metrics({"loss": i / 10}, step=i)
        if i == 60:
            run.log_params({"lr": 0.1})  # an event between metric calls keeps the order
    run.flush()
    assert not run._writer.queue and not any(isinstance(x, tuple) for x in run._writer._segment.metrics)
    run.finish()
    rec = autotrack.get_run(run.id, uri=str(tmp_path / "s"))
    assert [p.step for p in rec.metrics["loss"]] == list(range(120))
    assert [p.value for p in rec.metrics["loss"]] == [i / 10 for i in range(120)]
    assert len(list((tmp_path / "s" / "runs" / run.id / "events").iterdir())) >= 3
    assert rec.params == {"lr": 0.1}


DOCS = [
    {"format": 1, "metrics": {"x": {"step": [0, 1], "epoch": [None, 2], "value": [0.1, "NaN"], "time_ms": [1, 2]}},
     "params": [["lr", 1e-06, 1.5], ["name", "ünï", 1.0], ["big", 2**70, 1.0], ["neg", -(2**64), 1.0]],
     "environment": {"packages": {"a": "1"}, "nested": [[1, 2.5e300], {"k": None, "t": True}]}},
    {1: "int key", "x": [123456789012345678, -0.0, 1e16, 5e-324]},
]


@pytest.mark.parametrize("doc", DOCS)
def test_orjson_and_json_paths_give_the_same_document(doc, monkeypatch) -> None:
    fast = file_backend.dumps(doc)
    monkeypatch.setattr(file_backend, "_orjson", None)
    plain = file_backend.dumps(doc)
    assert json.loads(fast) == json.loads(plain)  # readable by plain json, same values
    assert file_backend.loads(fast) == file_backend.loads(plain) == json.loads(plain)
    monkeypatch.undo()
    assert file_backend.loads(fast) == file_backend.loads(plain) == json.loads(plain)


def test_loads_keeps_big_ints_exact_and_reads_nan_tokens() -> None:
    assert file_backend.loads(b'{"params": [["seed", 1267650600228229401496703205376, 1.0]]}') == {
        "params": [["seed", 2**100, 1.0]]}
    assert math.isnan(file_backend.loads(b'{"v": NaN}')["v"])  # written by another tool
    with pytest.raises(ValueError):
        file_backend.loads(b"{not json")


def test_nan_round_trip_through_a_run(tmp_path) -> None:
    with autotrack.start_run(uri=str(tmp_path)) as run:
        run.log_metrics({"x": math.nan}, step=0)
        run.log_metrics({"x": math.inf}, step=1)
        run.log_metrics({"x": -math.inf}, step=2)
        run.log_metrics({"x": 0.25}, step=3)
    values = [p.value for p in autotrack.get_run(run.id, uri=str(tmp_path)).metrics["x"]]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.25]


def _points() -> tuple[MetricPoints, list[MetricPoint]]:
    cols = [{"step": [0, 1, 2], "epoch": [None, 0, 0], "value": [0.5, "NaN", 2], "time_ms": [1000, 1500, 2001]},
            {"step": [3], "epoch": [1], "value": [0.25], "time_ms": [3000]}]
    expected = [MetricPoint(0, None, 0.5, 1.0), MetricPoint(1, 0, math.nan, 1.5), MetricPoint(2, 0, 2, 2.001),
                MetricPoint(3, 1, 0.25, 3.0)]
    return MetricPoints.from_columns(cols), expected


def test_metric_points_behave_as_a_list() -> None:
    points, expected = _points()
    assert len(points) == 4 and bool(points) and not MetricPoints([], [], [], [])
    assert points[0] == expected[0] and points[-1] == expected[-1] and points[-1].timestamp == 3.0
    assert type(points[0]) is MetricPoint and points[2].value == 2 and points[2].timestamp == 2001 / 1000
    assert math.isnan(points[1].value)
    with pytest.raises(IndexError):
        points[4]
    assert [p.step for p in points] == [0, 1, 2, 3]
    assert [p.step for p in reversed(points)] == [3, 2, 1, 0]
    assert points[1:3][0].step == 1 and len(points[::2]) == 2 and points[::-1][0] == expected[-1]
    real = list(points)
    assert all(type(p) is MetricPoint for p in real) and real[0] == expected[0]
    assert points == real and real == points and not (points != real)  # NaN: same object in both
    assert points == points[:] and points[:2] != real and points != real[:3] and points != "abc"
    assert points[:1] == [expected[0]] and points + [] == real and [] + points == real
    assert expected[3] in points and points.index(expected[3]) == 3
    assert repr(points[:1]) == repr([expected[0]])
    copied = pickle.loads(pickle.dumps(points))
    assert len(copied) == 4 and copied[2:] == real[2:]  # (a NaN read back is another object)
    with pytest.raises(TypeError):
        hash(points)


def test_metric_points_old_float_seconds_columns() -> None:
    points = MetricPoints.from_columns([{"step": [0], "epoch": [None], "value": [1.0], "time": [12.3456789]},
                                        {"step": [1], "epoch": [None], "value": [2.0], "time_ms": [13000]}])
    assert [p.timestamp for p in points] == [12.3456789, 13.0]


def test_records_metrics_are_points_lists(tmp_path) -> None:
    with autotrack.start_run(uri=str(tmp_path)) as run:
        for i in range(5):
            run.log_metrics({"a": i, "b": i / 2}, step=i, epoch=i // 2)
    rec = autotrack.get_run(run.id, uri=str(tmp_path))
    assert [(p.step, p.epoch, p.value) for p in rec.metrics["b"]] == [(i, i // 2, i / 2) for i in range(5)]
    assert rec.final_metrics == {"a": 4, "b": 2.0}
    assert rec.to_dict()["metrics"]["a"][-1]["value"] == 4


def test_points_column_gives_a_field_without_making_points(store) -> None:
    import autotrack

    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 0.5}, step=3, epoch=1)
        run.log_metrics({"loss": float("nan")}, step=4, epoch=1)
    points = autotrack.get_run(run.id, uri=store).metrics["loss"]
    assert points.column("step") == [3, 4] and points.column("epoch") == [1, 1]
    values = points.column("value")
    assert values[0] == 0.5 and values[1] != values[1]
    assert points.column("timestamp") == [p.timestamp for p in points]
    import pytest

    with pytest.raises(ValueError, match="no field"):
        points.column("nope")
