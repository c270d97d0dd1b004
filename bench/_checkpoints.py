"""Workload 5: recording a large checkpoint file.

``run.log_artifact(path, kind="checkpoint")`` is timed on the calling (training) thread: it must
only pin the file (a hard link) and queue it; hashing and storing happen on the writer thread.
Throughput is size / (log_artifact + flush), interleaved with a baseline that does the same work
by hand on the same thread (sha256 of the file, then a copy into a fresh folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil

from _common import clock, interleave, median, record, section, table, tmpdir, verdict

GOAL_STALL_MS = 10.0
GOAL_MB_S = 500.0


def make_file(path: str, size: int) -> None:
    block = os.urandom(16 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
        fh.write(os.urandom(64))  # unique content per file


def run(quick: bool) -> None:
    import autotrack

    size = (128 if quick else 1024) << 20
    section(f"5. checkpoints: recording a {size >> 20} MB file")
    folder = tmpdir("ckpt")
    path = os.path.join(folder, "epoch=1.ckpt")
    make_file(path, size)
    stalls: list[float] = []

    def at() -> float:
        store = tmpdir("ckpt-store")
        run = autotrack.start_run(uri=store)
        run.flush()  # the run exists; only the artifact is measured
        t0 = clock()
        run.log_artifact(path, kind="checkpoint")
        t1 = clock()
        run.flush(timeout=600)
        t2 = clock()
        run.finish()
        run.flush()  # the background delivery of the run's end, before its store is removed
        stalls.append(t1 - t0)
        shutil.rmtree(store, ignore_errors=True)
        return t2 - t0

    def by_hand() -> float:
        dest = tmpdir("ckpt-copy")
        t0 = clock()
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        shutil.copyfile(path, os.path.join(dest, digest.hexdigest()))
        t1 = clock()
        shutil.rmtree(dest, ignore_errors=True)
        return t1 - t0

    repeats = 2 if quick else 3
    times = interleave({"sha256 + copy by hand (baseline)": by_hand, "autotrack log_artifact + flush": at}, repeats)
    mb = size / 2**20
    rows = [[k, median(v), mb / median(v), median(v) / median(times["sha256 + copy by hand (baseline)"])]
            for k, v in times.items()]
    table(rows, ["case", "median s", "MB/s", "x by hand"])
    stall_ms = median(stalls) * 1e3
    print(f"  time on the training thread per log_artifact: median {stall_ms:.2f} ms, max {max(stalls) * 1e3:.2f} ms")
    record("checkpoints", mb=mb, median_s={k: median(v) for k, v in times.items()}, stall_ms=[s * 1e3 for s in stalls])
    verdict("checkpoints", f"training-thread time to record a {mb:.0f} MB checkpoint", stall_ms, GOAL_STALL_MS, " ms")
    verdict("checkpoints", "hash + store throughput", mb / median(times["autotrack log_artifact + flush"]), GOAL_MB_S,
            " MB/s", higher_is_better=True)
    shutil.rmtree(folder, ignore_errors=True)
