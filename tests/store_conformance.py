"""The backend conformance suite: written once, run against every backend.

A test module subclasses :class:`StoreConformance` (``class TestMyStore(StoreConformance)``) and
provides a ``store_uri`` fixture giving a fresh, empty store per test. The suite talks to the
store only through the Backend protocol (``backend_for(uri)``) and the public API
(``start_run``, ``runs``, ``get_run``), so it knows nothing about fsspec, files or HTTP.

Optional hooks a subclass may define (tests needing them are skipped otherwise):

``corrupt_artifact(uri, sha256)``
    overwrite the stored bytes of an artifact behind the backend's back (same length, other
    content), to check that reads detect it.
``stored_artifacts(uri) -> list[str]``
    every stored artifact object (any stable identifier), to check content addressing keeps
    one copy per content.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import autotrack
from autotrack.backends import Backend, backend_for
from tests.store_corrupt import CorruptStoreConformance
from tests.store_faults import StoreFaultCases
from tests.store_registry import RegistryConformance

__all__ = ["StoreConformance", "make_doc"]


def make_doc(run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A run document as the writer creates it."""
    run_id = uuid.uuid4().hex if run_id is None else run_id
    doc = {
        "format": 1,
        "id": run_id,
        "name": f"run-{run_id[:6]}",
        "experiment": "default",
        "parent_id": None,
        "framework": None,
        "status": "running",
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "end_time": None,
        "heartbeat": time.time(),
        "heartbeat_interval": 15.0,
        "pid": os.getpid(),
    }
    doc.update(fields)
    return doc


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _payload(n: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


class StoreConformance(CorruptStoreConformance, StoreFaultCases, RegistryConformance):
    """Mixin: every test takes the subclass's ``store_uri`` fixture (a fresh, empty store)."""

    # ------------------------------------------------------------------------------------
    # The Backend protocol
    # ------------------------------------------------------------------------------------
    def test_backend_satisfies_protocol(self, store_uri):
        backend = backend_for(store_uri)
        assert isinstance(backend, Backend)
        assert backend_for(store_uri) is backend  # one shared instance per URI
        assert backend.list_runs() == []

    def test_create_list_update_run(self, store_uri):
        backend = backend_for(store_uri)
        docs = [make_doc(extra=i, 名前="ünïcødé") for i in range(3)]
        for doc in docs:
            backend.create_run(doc)

        def listing() -> dict[str, Any]:  # a tracking server adds who created the run (``owner``)
            return {d["id"]: {k: v for k, v in d.items() if k != "owner"} for d in backend.list_runs()}

        listed = listing()
        assert listed == {d["id"]: d for d in docs}

        target = docs[1]
        replacement = {k: v for k, v in target.items() if k != "extra"}
        replacement.update(status="finished", end_time=_dt.datetime.now(_dt.timezone.utc).isoformat())
        backend.update_run(target["id"], replacement)
        listed = listing()
        assert len(listed) == 3
        assert listed[target["id"]] == replacement  # replaced whole, not merged
        assert "extra" not in listed[target["id"]]
        for other in (docs[0], docs[2]):
            assert listed[other["id"]] == other

        backend.update_run(target["id"], dict(replacement, heartbeat=123.0))
        (again,) = [d for d in backend.list_runs() if d["id"] == target["id"]]
        assert again["heartbeat"] == 123.0

    def test_segments_read_back_in_seq_order(self, store_uri):
        backend = backend_for(store_uri)
        doc = make_doc()
        other = make_doc()
        backend.create_run(doc)
        backend.create_run(other)
        assert backend.read_segments(doc["id"]) == []
        seqs = [2, 0, 11, 1, 10, 3, 9]  # out of order, and 9 < 10 < 11 must not sort as text
        for seq in seqs:
            backend.append(doc["id"], seq, {"format": 1, "run_id": doc["id"], "seq": seq,
                                            "params": [[f"p{seq}", "välue", 1.5]]})
        backend.append(other["id"], 0, {"format": 1, "run_id": other["id"], "seq": 0})
        segments = backend.read_segments(doc["id"])
        assert [s["seq"] for s in segments] == sorted(seqs)
        assert segments[0]["params"] == [["p0", "välue", 1.5]]
        assert [s["seq"] for s in backend.read_segments(other["id"])] == [0]

    def test_put_artifact_content_addressed(self, store_uri, tmp_path):
        backend = backend_for(store_uri)
        data = _payload(70_000, seed=1)
        first = _write(tmp_path / "a" / "model.bin", data)
        second = _write(tmp_path / "b" / "copy-of-model.bin", data)
        sha, size = backend.put_artifact(str(first))
        assert (sha, size) == (_sha(data), len(data))
        assert backend.put_artifact(str(second)) == (sha, size)
        with backend.open_artifact(sha) as fh:
            assert fh.read() == data

        other = _write(tmp_path / "other.bin", b"other content")
        other_sha, other_size = backend.put_artifact(str(other))
        assert (other_sha, other_size) == (_sha(b"other content"), 13)
        assert other_sha != sha

        empty = _write(tmp_path / "empty", b"")
        assert backend.put_artifact(str(empty)) == (_sha(b""), 0)
        with backend.open_artifact(_sha(b"")) as fh:
            assert fh.read() == b""

        stored = getattr(self, "stored_artifacts", None)
        if stored is not None:
            assert len(stored(store_uri)) == 3  # model once, other, empty

    def test_open_unknown_artifact(self, store_uri):
        backend = backend_for(store_uri)
        with pytest.raises(FileNotFoundError):
            backend.open_artifact(_sha(b"never stored"))

    @pytest.mark.parametrize("bad", ["../x", "a/b", "", ".", "..", "a\\b"])
    def test_invalid_run_ids_refused(self, store_uri, bad):
        backend = backend_for(store_uri)
        with pytest.raises(ValueError):
            backend.create_run(make_doc(bad))
        with pytest.raises(ValueError):
            backend.update_run(bad, make_doc(bad))
        with pytest.raises(ValueError):
            backend.append(bad, 0, {"format": 1, "seq": 0})
        with pytest.raises(ValueError):
            backend.read_segments(bad)
        assert backend.list_runs() == []

    # ------------------------------------------------------------------------------------
    # The public API, round trip
    # ------------------------------------------------------------------------------------
    def test_params_keep_types(self, store_uri):
        params = {
            "optimizer": {"学习率": 0.01, "layers": 3, "nested": {"deep": "x"}},
            "flag": True,
            "off": False,
            "nothing": None,
            "sizes": [64, 64, 0.5],
            "name": "ünïcødé ✓",
            "lr": 0.01,
            "whole_float": 2.0,
            "nan": float("nan"),
        }
        with autotrack.start_run(uri=store_uri, params=params) as run:
            run.log_params({"later": 7})
            run.log_params({"lr": 0.02})  # the latest value wins
        rec = autotrack.get_run(run.id, uri=store_uri)
        p = rec.params
        assert p["optimizer/学习率"] == 0.01 and type(p["optimizer/学习率"]) is float
        assert p["optimizer/layers"] == 3 and type(p["optimizer/layers"]) is int
        assert p["optimizer/nested/deep"] == "x"
        assert p["flag"] is True and p["off"] is False
        assert "nothing" in p and p["nothing"] is None
        assert p["sizes"] == [64, 64, 0.5] and type(p["sizes"][0]) is int
        assert p["name"] == "ünïcødé ✓"
        assert p["whole_float"] == 2.0 and type(p["whole_float"]) is float
        assert isinstance(p["nan"], float) and math.isnan(p["nan"])
        assert p["later"] == 7
        assert p["lr"] == 0.02
        assert [v for v, _ts in rec.param_history["lr"]] == [0.01, 0.02]

    def test_metrics_non_finite_and_order(self, store_uri):
        with autotrack.start_run(uri=store_uri) as run:
            run.log_metric("odd", float("nan"), step=0)
            run.log_metric("odd", float("inf"), step=1)
            run.log_metric("odd", float("-inf"), step=2, epoch=1)
            run.log_metric("odd", 1.5, step=3, epoch=1)
            run.log_metric("odd", 7, step=4, epoch=1)
            for i in range(10_000):
                run.log_metrics({"loss": 1.0 / (i + 1)}, step=i, epoch=i // 1000)
        rec = autotrack.get_run(run.id, uri=store_uri)
        odd = rec.metrics["odd"]
        assert [p.step for p in odd] == [0, 1, 2, 3, 4]
        assert [p.epoch for p in odd] == [None, None, 1, 1, 1]
        assert math.isnan(odd[0].value)
        assert odd[1].value == math.inf
        assert odd[2].value == -math.inf
        assert odd[3].value == 1.5
        assert odd[4].value == 7
        assert all(isinstance(p.timestamp, float) for p in odd)

        loss = rec.metrics["loss"]
        assert len(loss) == 10_000
        assert [p.step for p in loss] == list(range(10_000))
        assert [p.value for p in loss] == [1.0 / (i + 1) for i in range(10_000)]
        assert [p.epoch for p in loss] == [i // 1000 for i in range(10_000)]
        stamps = [p.timestamp for p in loss]
        assert stamps == sorted(stamps)
        assert rec.final_metrics["loss"] == 1.0 / 10_000

    def test_auto_step_and_tags(self, store_uri):
        with autotrack.start_run(uri=store_uri, name="tagged", experiment="exp-1",
                                 tags={"team": "churn", "größe": 3}) as run:
            run.set_tags({"stage": "dev", "team": "ml"})
            for v in (0.5, 0.4, 0.3):
                run.log_metric("acc", v)
        rec = autotrack.get_run(run.id, uri=store_uri)
        assert rec.name == "tagged"
        assert rec.experiment == "exp-1"
        assert rec.tags == {"team": "ml", "größe": 3, "stage": "dev"}
        assert [(p.step, p.value) for p in rec.metrics["acc"]] == [(0, 0.5), (1, 0.4), (2, 0.3)]

    def test_finished_run_times(self, store_uri):
        before = _dt.datetime.now(_dt.timezone.utc)
        with autotrack.start_run(uri=store_uri) as run:
            run.log_metric("x", 1.0)
        after = _dt.datetime.now(_dt.timezone.utc)
        rec = autotrack.get_run(run.id, uri=store_uri)
        assert rec.status == "finished"
        assert rec.error is None
        for when in (rec.start_time, rec.end_time):
            assert isinstance(when, _dt.datetime)
            assert when.tzinfo is not None and when.utcoffset() is not None
        assert before <= rec.start_time <= rec.end_time <= after
        assert rec.framework is None and rec.parent_id is None

    def test_failed_run_records_traceback(self, store_uri):
        def train():
            raise ZeroDivisionError("boom in training")

        with pytest.raises(ZeroDivisionError):
            with autotrack.start_run(uri=store_uri) as run:
                run.log_metric("loss", 1.0)
                train()
        rec = autotrack.get_run(run.id, uri=store_uri)
        assert rec.status == "failed"
        assert rec.end_time is not None and rec.end_time.tzinfo is not None
        assert "Traceback (most recent call last)" in rec.error
        assert "ZeroDivisionError: boom in training" in rec.error
        assert "in train" in rec.error
        assert [p.value for p in rec.metrics["loss"]] == [1.0]

    def test_artifacts_round_trip(self, store_uri, tmp_path):
        model_bytes = _payload(300_000, seed=2)
        model = _write(tmp_path / "src" / "model.pt", model_bytes)
        folder = tmp_path / "src" / "ckpts"
        files = {
            "a.txt": b"alpha\n",
            "sub/b.bin": bytes(range(256)) * 40,
            "sub/deeper/empty": b"",
            "ünï.txt": "ünïcødé".encode(),
        }
        for rel, data in files.items():
            _write(folder / rel, data)

        with autotrack.start_run(uri=store_uri) as run:
            run.log_artifact(model, kind="model", metadata={"epoch": 2, "score": 0.91, "tags": ["a"]})
            run.log_artifact(folder, kind="checkpoint", metadata={"step": 100})
            run.log_artifact(model, name="weights.bin", kind="data")
        rec = autotrack.get_run(run.id, uri=store_uri)
        arts = {a.name: a for a in rec.artifacts}
        assert set(arts) == {"model.pt", "weights.bin", *(f"ckpts/{rel}" for rel in files)}

        art = arts["model.pt"]
        assert art.kind == "model"
        assert art.metadata == {"epoch": 2, "score": 0.91, "tags": ["a"]}
        assert art.sha256 == _sha(model_bytes) and art.size == len(model_bytes)
        with art.open() as fh:
            assert fh.read() == model_bytes
        assert art.read_bytes() == model_bytes
        with art.open() as fh:
            assert b"".join(fh) == model_bytes  # chunked reads verify too
        dest_dir = tmp_path / "downloads"
        dest_dir.mkdir()
        got = art.download(dest_dir)
        assert Path(got) == dest_dir / "model.pt"
        assert Path(got).read_bytes() == model_bytes
        got = art.download(tmp_path / "elsewhere" / "renamed.pt")
        assert Path(got).read_bytes() == model_bytes
        assert rec.artifact("model.pt") is art

        assert arts["weights.bin"].kind == "data"
        assert arts["weights.bin"].sha256 == art.sha256

        for rel, data in files.items():
            a = arts[f"ckpts/{rel}"]
            assert a.kind == "checkpoint"
            assert a.metadata == {"step": 100, "group": "ckpts"}
            assert a.sha256 == _sha(data) and a.size == len(data)
            with a.open() as fh:
                assert fh.read() == data
            assert Path(a.download(tmp_path / "dl" / rel)).read_bytes() == data

        backend = backend_for(store_uri)
        with backend.open_artifact(art.sha256) as fh:
            assert fh.read() == model_bytes

    def test_same_content_two_runs_same_sha(self, store_uri, tmp_path):
        data = _payload(50_000, seed=3)
        first = _write(tmp_path / "one" / "ckpt.bin", data)
        with autotrack.start_run(uri=store_uri) as run1:
            run1.log_artifact(first, kind="checkpoint")
        second = _write(tmp_path / "two" / "other-name.bin", data)
        with autotrack.start_run(uri=store_uri) as run2:
            run2.log_artifact(second)
        first.unlink()  # stored content outlives the user's files
        second.unlink()
        (a1,) = autotrack.get_run(run1.id, uri=store_uri).artifacts
        (a2,) = autotrack.get_run(run2.id, uri=store_uri).artifacts
        assert a1.sha256 == a2.sha256 == _sha(data)
        assert a1.read_bytes() == a2.read_bytes() == data
        stored = getattr(self, "stored_artifacts", None)
        if stored is not None:
            assert len(stored(store_uri)) == 1

    def test_artifact_pinned_at_log_time(self, store_uri, tmp_path):
        path = _write(tmp_path / "state.bin", b"version 1")
        with autotrack.start_run(uri=store_uri) as run:
            run.log_artifact(path)
            run.flush()
            path.write_bytes(b"version 2, longer")
        (art,) = autotrack.get_run(run.id, uri=store_uri).artifacts
        assert art.read_bytes() == b"version 1"

    def test_corrupted_artifact_raises(self, store_uri, tmp_path):
        corrupt = getattr(self, "corrupt_artifact", None)
        if corrupt is None:
            pytest.skip("this backend exposes no corrupt_artifact hook")
        from autotrack import IntegrityError

        data = _payload(20_000, seed=4)
        with autotrack.start_run(uri=store_uri) as run:
            run.log_artifact(_write(tmp_path / "w.bin", data))
        (art,) = autotrack.get_run(run.id, uri=store_uri).artifacts
        assert art.read_bytes() == data
        corrupt(store_uri, art.sha256)
        (art,) = autotrack.get_run(run.id, uri=store_uri).artifacts
        with pytest.raises(IntegrityError):
            with art.open() as fh:
                fh.read()
        with pytest.raises(IntegrityError):
            with art.open() as fh:
                for _chunk in fh:
                    pass
        dest = tmp_path / "dl" / "w.bin"
        with pytest.raises(IntegrityError):
            art.download(dest)
        assert not dest.exists()  # no half-trusted file left behind
        assert not [p for p in dest.parent.iterdir()]

    # ------------------------------------------------------------------------------------
    # Finding runs
    # ------------------------------------------------------------------------------------
    def test_runs_order_and_filters(self, store_uri):
        assert autotrack.runs(uri=store_uri) == []
        assert autotrack.last_run(uri=store_uri) is None
        with autotrack.start_run(uri=store_uri, experiment="alpha") as a:
            pass
        with autotrack.start_run(uri=store_uri, experiment="beta") as b:
            pass
        with pytest.raises(RuntimeError):
            with autotrack.start_run(uri=store_uri, experiment="alpha") as c:
                raise RuntimeError("nope")

        def ids(records):
            return [r.id for r in records]

        assert ids(autotrack.runs(uri=store_uri)) == [c.id, b.id, a.id]
        assert ids(autotrack.runs(uri=store_uri, experiment="alpha")) == [c.id, a.id]
        assert ids(autotrack.runs(uri=store_uri, experiment="beta")) == [b.id]
        assert ids(autotrack.runs(uri=store_uri, experiment="gamma")) == []
        assert ids(autotrack.runs(uri=store_uri, status="failed")) == [c.id]
        assert ids(autotrack.runs(uri=store_uri, status="finished")) == [b.id, a.id]
        assert ids(autotrack.runs(uri=store_uri, experiment="alpha", status="finished")) == [a.id]
        assert autotrack.last_run(uri=store_uri).id == c.id
        assert autotrack.get_run("last", uri=store_uri).id == c.id

    def test_get_run_prefixes(self, store_uri):
        from autotrack import AmbiguousRunError, RunNotFoundError

        backend = backend_for(store_uri)
        ids = [uuid.uuid4().hex for _ in range(17)]  # 17 ids, 16 hex digits: a 1-char prefix collides
        for run_id in ids:
            backend.create_run(make_doc(run_id))

        first_chars = [i[0] for i in ids]
        shared = next(ch for ch in first_chars if first_chars.count(ch) > 1)
        with pytest.raises(AmbiguousRunError):
            autotrack.get_run(shared, uri=store_uri)

        # Each lookup lists the whole store (slow on a remote one): check one id of each kind.
        run_id = next(i for i in ids if i[0] == shared)
        assert autotrack.get_run(run_id, uri=store_uri).id == run_id
        n = 1
        while sum(other.startswith(run_id[:n]) for other in ids) > 1:
            n += 1
        assert n > 1
        assert autotrack.get_run(run_id[:n], uri=store_uri).id == run_id
        lone = [i for i in ids if first_chars.count(i[0]) == 1]
        if lone:
            assert autotrack.get_run(lone[0][0], uri=store_uri).id == lone[0]

        with pytest.raises(RunNotFoundError) as info:
            autotrack.get_run("zzzz", uri=store_uri)
        assert not isinstance(info.value, AmbiguousRunError)

    def test_read_while_running_sees_new_data(self, store_uri):
        """Readers must never be fooled by a listing cache: each flush is visible at once."""
        with autotrack.start_run(uri=store_uri) as run:
            for i in range(10):
                run.log_metric("loss", float(i), step=i)
            assert run.flush()
            rec = autotrack.get_run(run.id, uri=store_uri)
            assert rec.status == "running"
            assert rec.end_time is None
            assert [p.step for p in rec.metrics["loss"]] == list(range(10))
            assert [r.id for r in autotrack.runs(uri=store_uri, status="running")] == [run.id]

            for i in range(10, 25):
                run.log_metric("loss", float(i), step=i)
            run.log_params({"late": True})
            assert run.flush()
            rec = autotrack.get_run(run.id, uri=store_uri)
            assert [p.step for p in rec.metrics["loss"]] == list(range(25))
            assert rec.params == {"late": True}

            with autotrack.start_run(uri=store_uri) as child:  # a second run appears at once
                child.flush()
                assert {r.id for r in autotrack.runs(uri=store_uri)} == {run.id, child.id}
                assert autotrack.get_run(child.id, uri=store_uri).parent_id == run.id
        rec = autotrack.get_run(run.id, uri=store_uri)
        assert rec.status == "finished"
        assert len(rec.metrics["loss"]) == 25
