"""Fuzzing the server. schemathesis, every check it has, against the server's own OpenAPI document
(positive and negative data); and hypothesis documents through the server: whatever it accepts,
every reader can read, and what it refuses is never stored."""

from __future__ import annotations

import json

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.config._checks import PositiveDataAcceptanceConfig  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import autotrack  # noqa: E402
from autotrack.cli import main as cli  # noqa: E402
from autotrack.server.app import create_app  # noqa: E402
from autotrack.server.openapi import openapi_spec  # noqa: E402

schema = schemathesis.openapi.from_dict(openapi_spec())
schema.config.generation.update(modes=list(schemathesis.GenerationMode))  # valid and invalid data both
# Valid per the schema may still be refused for what JSON Schema cannot say (docs/server.md): a
# document's id must be the URL's, a run's columns of one length, a time within years 2-9998 (422),
# a run that does not exist (404), a segment stored already with other content (409).
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "401", "403", "404", "409", "422"])


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_of_schemathesis(case, server):
    case.call_and_validate(base_url=server.url, headers=server.headers())  # all checks: none given


_json = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
                     | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
_times = st.sampled_from(["2026-11-29T10:00:00+00:00", "2026-11-29T10:00:00", "soon", "0001-01-01T00:00:00+00:00", None, 5])
_run_docs = st.fixed_dictionaries({}, optional={
    "name": st.none() | st.text(max_size=5) | st.integers(), "status": st.sampled_from(["running", "finished", 3, None]),
    "start_time": _times, "end_time": _times, "heartbeat": st.none() | st.floats() | st.text(max_size=3),
    "heartbeat_interval": st.none() | st.floats() | st.integers(), "pid": st.none() | st.integers() | st.text(max_size=2),
    "summary": st.none() | _json, "experiment": st.none() | st.text(max_size=4) | st.lists(st.integers()),
    "extra": _json})
_segments = st.fixed_dictionaries({}, optional={
    "params": _json, "tags": st.lists(st.tuples(st.text(max_size=3), _json, st.floats()).map(list), max_size=2),
    "metrics": st.dictionaries(st.text(max_size=4), st.fixed_dictionaries({
        "step": st.lists(st.integers(0, 9), max_size=2), "epoch": st.lists(st.none(), max_size=2),
        "value": st.lists(st.floats(allow_nan=False) | st.sampled_from(["NaN", "x"]), max_size=2),
        "time_ms": st.lists(st.integers(0, 9), max_size=2)}), max_size=2),
    "artifacts": _json, "status": _json, "environment": _json})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=_run_docs, segment=_segments)
def test_documents_through_the_server(tmp_path_factory, doc, segment):
    store = str(tmp_path_factory.mktemp("fuzz") / "store")
    client = TestClient(create_app(store, "t"), base_url="http://127.0.0.1")
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    rid = "a" * 32
    got = client.put(f"/api/v1/runs/{rid}", content=json.dumps(doc), headers=headers)
    assert got.status_code in (200, 400, 422), got.text  # 400: not JSON (Infinity)
    seg = client.put(f"/api/v1/runs/{rid}/segments/0", content=json.dumps(segment), headers=headers)
    assert seg.status_code in (200, 400, 422), seg.text
    runs = autotrack.runs(uri=store)
    # a segment may arrive before its run's document: then the run lists as one missing its run.json
    assert [r.id for r in runs] == ([rid] if 200 in (got.status_code, seg.status_code) else [])
    for run in runs:  # everything a reader shows of what the server took
        if got.status_code == 200:
            assert run.status != "corrupt" and run.problems == []
        run.to_dict()
    assert cli(["runs", "--uri", store]) == 0
    if runs:
        assert cli(["show", rid, "--uri", store]) == 0
