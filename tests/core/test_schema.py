"""The one schema readers apply (``autotrack._schema``): each rule, with the words a user reads.

test_schema_fuzz.py checks the promise behind the rules on generated documents.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from autotrack import _schema
from autotrack._schema import run_doc_problem, segment_problem

NOW = _dt.datetime.now(_dt.timezone.utc).isoformat()
SHA = "ab" * 32


def test_all_names_are_public_and_present() -> None:
    assert sorted(_schema.__all__) == sorted(
        ["run_doc_problem", "read_run_doc", "segment_problem", "usable_run_fields", "NONFINITE", "SHA256"])
    for name in _schema.__all__:
        assert hasattr(_schema, name)


def _doc(**fields: Any) -> dict[str, Any]:
    doc = {"format": 1, "id": "3f2a9c1e" * 4, "name": "n", "experiment": "e", "parent_id": None, "framework": None,
           "status": "finished", "start_time": NOW, "end_time": NOW, "heartbeat": 1795772035.12,
           "heartbeat_interval": 15.0, "pid": 42, "summary": {"params": {}, "tags": {}, "metrics": {"x": [1, 1, 1, 1, 0, None]}}}
    doc.update(fields)
    return doc


@pytest.mark.parametrize("doc", [
    _doc(), {"id": "x"}, {"id": "x", "status": "running"}, _doc(end_time=None, summary=None, heartbeat=None, pid=None),
    _doc(start_time="2026-11-27T09:33:55+05:30"), _doc(status="a-future-status"), _doc(extra={"new": "key"}),
    _doc(heartbeat=0), _doc(summary={}),
])
def test_valid_run_documents(doc: dict[str, Any]) -> None:
    assert run_doc_problem(doc) is None


@pytest.mark.parametrize("doc, words", [
    ([], "not a JSON object but an array"), ("x", "not a JSON object but a string"), (None, "not a JSON object but null"),
    ({}, "id is missing"), ({"id": ""}, 'id "" is not'), ({"id": 5}, "id 5 is not"),
    (_doc(name=5), "name 5 is not a string or null"), (_doc(experiment=[]), "experiment [] is not"),
    (_doc(parent_id={}), "parent_id"), (_doc(framework=True), "framework true"),
    (_doc(status=None), "status null is not a string"), (_doc(status=1), "status 1"),
    (_doc(start_time="yesterday"), 'start_time "yesterday" is not an ISO 8601 time with a UTC offset'),
    (_doc(start_time="2026-01-01T00:00:00"), "UTC offset"), (_doc(end_time=1795772035), "end_time 1795772035"),
    (_doc(start_time="0001-01-01T00:00:00+01:00"), "years 2-9998"),
    (_doc(heartbeat="soon"), 'heartbeat "soon"'), (_doc(heartbeat=True), "heartbeat true"),
    (_doc(heartbeat=-1.0), "heartbeat -1.0"), (_doc(heartbeat=10**30), "heartbeat"),
    (_doc(heartbeat_interval=0), "heartbeat_interval 0 is not a positive number"),
    (_doc(pid="42"), 'pid "42" is not an integer'), (_doc(pid=1.5), "pid 1.5"),
    (_doc(summary=[]), "summary [] is not an object"), (_doc(summary={"metrics": [1]}), "summary"),
    (_doc(summary={"params": "x"}), "summary"), (_doc(summary={"tags": None}), "summary"),
])
def test_invalid_run_documents_say_which_field(doc: Any, words: str) -> None:
    problem = run_doc_problem(doc)
    assert problem is not None and words in problem, problem


def test_a_reader_keeps_the_fields_valid_on_their_own() -> None:
    doc = _doc(start_time="yesterday", heartbeat="soon")
    kept = _schema.usable_run_fields(doc)
    assert kept["name"] == "n" and kept["end_time"] == NOW and "start_time" not in kept and "heartbeat" not in kept
    assert _schema.usable_run_fields([]) == {}


def _segment(**fields: Any) -> dict[str, Any]:
    seg = {"format": 1, "run_id": "r", "seq": 3, "time": 1.5, "params": [["lr", 0.1, 1.0]], "tags": [["t", "x", 1.0]],
           "seeds": [["random.seed", 1, 1.0]], "data": [["train", {"sha256": "x"}, 1.0]],
           "metrics": {"loss": {"step": [0, 1], "epoch": [None, 0], "value": [0.5, "NaN"], "time_ms": [1, 2]}},
           "artifacts": [{"name": "m.pt", "kind": "model", "sha256": SHA, "size": 3, "metadata": {"epoch": 1},
                          "time": 1.0, "source": "/x/m.pt"}],
           "artifact_updates": [{"name": "m.pt", "metadata": {"best": True}, "time": 2.0}],
           "environment": {"python": {}}, "status": {"status": "finished", "end_time": NOW, "error": None}}
    seg.update(fields)
    return seg


@pytest.mark.parametrize("seg", [
    _segment(), {}, {"seq": 0}, _segment(metrics={"old": {"step": [1], "epoch": [None], "value": [1], "time": [1.5]}}),
    _segment(artifact_updates=[{"name": "m.pt", "metadata": None}]), _segment(status={"status": "killed"}),
    _segment(metrics={"b": {"step": [0], "epoch": [0], "value": [True], "time_ms": [0]}}), _segment(unknown=[1]),
])
def test_valid_segments(seg: dict[str, Any]) -> None:
    assert segment_problem(seg) is None


@pytest.mark.parametrize("seg, words", [
    ([], "not a JSON object but an array"), (_segment(seq="3"), 'seq "3" is not an integer'),
    (_segment(seq=-1), "seq -1"), (_segment(time="now"), 'time "now" is not a number'),
    (_segment(params={"lr": 1}), "params: an object, not an array"),
    (_segment(params=[["lr", 1]]), 'params: ["lr", 1] is not a [name, value, time] triple'),
    (_segment(tags=[[1, "x", 1.0]]), "tags: [1"), (_segment(seeds=[["s", 1, "t"]]), "seeds"),
    (_segment(data=[["train", "abc", 1.0]]), "[name, fingerprint object, time]"),
    (_segment(metrics=[]), "metrics: an array, not an object"),
    (_segment(metrics={"l": []}), 'metrics: "l": an array, not an object of columns'),
    (_segment(metrics={"l": {"step": [0], "epoch": [0], "value": [1]}}), "no time_ms array"),
    (_segment(metrics={"l": {"step": [0, 1], "epoch": [0], "value": [1, 2], "time_ms": [1, 2]}}),
     "columns of unequal lengths (step 2, epoch 1, value 2, time_ms 2)"),
    (_segment(metrics={"l": {"step": [0], "epoch": [0], "value": ["high"], "time_ms": [1]}}), "a value that is not"),
    (_segment(metrics={"l": {"step": [0], "epoch": [0], "value": [10**400], "time_ms": [1]}}), "a value that is not"),
    (_segment(metrics={"l": {"step": [0], "epoch": [0], "value": [1], "time_ms": ["1"]}}), "a time_ms that is not"),
    (_segment(artifacts={}), "artifacts: an object, not an array"), (_segment(artifacts=[1]), "a number is not an artifact"),
    (_segment(artifacts=[{"sha256": SHA, "size": 1}]), "name null is not a string"),
    (_segment(artifacts=[{"name": "", "sha256": SHA, "size": 1}]), "a non-empty string"),
    (_segment(artifacts=[{"name": "m", "sha256": "../../etc/passwd", "size": 1}]), "sha256"),
    (_segment(artifacts=[{"name": "m", "sha256": SHA}]), "size null is not a size in bytes"),
    (_segment(artifacts=[{"name": "m", "sha256": SHA, "size": 1, "metadata": []}]), "metadata [] is not"),
    (_segment(artifacts=[{"name": "m", "sha256": SHA, "size": 1, "time": "x"}]), "time"),
    (_segment(artifact_updates=[{"metadata": {}}]), "artifact_updates"),
    (_segment(artifact_updates=[{"name": "m", "metadata": 1}]), "artifact_updates"),
    (_segment(artifact_updates=[{"name": "m", "time": "x"}]), "artifact_updates"),
    (_segment(environment=None), "environment: null, not an object"),
    (_segment(status="finished"), "status: a string, not an object"),
    (_segment(status={"status": 1}), "status: status 1"), (_segment(status={"error": 5}), "status: error 5"),
    (_segment(status={"end_time": "later"}), "end_time"),
])
def test_invalid_segments_say_what(seg: Any, words: str) -> None:
    problem = segment_problem(seg)
    assert problem is not None and words in problem, problem
