"""The conformance suite on a local disk, addressed by plain path and by ``file://`` URI."""

from __future__ import annotations

from pathlib import Path

import pytest

import autotrack
from autotrack.backends import backend_for
from tests.store_conformance import StoreConformance


def _root(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


class TestLocalStore(StoreConformance):
    @pytest.fixture(params=["path", "file-uri"])
    def store_uri(self, request, tmp_path):
        root = tmp_path / "store"
        return str(root) if request.param == "path" else f"file://{root}"

    def corrupt_artifact(self, uri, sha256):
        path = _root(uri) / "artifacts" / sha256[:2] / sha256
        data = path.read_bytes()
        path.write_bytes(bytes(b ^ 0xFF for b in data[:16]) + data[16:])

    def stored_artifacts(self, uri):
        root = _root(uri) / "artifacts"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def write_raw(self, uri, relpath, data):
        path = _root(uri) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def make_dir(self, uri, relpath):
        (_root(uri) / relpath).mkdir(parents=True, exist_ok=True)

    def make_symlink(self, uri, relpath, target):
        path = _root(uri) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)


def test_relative_path_is_taken_from_cwd(tmp_path):
    """``./runs`` means the working directory of the call (conftest chdirs to tmp_path)."""
    with autotrack.start_run(uri="./runs") as run:
        run.log_metric("x", 1.0)
    assert (tmp_path / "runs" / "runs" / run.id / "run.json").is_file()
    assert autotrack.get_run(run.id, uri=str(tmp_path / "runs")).status == "finished"
    assert autotrack.get_run(run.id, uri=f"file://{tmp_path / 'runs'}").metrics["x"][0].value == 1.0


def test_no_temporary_files_left(tmp_path):
    store = tmp_path / "store"
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1000)
    with autotrack.start_run(uri=str(store)) as run:
        for i in range(100):
            run.log_metric("m", i)
        run.log_artifact(src)
    leftovers = [p for p in store.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    backend = backend_for(str(store))
    assert [d["id"] for d in backend.list_runs()] == [run.id]


def test_a_folder_removed_after_the_store_made_it_is_made_again(tmp_path):
    """The store remembers the folders it made (issue 20: no makedirs per write); one removed
    since (a run folder deleted by hand, an events folder cleaned) is made again, not an error."""
    import shutil

    store = tmp_path / "store"
    backend = backend_for(str(store))
    doc = {"format": 1, "id": "r1", "name": "r", "experiment": "default", "status": "running", "start_time": None}
    backend.create_run(doc)
    backend.append("r1", 0, {"seq": 0, "run_id": "r1"})
    shutil.rmtree(store / "runs" / "r1")
    backend.update_run("r1", dict(doc, status="finished"))
    backend.append("r1", 1, {"seq": 1, "run_id": "r1"})
    assert (store / "runs" / "r1" / "run.json").is_file() and (store / "runs" / "r1" / "events" / "00000001.json").is_file()
    assert [p.name for p in (store / "runs" / "r1").rglob(".*")] == [], "no temporary file left"
