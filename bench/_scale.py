"""Workload 4: scale. A store of many runs listed; one run of 1,000,000 points written and read back.

* Listing: a store of 10,000 finished runs (params + 20 metrics each) is built with the file
  store's own ``create_run``/``append`` (the documented format, no Run per run: building it is not
  what is measured). ``autotrack.runs()`` is timed in-process, interleaved with a baseline that
  does the least any reader must (list the folder, parse every ``run.json``); ``autotrack runs``
  (the CLI, a fresh process: interpreter start included) interleaved with a bare interpreter.
* One run: 1,000,000 ``log_metrics`` calls, resident memory sampled every 5 % of them (it must not
  grow with the points: the writer holds at most one segment); then ``get_run(...).metrics`` is
  timed (a fresh record each time), interleaved with parsing the same segment files raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from _common import (clean_env, clock, interleave, median, record, rss_bytes, section, table, tmpdir, verdict)

GOAL_S = 1.0
GOAL_FLAT_MB = 32.0


def build_store(root: str, n_runs: int, n_metrics: int = 20, points: int = 5) -> None:
    from autotrack.backends.file import FileStore

    store = FileStore(root)
    now = time.time()
    for k in range(n_runs):
        run_id = uuid.uuid4().hex
        start = now - (n_runs - k) * 60
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start))
        end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + 50))
        doc = {"format": 1, "id": run_id, "name": f"run-{k}", "experiment": "scale", "parent_id": None,
               "framework": None, "status": "finished", "start_time": iso, "end_time": end,
               "heartbeat": start + 50, "heartbeat_interval": 15.0, "pid": 1}
        values = {m: [0.5 / (m + i + 1) for i in range(points)] for m in range(n_metrics)}
        # the summary the writer keeps in run.json (docs/format.md): what the dashboard's table reads
        doc["summary"] = {"params": {"lr": 0.001 * (k % 10 + 1), "layers": [64, 64], "optimizer": "adam"},
                          "metrics": {f"metric_{m}": [v[-1], min(v), max(v), points, points - 1, None]
                                      for m, v in values.items()}}  # last, min, max, count, step, epoch
        seg = {"format": 1, "run_id": run_id, "seq": 0, "time": start + 50,
               "params": [["lr", 0.001 * (k % 10 + 1), start], ["layers", [64, 64], start], ["optimizer", "adam", start]],
               "metrics": {f"metric_{m}": {"step": list(range(points)), "epoch": [None] * points,
                                          "value": [0.5 / (m + i + 1) for i in range(points)],
                                          "time_ms": [int(start * 1000) + i for i in range(points)]}
                           for m in range(n_metrics)},
               "status": {"status": "finished", "end_time": end, "error": None}}
        store.create_run(doc)
        store.append(run_id, 0, seg)


def raw_list(root: str) -> int:
    runs_dir = os.path.join(root, "runs")
    docs = []
    for name in os.listdir(runs_dir):
        with open(os.path.join(runs_dir, name, "run.json"), "rb") as fh:
            docs.append(json.loads(fh.read()))
    docs.sort(key=lambda d: d["start_time"], reverse=True)
    return len(docs)


def timed(fn):
    def once() -> float:
        t0 = clock()
        fn()
        return clock() - t0
    return once


def listing(quick: bool) -> None:
    import autotrack

    n_runs = 1_000 if quick else 10_000
    root = tmpdir("scale-store")
    t0 = clock()
    build_store(root, n_runs)
    print(f"  built a store of {n_runs:,} runs (params + 20 metrics each) in {clock() - t0:.1f} s")
    repeats = 3 if quick else 7
    times = interleave({"raw: list + parse every run.json (baseline)": timed(lambda: raw_list(root)),
                        "autotrack.runs()": timed(lambda: len(autotrack.runs(uri=root)))}, repeats)
    env = clean_env()
    cli = [sys.executable, "-m", "autotrack", "runs", "--uri", root]

    def cli_once() -> float:
        t0 = clock()
        proc = subprocess.run(cli, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"autotrack runs failed: {proc.stderr.strip()[-300:]}")
        return clock() - t0

    def bare_once() -> float:
        t0 = clock()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        return clock() - t0

    times.update(interleave({"bare interpreter (baseline)": bare_once, "autotrack runs (CLI, fresh process)": cli_once},
                            repeats))
    times.update(interleave(dashboard_cases(root), repeats))
    raw = median(times["raw: list + parse every run.json (baseline)"])
    bare = median(times["bare interpreter (baseline)"])
    rows = [[k, median(v), median(v) / (bare if "CLI" in k or "bare" in k else raw)] for k, v in times.items()]  # dashboard: x raw listing
    table(rows, ["case", "median s", "x its baseline"])
    record("scale/list", runs=n_runs, median_s={k: median(v) for k, v in times.items()})
    verdict("scale", f"autotrack.runs() over {n_runs:,} runs", median(times["autotrack.runs()"]), GOAL_S, " s")
    verdict("scale", f"`autotrack runs` over {n_runs:,} runs (whole command)",
            median(times["autotrack runs (CLI, fresh process)"]), GOAL_S, " s")
    for case in dashboard_cases(root):
        verdict("scale", f"{case} over {n_runs:,} runs", median(times[case]), GOAL_S, " s")


def dashboard_cases(root: str) -> dict:
    """The dashboard's first page, cold (a new index each time, as after a server start): the
    default view, and sorted by a metric with a text filter (every run's summary consulted)."""
    try:
        from autotrack.backends.base import backend_for
        from autotrack.ui._data import RunIndex
    except ImportError:  # before the dashboard existed
        return {}

    def first_page() -> None:
        RunIndex(backend_for(root)).page(limit=50)

    def sorted_page() -> None:
        RunIndex(backend_for(root)).page(sort="metric:metric_3:min", descending=False, text="lr=0.002", limit=50)

    return {"dashboard first page (/ui/api/runs)": timed(first_page),
            "dashboard page sorted by a metric, text filter": timed(sorted_page)}


def one_big_run(quick: bool) -> None:
    import autotrack

    n = 100_000 if quick else 1_000_000
    root = tmpdir("scale-big")
    run = autotrack.start_run(uri=root)
    log = run.log_metrics
    samples = []
    every = n // 20
    base_rss = rss_bytes()
    t0 = clock()
    for i in range(n):
        log({"loss": i * 1e-6}, step=i)
        if i % every == 0:
            samples.append(rss_bytes() - base_rss)
    run.finish()
    run.flush()  # finish() delivers in the background: writing ends when the store has it all
    write_s = clock() - t0
    samples.append(rss_bytes() - base_rss)
    mb = [s / 2**20 for s in samples]
    half = len(mb) // 2
    growth = max(mb[half:]) - max(mb[:half])
    print(f"  wrote {n:,} points in {write_s:.1f} s; resident memory over the run (MB above start, every 5 %):")
    print("    " + " ".join(f"{m:.0f}" for m in mb))
    events = os.path.join(root, "runs", run.id, "events")

    def raw_read() -> int:
        count = 0
        for name in sorted(os.listdir(events)):
            if not (name.endswith(".json") and name[:-5].isdigit()):  # a writer's temporary file
                continue
            with open(os.path.join(events, name), "rb") as fh:
                doc = json.loads(fh.read())
            count += sum(len(c["value"]) for c in doc.get("metrics", {}).values())
        return count

    def at_read() -> int:
        return len(autotrack.get_run(run.id, uri=root).metrics["loss"])

    assert at_read() == n, at_read()
    repeats = 3 if quick else 5
    times = interleave({"raw: parse the segment files (baseline)": timed(raw_read),
                        "get_run(id).metrics": timed(at_read)}, repeats)
    raw = median(times["raw: parse the segment files (baseline)"])
    table([[k, median(v), median(v) / raw] for k, v in times.items()], ["case", "median s", "x raw"])
    record("scale/one-run", points=n, write_s=write_s, rss_mb=mb, read_median_s={k: median(v) for k, v in times.items()})
    verdict("scale", f"read back one run of {n:,} points", median(times["get_run(id).metrics"]), GOAL_S, " s")
    verdict("scale", f"memory growth while writing {n:,} points (2nd half peak - 1st half peak)", growth,
            GOAL_FLAT_MB, " MB")


def run(quick: bool) -> None:
    section("4. scale: listing many runs, one run with many points")
    listing(quick)
    one_big_run(quick)
