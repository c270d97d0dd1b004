"""Random state recorded at ``autolog()`` and at each run's start (``autotrack._rng``): read
back through the public API, restored bit for bit, never changed outside a replay."""

from __future__ import annotations

import json
import random
import time

import numpy as np

import autotrack
from autotrack import _rng


def test_states_round_trip_through_json_and_restore_bit_for_bit():
    np.random.rand()  # numpy 2 imports numpy.random on first use; before, it has no state to read
    raw = _rng.snapshot(("random", "numpy"))
    encoded = json.loads(json.dumps(_rng.encode(raw)))
    expected = ([random.random() for _ in range(3)], np.random.rand(3).tolist(), np.random.normal())
    assert _rng.restore(encoded) == ["random", "numpy"]
    assert ([random.random() for _ in range(3)], np.random.rand(3).tolist(), np.random.normal()) == expected


def test_a_run_records_its_start_state_and_replays_from_it(store, monkeypatch):
    for name in _rng.RESULT_ENV_VARS:  # only what this test sets (the suite's other tests set KERAS_BACKEND)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with autotrack.start_run(uri=store) as run:
        drawn = random.random()
    env = autotrack.get_run(run.id, uri=store).environment
    state = env["random_state"]
    assert state["run_index"] >= 0 and set(state["run_start"]) >= {"random", "numpy"}
    assert env["command"]["env"] == {"PYTHONHASHSEED": "7", "OMP_NUM_THREADS": "2"}
    _rng.restore(_rng.resolved(state, "run_start"))
    assert random.random() == drawn
    # a few KB a generator (~3.4 KB; torch ~4.3 KB compressed), said once when unchanged since
    # autolog(): at most the two points of python, numpy, torch and TensorFlow
    assert all(len(json.dumps(v)) < 6_000 for point in ("autolog", "run_start") for v in state.get(point, {}).values())
    assert len(json.dumps(state)) < 40_000


def test_recording_never_changes_a_generator(store):
    before = (random.getstate(), np.random.get_state()[1].tolist())
    autotrack.autolog(uri=store)
    with autotrack.start_run(uri=store):
        pass
    assert (random.getstate(), np.random.get_state()[1].tolist()) == before


def test_unchanged_state_is_said_once(store):
    autotrack.autolog(uri=store)
    _rng._autolog_state.update(_rng.snapshot())  # as if autolog() had been the first call of this process
    with autotrack.start_run(uri=store) as run:
        pass
    state = autotrack.get_run(run.id, uri=store).environment["random_state"]
    assert state["run_start"]["random"] == _rng.SAME and _rng.resolved(state, "run_start")["random"] == state["autolog"]["random"]


def test_reading_the_state_at_run_start_is_cheap():
    _rng.snapshot()
    started = time.perf_counter()
    for _ in range(100):
        _rng.snapshot()
    assert (time.perf_counter() - started) / 100 < 0.005


def test_replay_restores_at_autolog_and_import_in_a_fresh_interpreter(tmp_path):
    from tests.core.helpers import python

    code = """
        import autotrack, json, sys
        autotrack.autolog(uri=sys.argv[1] if len(sys.argv) > 1 else %r)
        import random, numpy as np
        print(json.dumps([random.random(), float(np.random.rand())]))
    """ % str(tmp_path / "s")
    first = python(code)
    assert first.returncode == 0, first.stderr
    with autotrack.start_run(uri=str(tmp_path / "s2")):
        pass
    # the autolog state of a process like the first one: recorded into a run there
    record = python(code.replace("print(", "autotrack.start_run(uri=%r).finish(); print(" % str(tmp_path / "s3")))
    run = autotrack.last_run(uri=str(tmp_path / "s3"))
    spec = tmp_path / "replay.json"
    spec.write_text(json.dumps({"run_index": 0, "random_state": run.environment["random_state"]}))
    replayed = python(code, env={_rng.REPLAY_ENV: str(spec)})
    assert json.loads(replayed.stdout) != json.loads(first.stdout)  # the first process drew its own
    assert replayed.returncode == 0 and json.loads(replayed.stdout) == json.loads(record.stdout)
