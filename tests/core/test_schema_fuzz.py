"""The promise behind the schema (``autotrack._schema``), on generated documents.

A document the schema accepts can be read by every reader without an error (the records,
``autotrack show``/``runs``/``diff``, the dashboard's data, a report), and one it rejects is
reported in ``problems``, never raised. Hypothesis throws plausible and broken documents at
both sides of that line through a third-party backend registered for the test, so this also
shows that the reader trusts no backend.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import uuid
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import autotrack  # noqa: E402
from autotrack import _schema  # noqa: E402
from autotrack._records import record_of  # noqa: E402
from autotrack._schema import read_run_doc, run_doc_problem, segment_problem  # noqa: E402
from autotrack.backends.base import register_backend  # noqa: E402
from autotrack.cli import main  # noqa: E402

NOW = _dt.datetime.now(_dt.timezone.utc).isoformat()
SHA = "ab" * 32


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6)
_times = st.one_of(st.just(NOW), st.none(), st.just("2026-01-01T00:00:00"), st.just("yesterday"),
                   st.just("0001-01-01T00:00:00+01:00"), st.just("9999-12-31T23:59:59-01:00"),
                   st.datetimes(timezones=st.just(_dt.timezone.utc)).map(lambda d: d.isoformat()), _json)
_numbers = st.one_of(st.none(), st.integers(), st.floats(), st.just(10**400), _json)
_texts = st.one_of(st.none(), st.text(max_size=10), _json)
_summary = st.one_of(st.none(), _json, st.fixed_dictionaries({}, optional={
    "params": st.one_of(st.dictionaries(st.text(max_size=5), _json, max_size=3), _json),
    "tags": st.one_of(st.dictionaries(st.text(max_size=5), _json, max_size=3), _json),
    "metrics": st.one_of(st.dictionaries(st.text(max_size=5), st.one_of(st.lists(_json, max_size=6), _json),
                                         max_size=3), _json)}))
_docs = st.fixed_dictionaries({"id": st.one_of(st.just("3f2a9c1e" * 4), st.text(max_size=4), _json)}, optional={
    "name": _texts, "experiment": _texts, "parent_id": _texts, "framework": _texts, "status": _texts,
    "start_time": _times, "end_time": _times, "heartbeat": _numbers, "heartbeat_interval": _numbers,
    "pid": _numbers, "summary": _summary}) | _json


@settings(max_examples=300, deadline=None)
@given(_docs)
def test_the_quick_check_agrees_with_the_rules(doc: Any) -> None:
    problem, fields = read_run_doc(doc)
    assert (problem is None) == (_schema._slow_problem(doc) is None) == (fields is not None)
    if fields is not None:
        name, experiment, parent_id, framework, status, start, end, beat, interval = fields
        assert (name, experiment, parent_id, framework) == tuple(map(doc.get, ("name", "experiment", "parent_id", "framework")))
        assert (status, beat, interval) == (doc.get("status", "running"), doc.get("heartbeat"), doc.get("heartbeat_interval"))
        assert start == (_dt.datetime.fromisoformat(doc["start_time"]) if doc.get("start_time") else None)
        assert end == (_dt.datetime.fromisoformat(doc["end_time"]) if doc.get("end_time") else None)


def _columns() -> Any:
    cell = st.one_of(st.integers(-5, 5), st.floats(), st.sampled_from(["NaN", "Infinity", "-Infinity", "x"]),
                     st.none(), st.booleans())
    column = st.lists(cell, max_size=4)
    return st.one_of(st.fixed_dictionaries({"step": column, "epoch": column, "value": column, "time_ms": column}),
                     st.fixed_dictionaries({"step": column, "epoch": column, "value": column, "time": column}),
                     _json)


def _triple(value: Any) -> Any:
    return st.one_of(st.tuples(st.text(max_size=5), value, st.floats(0, 2e9)).map(list), _json)


_artifact = st.one_of(st.fixed_dictionaries(
    {"name": st.sampled_from(["m.pt", "d/a.txt", ""]), "sha256": st.sampled_from([SHA, "bad"]),
     "size": st.one_of(st.integers(0, 9), st.just(-1))},
    optional={"kind": _texts, "metadata": st.one_of(st.none(), st.dictionaries(st.text(max_size=5), _json, max_size=3),
                                                     st.fixed_dictionaries({"group": st.just("d")}), _json),
              "time": _numbers, "source": _texts}), _json)
_update = st.one_of(st.fixed_dictionaries({"name": st.sampled_from(["m.pt", "d", "x"])}, optional={
    "metadata": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "superseded": st.booleans(), "kept": st.booleans(), "best": st.booleans(), "superseded_by": _texts}), _json),
    "time": _numbers}), _json)
_segments = st.lists(st.one_of(st.fixed_dictionaries({}, optional={
    "seq": st.one_of(st.integers(0, 9), _json), "time": _numbers,
    "params": st.one_of(st.lists(_triple(_json), max_size=3), _json), "tags": st.lists(_triple(_json), max_size=2),
    "seeds": st.lists(_triple(st.integers()), max_size=2),
    "data": st.one_of(st.lists(_triple(st.dictionaries(st.text(max_size=5), _json, max_size=3)), max_size=2), _json),
    "metrics": st.one_of(st.dictionaries(st.text(max_size=5), _columns(), max_size=3), _json),
    "artifacts": st.one_of(st.lists(_artifact, max_size=3), _json),
    "artifact_updates": st.one_of(st.lists(_update, max_size=3), _json),
    "environment": st.one_of(st.fixed_dictionaries({}, optional={
        "python": _json, "git": _json, "hardware": _json, "command": _json, "frameworks": _json}), _json),
    "status": st.one_of(st.fixed_dictionaries({}, optional={"status": _texts, "error": _texts, "end_time": _times}),
                        _json)}), _json), max_size=4)

_STORE: dict[str, Any] = {"docs": [], "segments": []}


class _ThirdPartyBackend:
    """A backend that hands back whatever it is given: the reader must not trust it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def list_runs(self) -> Any:
        return _STORE["docs"]

    def read_segments(self, run_id: str) -> Any:
        return _STORE["segments"]

    def open_artifact(self, sha256: str) -> Any:
        return io.BytesIO(b"abc")

    def create_run(self, doc: Any) -> None: ...
    def update_run(self, run_id: str, doc: Any) -> None: ...
    def append(self, run_id: str, seq: int, segment: Any) -> None: ...
    def put_artifact(self, path: str) -> Any: ...


@pytest.fixture(scope="module")
def fuzz_uri() -> str:
    register_backend("fuzzstore", _ThirdPartyBackend, clobber=True)
    return f"fuzzstore://{uuid.uuid4().hex}"


def _read_everything(rec: Any) -> None:
    """Every attribute a reader offers, as the records, the CLI and the dashboard use them."""
    from autotrack._cli_format import dumps_json
    from autotrack.ui._data import run_detail, run_series, summarize
    from autotrack.ui._report import report_html

    repr(rec), rec.duration, rec.final_metrics, rec.param_history, rec.problems
    for art in rec.artifacts:
        try:
            art.read_bytes()
        except (autotrack.ArtifactNotFoundError, autotrack.IntegrityError):
            pass
    json.loads(dumps_json(rec.to_dict()))
    json.loads(dumps_json(rec.to_dict(metrics="last")))
    summarize(rec), run_detail(rec), run_series(rec)
    report_html([rec])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(doc=_docs, segments=_segments)
def test_whatever_a_backend_hands_back_is_read_or_reported(fuzz_uri: str, doc: Any, segments: Any) -> None:
    _STORE["docs"], _STORE["segments"] = [doc, {"id": "other", "status": "finished"}], segments
    records = autotrack.runs(uri=fuzz_uri)  # never raises; the healthy neighbour is always there
    assert "other" in {r.id for r in records}
    rec = record_of(doc, _ThirdPartyBackend(fuzz_uri))
    if rec is None:  # no id to list it by
        assert len(records) == 1
        return
    invalid = run_doc_problem(doc) is not None
    if invalid:
        assert rec.status == "corrupt"
    _read_everything(rec)
    bad = [s for s in segments if segment_problem(s) is not None]
    assert len(rec.problems) == len(bad) + invalid
    for command in (["show", rec.id], ["show", rec.id, "--json"], ["runs"], ["runs", "--json"], ["diff", rec.id, "other"]):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = main([*command, "--uri", fuzz_uri])
        if code != 0:  # only an id the command line cannot take ("-x", a prefix of "other"...)
            assert err.getvalue().startswith("autotrack: error:") and "unexpected" not in err.getvalue(), \
                (command, err.getvalue())
        elif command[0] == "runs":
            assert code == 0


def test_a_document_without_an_id_is_skipped_not_fatal(fuzz_uri: str) -> None:
    _STORE["docs"] = [[], None, "x", {"name": "no id"}, {"id": 7}, {"id": "fine", "status": "finished"}]
    _STORE["segments"] = [[], {"seq": 0, "params": [["a", 1, 1.0]]}]
    (rec,) = autotrack.runs(uri=fuzz_uri)
    assert rec.id == "fine" and rec.params == {"a": 1}
    assert rec.problems == [{"file": "runs/fine/events (segment 1 in order)", "reason": "not a JSON object but an array"}]
