"""The model registry on a local store: the format as docs/format.md writes it (a store written
by hand reads back), snapshots, the conditional create each filesystem gets, and the public names.
The cases every backend runs are in tests/store_registry.py."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import autotrack
from autotrack import ModelNotFoundError
from autotrack import _registry_store
from autotrack.backends import backend_for
from tests.store_registry import logged_run

SHA = "ab" * 32
T0 = "2026-11-27T09:33:55+00:00"


def _write(root: Path, rel: str, doc) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _event(seq: int, action: str, **fields) -> dict:
    return {"format": 1, "model": "churn", "seq": seq, "action": action, "time": T0, "by": "hand@desk", **fields}


def test_a_store_written_by_hand_per_the_docs_reads_back(tmp_path):
    """Only json and paths, as docs/format.md says; a bad event is skipped and named, never half-applied."""
    root = tmp_path / "store"
    (root / "artifacts" / SHA[:2]).mkdir(parents=True)
    (root / "artifacts" / SHA[:2] / SHA).write_bytes(b"not the bytes of that sha256")
    reg = {"run_id": "a" * 32, "artifact": "model.joblib", "sha256": SHA, "size": 28}
    events = [_event(0, "register", version=1, metadata={"auc": 0.9}, **reg),
              _event(1, "register", version=2, metadata={}, **dict(reg, run_id="b" * 32)),
              _event(2, "set_alias", alias="production", version=1, previous=None),
              _event(3, "set_alias", alias="production", version=9, previous=1),  # no version 9: skipped
              "not an event",
              _event(5, "register", version=2, **reg),  # version 2 again: skipped, never reused
              _event(6, "set_alias", alias="production", version=2, previous=1),
              _event(3, "delete_alias", alias="production")]  # in file 7: not its number, skipped
    for seq, event in enumerate(events):
        _write(root, f"models/churn/events/000000/{seq:09d}.json", event)
    mv = autotrack.get_model("churn@production", uri=str(root))
    assert (mv.version, mv.run_id, mv.by, mv.aliases) == (2, "b" * 32, "hand@desk", ["production"])
    assert autotrack.get_model("churn/1", uri=str(root)).metadata == {"auc": 0.9}
    (model,) = autotrack.models(uri=str(root))
    assert model.aliases == {"production": 2} and [v.version for v in model.versions] == [1, 2]
    assert [p["file"] for p in model.problems] == [f"models/churn/events/000000/00000000{n}.json"
                                                   for n in (3, 4, 5, 7)]
    assert "version 9 does not exist" in model.problems[0]["reason"]
    assert "never reused" in model.problems[2]["reason"]
    assert "seq 3 is not the number in its file name (7)" in model.problems[3]["reason"]
    assert [e.seq for e in autotrack.model_history("churn", uri=str(root))] == [0, 1, 2, 6]
    with pytest.raises(autotrack.IntegrityError):  # bytes are verified against the sha256 on the way out
        mv.read_bytes()
    # the next writer numbers after the last event, whatever was skipped
    run = logged_run(str(root), tmp_path / "r", {"m.bin": (b"m", "model")})
    assert autotrack.register_model("churn", run=run.id, uri=str(root)).version == 3
    assert json.loads((root / "models/churn/events/000000/000000008.json").read_text())["version"] == 3


def test_the_reader_in_the_docs_agrees_with_autotrack(tmp_path):
    """docs/format.md's "Reading the registry without autotrack", run as written, on a store
    autotrack wrote (the default ./autotrack-runs: the test runs in tmp_path)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    code = text.split("### Reading the registry without autotrack", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    runs = [logged_run("autotrack-runs", tmp_path / str(i), {"model.joblib": (f"m{i}".encode(), "model")})
            for i in range(3)]
    for run in runs:
        autotrack.register_model("churn", run=run.id)
    autotrack.set_alias("churn", "production", 1)
    autotrack.set_alias("churn", "staging", 3)
    autotrack.set_alias("churn", "production", 2)
    autotrack.delete_alias("churn", "staging")
    scope: dict = {}
    exec(compile(code, "docs/format.md", "exec"), scope)
    prod = autotrack.get_model("churn@production")
    assert scope["aliases"] == {"production": 2} == autotrack.models()[0].aliases
    assert (scope["prod"]["run_id"], scope["prod"]["sha256"]) == (prod.run_id, prod.sha256) and prod.run_id == runs[1].id
    assert scope["bytes_path"].read_bytes() == b"m1"


def test_snapshots_every_thousand_events_and_reads_start_there(tmp_path, monkeypatch):
    monkeypatch.setattr(_registry_store, "SNAPSHOT_EVERY", 4)  # 1,000 in the format: 4 here, same code
    uri = str(tmp_path / "store")
    run = logged_run(uri, tmp_path / "r", {"model.bin": (b"weights", "model")})
    autotrack.register_model("m", run=run.id, uri=uri)
    for i in range(9):
        autotrack.set_alias("m", f"a{i % 3}", 1, uri=uri)
    autotrack.register_model("m", run=run.id, uri=uri)  # seq 10
    snapshots = Path(uri) / "models/m/snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["000000004.json", "000000008.json"]
    doc = json.loads((snapshots / "000000008.json").read_text())
    assert doc == {"format": 1, "model": "m", "upto": 8, "last_seq": 7, "next_version": 2, "versions": {"1": 0},
                   "aliases": {"a0": 1, "a1": 1, "a2": 1}, "problems": []}
    # a reader starts at the newest snapshot: the events below it are not read
    events = Path(uri) / "models/m/events/000000"
    for seq in range(1, 8):
        (events / f"{seq:09d}.json").unlink()
    _registry_store.forget()
    assert autotrack.models(uri=uri)[0].aliases == {"a0": 1, "a1": 1, "a2": 1}
    assert autotrack.get_model("m@a2", uri=uri).version == 1 and autotrack.get_model("m", uri=uri).version == 2
    # a damaged newest snapshot: the one before it serves (here its events are gone: version 1 only)
    (snapshots / "000000008.json").write_text("{broken")
    _registry_store.forget()
    assert autotrack.get_model("m", uri=uri).version == 2
    # a writer that finds a snapshot missing (its writer died) writes it
    (snapshots / "000000008.json").unlink()
    (snapshots / "000000004.json").unlink()
    for seq in range(1, 8):
        (events / f"{seq:09d}.json").write_text(json.dumps(_event(seq, "set_alias", model="m", alias="b", version=1)))
    _registry_store.forget()
    autotrack.set_alias("m", "c", 2, uri=uri)  # seq 11: completes 12 events, so it writes snapshot 12 too
    assert sorted(p.name for p in snapshots.iterdir()) == ["000000008.json", "000000012.json"]
    assert json.loads((snapshots / "000000008.json").read_text())["aliases"] == {"b": 1}
    assert json.loads((snapshots / "000000012.json").read_text())["aliases"] == {"a1": 1, "a2": 1, "b": 1, "c": 2}


def test_resolution_reads_one_folder_per_thousand_events(tmp_path):
    """Events are partitioned by thousands: seq 1234 lives in events/000001/000001234.json."""
    store = backend_for(str(tmp_path / "s"))
    event = _event(1234, "register", model="m", version=1, run_id="a" * 32, artifact="x", sha256=SHA, size=1)
    assert store.append_model_event("m", 1234, event) is True
    assert (tmp_path / "s/models/m/events/000001/000001234.json").is_file()
    assert [e["seq"] for e in store.read_model_events("m", start=1000)] == [1234]
    assert store.read_model_events("m", start=2000) == []
    assert store.read_model_events("m", seqs=[1234, 5]) == [event]
    assert store.list_models() == ["m"]


@pytest.mark.parametrize("kind", ["local", "local-without-hard-links", "memory", "fsspec-without-conditional-writes"])
def test_an_event_number_is_taken_once(tmp_path, monkeypatch, kind):
    from autotrack.backends.file import FileStore

    if kind == "memory":
        store = FileStore(f"memory://registry-{os.getpid()}-{id(tmp_path)}/s")
    elif kind == "fsspec-without-conditional-writes":
        from fsspec.implementations.memory import MemoryFileSystem

        class Plain(MemoryFileSystem):  # a filesystem autotrack knows nothing about
            protocol = ("plain",)

        store = FileStore(f"memory://registry-plain-{id(tmp_path)}/s")
        store.fs = Plain(skip_instance_cache=True)
    else:
        store = FileStore(str(tmp_path / "s"))
        if kind == "local-without-hard-links":
            def no_link(*_args):
                raise OSError(errno.EPERM, "Operation not permitted")
            monkeypatch.setattr(os, "link", no_link)
    first, second = {"seq": 0, "n": 1}, {"seq": 0, "n": 2}
    assert store.append_model_event("m", 0, first) is True
    assert store.append_model_event("m", 0, second) is False
    assert store.read_model_events("m") == [first]
    if store.local:
        assert sorted(os.listdir(tmp_path / "s/models/m/events/000000")) == ["000000000.json"]  # no temp file left
    with pytest.raises(ValueError):
        store.append_model_event("../x", 1, first)


def test_concurrent_writer_processes_on_a_local_store(tmp_path):
    uri = str(tmp_path / "store")
    _writers_in_processes(uri, tmp_path, os.environ)


def _writers_in_processes(uri: str, tmp_path: Path, env, processes: int = 4, each: int = 4) -> None:
    """``processes`` Python processes register ``each`` versions and move an alias, all at once."""
    runs = [logged_run(uri, tmp_path / f"r{i}", {"model.bin": (f"model {i}".encode(), "model")})
            for i in range(processes)]
    script = (
        "import json, sys, time, autotrack\n"
        "uri, run, i, go = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])\n"
        "time.sleep(max(0.0, go - time.time()))\n"
        f"got = [autotrack.register_model('shared', run=run, uri=uri).version for _ in range({each})]\n"
        "autotrack.set_alias('shared', 'p' + i, got[-1], uri=uri)\n"
        "print(json.dumps(got))\n")
    import time

    go = time.time() + 3.0  # every process imports autotrack first, then all start together
    children = [subprocess.Popen([sys.executable, "-c", script, uri, runs[i].id, str(i), str(go)], env=dict(env),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(processes)]
    got = {}
    for i, child in enumerate(children):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        got[i] = json.loads(out.strip().splitlines()[-1])
    numbers = sorted(n for ns in got.values() for n in ns)
    assert numbers == list(range(1, processes * each + 1))  # none lost, none given twice
    _registry_store.forget()
    history = autotrack.model_history("shared", uri=uri)
    assert [e.seq for e in history] == list(range(processes * (each + 1)))
    assert len({e.by for e in history}) == 1 and "@" in history[0].by
    for i, ns in got.items():
        mv = autotrack.get_model(f"shared@p{i}", uri=uri)
        assert (mv.version, mv.run_id) == (ns[-1], runs[i].id)
        assert mv.read_bytes() == f"model {i}".encode()


def test_concurrent_writer_processes_on_s3(s3_server, s3_store, tmp_path, monkeypatch):
    """The same on S3 (moto): each event a PUT with If-None-Match: *."""
    from tests.store_registry import atomic_moto

    atomic_moto(monkeypatch, s3_store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_")} | s3_server.env
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    _writers_in_processes(s3_store, tmp_path, env, processes=3, each=3)


def test_s3_refuses_a_taken_name_with_if_none_match(s3_store):
    """The PUT autotrack sends is conditional: moto (like S3) answers 412, never overwrites."""
    store = backend_for(s3_store)
    assert store.append_model_event("m", 0, {"seq": 0, "n": 1}) is True
    assert store.append_model_event("m", 0, {"seq": 0, "n": 2}) is False
    fs = store.fs
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{store.root}/models/m/events/000000/000000000.json", b"{}", mode="create")
    assert store.read_model_events("m") == [{"seq": 0, "n": 1}]


def test_by_is_the_user_at_the_host_and_a_live_run_is_flushed_first(tmp_path):
    uri = str(tmp_path / "store")
    model = tmp_path / "model.pt"
    model.write_bytes(b"w")
    with autotrack.start_run(uri=uri) as run:
        run.log_artifact(str(model), kind="model")
        mv = autotrack.register_model("m", run)  # no flush by hand: register_model does it
    assert mv.by == _registry_store.local_user() and mv.uri == run.uri
    assert autotrack.get_model("m", uri=uri).run.id == run.id


def test_public_names_are_lazy_and_listed():
    code = ("import sys, autotrack\n"
            "assert not any(m.startswith('autotrack._registry') for m in sys.modules), sorted(sys.modules)\n"
            "names = ['register_model', 'set_alias', 'delete_alias', 'get_model', 'models', 'model_history',\n"
            "         'ModelVersion', 'RegisteredModel', 'ModelEvent', 'ModelNotFoundError']\n"
            "assert set(names) <= set(autotrack.__all__)\n"
            "assert all(getattr(autotrack, n) for n in names)\n"
            "assert issubclass(autotrack.ModelNotFoundError, (LookupError, autotrack.AutotrackError))\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_store_without_a_registry_says_so(tmp_path):
    class Bare:
        uri = "bare://x"

    with pytest.raises(autotrack.AutotrackError, match="has no model registry"):
        _registry_store.registry_of(Bare())
    with pytest.raises(ModelNotFoundError):
        autotrack.model_history("nothing", uri=str(tmp_path / "empty"))
