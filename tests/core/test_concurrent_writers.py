"""Six processes write six runs into one store at the same time (local disk and S3 via moto).

Every process logs ~2000 metric points spread over several segments, a few params, one artifact
whose content is the same in every process (all six race to store it) and one of its own.
Afterwards the store must hold exactly six finished runs, every point exactly once and in order,
and the shared content exactly once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import fsspec
import pytest

import autotrack

WRITERS = 6
POINTS = 2000

SHARED = hashlib.sha256(b"autotrack shared artifact").digest() * 16384  # 512 KiB, same everywhere


def unique_content(idx: int) -> bytes:
    return f"unique artifact of writer {idx}\n".encode() * 500


SCRIPT = r"""
import hashlib, os, sys, time
import autotrack

uri, idx, workdir, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
shared = os.path.join(workdir, f"shared-{idx}.bin")
unique = os.path.join(workdir, f"unique-{idx}.txt")
with open(shared, "wb") as fh:
    fh.write(hashlib.sha256(b"autotrack shared artifact").digest() * 16384)
with open(unique, "wb") as fh:
    fh.write(f"unique artifact of writer {idx}\n".encode() * 500)

# Get the imports and the store connection out of the way, say so, then wait for everyone.
import autotrack._records, autotrack._run
from autotrack.backends import backend_for
backend_for(uri).list_runs()
open(os.path.join(workdir, f"ready-{idx}"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.002)

with autotrack.start_run(uri=uri, name=f"writer-{idx}", experiment="concurrent",
                         params={"idx": idx, "lr": 0.01, "optim": {"name": "adam"}}) as run:
    run.log_artifact(shared, name="shared.bin", kind="model", metadata={"writer": idx})
    for i in range(%(points)d):
        run.log_metrics({"loss": 1.0 / (i + 1), "writer": idx}, step=i)
        if i %% 250 == 249:
            time.sleep(0.05)  # spread the points over several segments
    run.log_artifact(unique, name="unique.txt")
print(run.id)
""" % {"points": POINTS}


@pytest.fixture(params=["local", "s3"])
def concurrent_store(request, tmp_path):
    """(uri, extra environment for the writers, a function listing stored artifact objects)."""
    if request.param == "local":
        root = tmp_path / "store"

        def stored():
            base = root / "artifacts"
            return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

        return str(root), {}, stored
    uri = request.getfixturevalue("s3_store")
    server = request.getfixturevalue("s3_server")

    def stored():
        fs, root = fsspec.core.url_to_fs(uri)
        fs.invalidate_cache()
        return sorted(p.rsplit("/artifacts/", 1)[1] for p in fs.find(f"{root}/artifacts"))

    return uri, dict(server.env), stored


def test_six_writers_at_once(concurrent_store, tmp_path):
    uri, extra_env, stored_artifacts = concurrent_store
    env = dict(os.environ, **extra_env)
    env.update(AUTOTRACK_STRICT="1", AUTOTRACK_FLUSH_SECONDS="0.2", AUTOTRACK_SPOOL_DIR=str(tmp_path / "spool"),
               PYTHONWARNINGS="error::UserWarning:autotrack")
    env.pop("AUTOTRACK_URI", None)
    work = tmp_path / "work"
    work.mkdir()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, uri, str(idx), str(work), str(go)],
                         cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for idx in range(WRITERS)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(work.glob("ready-*"))) < WRITERS and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # one died early: its error is reported below
            time.sleep(0.01)
        go.write_text("go")
        # Watch the store while they write, as a reader in another process would: the run count
        # only grows, every listed run is readable, and no cached listing hides later writes.
        seen = 0
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline + 30:
            listed = autotrack.runs(uri=uri)
            assert len(listed) >= seen
            seen = len(listed)
            assert all(r.experiment == "concurrent" for r in listed)
            time.sleep(0.3)
        outputs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for idx, (p, (out, err)) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"writer {idx} failed:\n{err}"
    ids = {out.strip() for out, _err in outputs}
    assert len(ids) == WRITERS

    records = autotrack.runs(uri=uri)
    assert len(records) == WRITERS
    assert {r.id for r in records} == ids
    assert all(r.status == "finished" for r in records)
    assert all(r.experiment == "concurrent" for r in records)
    assert sorted(r.name for r in records) == [f"writer-{i}" for i in range(WRITERS)]
    # they really ran at the same time
    assert max(r.start_time for r in records) < min(r.end_time for r in records)

    expected_loss = [1.0 / (i + 1) for i in range(POINTS)]
    shared_sha = hashlib.sha256(SHARED).hexdigest()
    unique_shas = set()
    for rec in records:
        idx = int(rec.name.split("-")[1])
        assert rec.params == {"idx": idx, "lr": 0.01, "optim/name": "adam"}
        loss = rec.metrics["loss"]
        assert [p.step for p in loss] == list(range(POINTS))  # each point once, in order
        assert [p.value for p in loss] == expected_loss
        assert [p.value for p in rec.metrics["writer"]] == [idx] * POINTS
        arts = {a.name: a for a in rec.artifacts}
        assert set(arts) == {"shared.bin", "unique.txt"}
        assert arts["shared.bin"].sha256 == shared_sha
        assert arts["shared.bin"].size == len(SHARED)
        assert arts["shared.bin"].metadata == {"writer": idx}
        assert arts["shared.bin"].read_bytes() == SHARED
        assert arts["unique.txt"].read_bytes() == unique_content(idx)
        unique_shas.add(arts["unique.txt"].sha256)
    assert len(unique_shas) == WRITERS

    stored = stored_artifacts()
    assert stored.count(f"{shared_sha[:2]}/{shared_sha}") == 1  # the shared content: one copy
    assert len(stored) == WRITERS + 1  # and nothing else: no temporary files left behind
    assert not [s for s in stored if s.rsplit("/", 1)[-1].startswith(".")]
