"""The conformance suite on S3 (a moto server reached through s3fs), plus S3-only checks."""

from __future__ import annotations

import fsspec
import pytest

import autotrack
from autotrack.backends import backend_for
from tests.store_conformance import StoreConformance


def _fs(uri):
    return fsspec.core.url_to_fs(uri)


class TestS3Store(StoreConformance):
    @pytest.fixture
    def store_uri(self, s3_store):
        return s3_store

    def corrupt_artifact(self, uri, sha256):
        fs, root = _fs(uri)
        path = f"{root}/artifacts/{sha256[:2]}/{sha256}"
        data = fs.cat_file(path)
        fs.pipe_file(path, bytes(b ^ 0xFF for b in data[:16]) + data[16:])

    def stored_artifacts(self, uri):
        fs, root = _fs(uri)
        fs.invalidate_cache()
        return sorted(fs.find(f"{root}/artifacts"))

    def write_raw(self, uri, relpath, data):
        fs, root = _fs(uri)
        fs.pipe_file(f"{root}/{relpath}", data)

    def make_dir(self, uri, relpath):
        fs, root = _fs(uri)
        fs.pipe_file(f"{root}/{relpath}/.keep", b"")  # S3 has no folders: a key below makes one


def test_endpoint_is_the_moto_server(s3_server, s3_store):
    """s3fs must talk to moto, never to AWS: the object shows up through boto3 on the endpoint."""
    with autotrack.start_run(uri=s3_store) as run:
        run.log_metric("x", 1.0)
    bucket = s3_store[len("s3://"):].split("/", 1)[0]
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"runs/runs/{run.id}/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert f"runs/runs/{run.id}/run.json" in keys
    assert any(k.startswith(f"runs/runs/{run.id}/events/") for k in keys)


def test_running_run_read_with_warm_listing_cache(s3_store):
    """Readers in the writing process, with s3fs's listings warmed, see every flush at once."""
    backend = backend_for(s3_store)
    with autotrack.start_run(uri=s3_store) as run:
        run.log_metric("loss", 0.0, step=0)
        assert run.flush()
        fs, root = _fs(s3_store)
        fs.ls(f"{root}/runs")  # fill the listing caches of the shared S3FileSystem
        fs.ls(f"{root}/runs/{run.id}/events")
        assert len(autotrack.get_run(run.id, uri=s3_store).metrics["loss"]) == 1
        for step in range(1, 4):
            run.log_metric("loss", float(step), step=step)
            assert run.flush()
            assert [p.step for p in autotrack.get_run(run.id, uri=s3_store).metrics["loss"]] == list(range(step + 1))
        with autotrack.start_run(uri=s3_store) as second:
            second.flush()
            assert {d["id"] for d in backend.list_runs()} == {run.id, second.id}
    assert {r.status for r in autotrack.runs(uri=s3_store)} == {"finished"}


def _content_in_folder(prefix: str) -> bytes:
    """Some bytes whose sha256 starts with ``prefix`` (2 hex chars: ~256 tries)."""
    import hashlib

    i = 0
    while True:
        data = f"another writer's artifact {i}".encode()
        if hashlib.sha256(data).hexdigest().startswith(prefix):
            return data
        i += 1


def test_other_writers_seen_despite_warm_listing_cache(s3_store, tmp_path):
    """A reader whose S3FileSystem has cached listings (fsspec shares one instance per process,
    so any code listing the bucket warms it) must still see what another process wrote since:
    new runs, new segments of a running run, new artifacts in an already listed folder."""
    import hashlib

    import s3fs

    from autotrack.backends.file import FileStore
    from tests.store_conformance import make_doc

    reader = backend_for(s3_store)
    writer = FileStore(s3_store)
    writer.fs = s3fs.S3FileSystem(skip_instance_cache=True)  # another process's own client

    first = tmp_path / "first.bin"
    first.write_bytes(b"first artifact")
    sha1, _ = writer.put_artifact(str(first))
    doc = make_doc()
    writer.create_run(doc)
    writer.append(doc["id"], 0, {"format": 1, "run_id": doc["id"], "seq": 0})

    fs, root = _fs(s3_store)
    assert fs is reader.fs
    assert [d["id"] for d in reader.list_runs()] == [doc["id"]]
    assert [s["seq"] for s in reader.read_segments(doc["id"])] == [0]
    assert reader.open_artifact(sha1).read() == b"first artifact"
    fs.find(root)  # warm every listing, as user code sharing the instance might
    assert fs.dircache

    writer.append(doc["id"], 1, {"format": 1, "run_id": doc["id"], "seq": 1})
    writer.update_run(doc["id"], dict(doc, status="finished"))
    second = make_doc()
    writer.create_run(second)
    data = _content_in_folder(sha1[:2])
    (tmp_path / "second.bin").write_bytes(data)
    sha2, _ = writer.put_artifact(str(tmp_path / "second.bin"))
    assert sha2 == hashlib.sha256(data).hexdigest() and sha2[:2] == sha1[:2]

    listed = {d["id"]: d for d in reader.list_runs()}
    assert set(listed) == {doc["id"], second["id"]}
    assert listed[doc["id"]]["status"] == "finished"
    assert [s["seq"] for s in reader.read_segments(doc["id"])] == [0, 1]
    with reader.open_artifact(sha2) as fh:  # in a folder whose listing was cached
        assert fh.read() == data
