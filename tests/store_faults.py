"""Conformance cases for stores that fail: refused, full, hung or corrupting writes, and shared
artifact bytes. Mixed into ``StoreConformance``, so every backend (memory, local, S3, HTTP)
runs them, each through the fault-injection wrapper of ``tests/faulty_store.py``.

What must hold: nothing recorded is lost. What the store refuses is retried; what it never takes
is spooled at the end with true numbers and delivered later by ``autotrack sync``, exactly once;
a damaged segment costs only itself; a slow store never makes a live run read ``killed``; and
one run never frees bytes another run references.
"""

from __future__ import annotations

import time
import warnings

import pytest

import autotrack
from autotrack._safety import AutotrackWarning
from autotrack.cli import main as cli
from tests.faulty_store import WRITES, faulty




def _record(uri: str, tmp_path, points: int = 300):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    run = autotrack.start_run(uri=uri, params={"lr": 0.1}, tags={"team": "a"})
    for i in range(points):
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i, epoch=i // 100)
    run.log_artifact(model, kind="model")
    model.unlink()  # pinned at log time: the user may delete it at once
    return run


def _check_complete(record, points: int = 300) -> None:
    assert record.status == "finished" and record.error is None
    assert record.params == {"lr": 0.1} and record.tags == {"team": "a"}
    steps = [p.step for p in record.metrics["loss"]]
    assert steps == list(range(points))  # every point, once
    (art,) = record.artifacts
    assert art.read_bytes() == b"weights" * 1000
    assert record.environment.get("python")


class StoreFaultCases:
    def test_refused_writes_are_retried_until_the_store_takes_them(self, store_uri, tmp_path, lenient):
        uri, faults = faulty(store_uri)
        faults.refuse |= WRITES
        run = _record(uri, tmp_path)
        assert run.flush(timeout=3) is False  # the store refused it: not delivered
        faults.clear()
        assert run.flush(timeout=30) is True
        run.finish()
        _check_complete(autotrack.get_run(run.id, uri=store_uri))
        assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())

    def test_full_store_spools_everything_and_sync_delivers_it(self, store_uri, tmp_path, lenient, monkeypatch):
        monkeypatch.setenv("AUTOTRACK_EXIT_TIMEOUT", "2")
        uri, faults = faulty(store_uri)
        faults.fill |= WRITES - {"create_run"}
        run = _record(uri, tmp_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.finish()  # returns before the store is tried (docs/api.md, "How runs end")
            assert run.flush() is False  # waits for the background delivery: not delivered, spooled
        text = " ".join(str(w.message) for w in caught if issubclass(w.category, AutotrackWarning))
        assert "(300 metric point(s)), 1 artifact(s)" in text, text
        assert run.flush() is False  # answered at once now
        faults.clear()
        assert cli(["sync", str(tmp_path / "spool")]) == 0
        _check_complete(autotrack.get_run(run.id, uri=store_uri))

    def test_store_hanging_at_exit_loses_nothing(self, store_uri, tmp_path, lenient, monkeypatch):
        monkeypatch.setenv("AUTOTRACK_EXIT_TIMEOUT", "1.5")
        uri, faults = faulty(store_uri)
        run = _record(uri, tmp_path, points=100)
        assert run.flush(timeout=30) is True
        faults.hang |= WRITES
        for i in range(100, 4000):
            run.log_metrics({"loss": 1.0 / (i + 1)}, step=i, epoch=i // 100)
        assert faults.hanging.wait(10)
        started = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.finish()
            assert time.monotonic() - started < 1  # the store is not waited for here ...
            run.flush()  # ... but here, for at most AUTOTRACK_EXIT_TIMEOUT: then the rest is spooled
        assert time.monotonic() - started < 6
        text = " ".join(str(w.message) for w in caught if issubclass(w.category, AutotrackWarning))
        assert "3900 metric point(s)" in text, text  # the true number: the 100 before were delivered
        faults.release()  # the hung call returns now; it may or may not have stored its segment
        time.sleep(0.5)
        assert cli(["sync", str(tmp_path / "spool")]) == 0
        _check_complete(autotrack.get_run(run.id, uri=store_uri), points=4000)

    def test_damaged_segment_costs_only_itself(self, store_uri, tmp_path, lenient):
        """A store stores it damaged (then readers skip it and say so), or refuses it (a tracking
        server validates what it takes: then it waits in the spool); either way, only it."""
        uri, faults = faulty(store_uri)
        faults.corrupt.add(1)
        with autotrack.start_run(uri=uri) as run:
            for seq in range(3):
                run.log_metrics({"loss": float(seq)}, step=seq)
                run.log_params({f"p{seq}": seq})
                run.flush(timeout=5)
        record = autotrack.get_run(run.id, uri=store_uri)
        assert record.status == "finished"
        assert [p.step for p in record.metrics["loss"]] == [0, 2]
        assert record.params == {"p0": 0, "p2": 2}
        if record.problems:
            assert "00000001" in record.problems[0]["file"]
        else:  # refused: kept, and spooled at the end
            assert (tmp_path / "spool" / run.id / "events" / "00000001.json").is_file()

    def test_slow_upload_keeps_a_live_run_alive(self, store_uri, tmp_path, monkeypatch):
        monkeypatch.setenv("AUTOTRACK_HEARTBEAT_SECONDS", "0.2")
        uri, faults = faulty(store_uri)
        model = tmp_path / "model.bin"
        model.write_bytes(b"x" * 1000)
        with autotrack.start_run(uri=uri) as run:
            assert run.flush()
            faults.hang.add("put_artifact")
            run.log_artifact(model)
            assert faults.hanging.wait(10)
            time.sleep(1.5)  # > 4 heartbeat intervals while the writer thread waits on the upload
            assert autotrack.get_run(run.id, uri=store_uri).status == "running"
            faults.release()
        assert autotrack.get_run(run.id, uri=store_uri).status == "finished"

    def test_releasing_shared_bytes_frees_them_only_when_no_run_uses_them(self, store_uri, tmp_path):
        ckpt = tmp_path / "epoch=1.ckpt"
        ckpt.write_bytes(b"identical checkpoint bytes")
        first = autotrack.start_run(uri=store_uri)
        second = autotrack.start_run(uri=store_uri)  # a deterministic re-run: the same bytes
        for run in (first, second):
            run.log_artifact(ckpt, kind="checkpoint")
            assert run.flush()
        first.release_artifact("epoch=1.ckpt", superseded_by="epoch=2.ckpt")
        first.finish()
        rec1 = autotrack.get_run(first.id, uri=store_uri)
        assert rec1.artifacts[0].metadata == {"superseded": True, "kept": True, "superseded_by": "epoch=2.ckpt"}
        assert rec1.artifacts[0].read_bytes() == b"identical checkpoint bytes"
        second.release_artifact("epoch=1.ckpt", superseded_by="epoch=2.ckpt")
        second.finish()
        rec2 = autotrack.get_run(second.id, uri=store_uri)
        assert rec2.artifacts[0].metadata["kept"] is False
        with pytest.raises(autotrack.ArtifactNotFoundError, match="released: superseded by epoch=2.ckpt"):
            rec2.artifacts[0].read_bytes()
        with pytest.raises(autotrack.ArtifactNotFoundError):
            autotrack.get_run(first.id, uri=store_uri).artifacts[0].read_bytes()  # both let go: gone

    def test_a_run_storing_bytes_another_is_freeing_keeps_them(self, store_uri, tmp_path):
        """The reference is written before the bytes are looked for, so a release racing with
        a store of the same content never leaves the storing run without its bytes."""
        from autotrack.backends import backend_for

        backend = backend_for(store_uri)
        if not hasattr(backend, "release_artifact"):
            pytest.skip("this backend frees nothing")
        blob = tmp_path / "blob"
        blob.write_bytes(b"raced")
        a, b = "a" * 32, "b" * 32
        sha, _ = backend.put_artifact(str(blob), a)
        assert backend.put_artifact(str(blob), b)[0] == sha
        assert backend.release_artifact(a, sha) is False  # b still references them
        assert backend.open_artifact(sha).read() == b"raced"
        assert backend.release_artifact(b, sha) is True
        with pytest.raises(FileNotFoundError):
            backend.open_artifact(sha).read()
        assert backend.put_artifact(str(blob), a)[0] == sha  # stored again from scratch
        assert backend.open_artifact(sha).read() == b"raced"
