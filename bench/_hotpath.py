"""Workload 2: ``Run.log_metrics({"loss": x}, step=i)`` in a tight loop, including the final flush.

Each repetition is a fresh run in a fresh store: N calls, then ``run.flush()`` (everything on disk),
timed together on the calling thread; the run is then finished (not timed). A baseline in the
same process -- the same loop calling a no-op Python function with the same arguments -- is
interleaved with it, so the ratio says how many empty function calls one recorded point costs.
Peers run the same loop in a child process (their own API, offline), interleaved too.
"""

from __future__ import annotations

import os
import sys

from _common import (BENCH, child_result, clean_env, clock, emit, interleave, median, peers, record,
                     run_child, section, table, tmpdir, verdict)

GOAL_US = 3.0


def _noop(metrics, step=None, epoch=None):  # noqa: ANN001 - the baseline: a call and nothing else
    return None


def autotrack_loop(n: int, store: str) -> tuple[float, int]:
    import autotrack

    run = autotrack.start_run(uri=store)
    # Start-up is not the hot path: the run's one-off environment capture (git, packages) runs on
    # the writer thread right after start_run and would otherwise be charged to these calls
    # (it is in the training workloads' figures). Wait for it, then time calls + final flush.
    run.flush()
    log = run.log_metrics
    t0 = clock()
    for i in range(n):
        log({"loss": i * 0.001}, step=i)
    run.flush()
    elapsed = clock() - t0
    run.finish()
    run.flush()  # finish() delivers in the background: wait for it before reading the files
    events = os.path.join(store, "runs", run.id, "events")
    # bytes of the metric columns: segments minus the one-off environment capture
    size = 0
    import json

    for name in os.listdir(events):
        if not (name.endswith(".json") and name[:-5].isdigit()):  # a writer's temporary file
            continue
        with open(os.path.join(events, name), "rb") as fh:
            doc = json.loads(fh.read())
        if "metrics" in doc:
            size += len(json.dumps(doc["metrics"], separators=(",", ":")))
    return elapsed, size


def baseline_loop(n: int) -> float:
    log = _noop
    t0 = clock()
    for i in range(n):
        log({"loss": i * 0.001}, step=i)
    return clock() - t0


# -- peers, in a child process each: python _hotpath.py PEER N DIR -------------------------
def peer_loop(peer: str, n: int, folder: str) -> float:
    os.chdir(folder)
    if peer == "mlflow":
        import mlflow

        mlflow.set_tracking_uri("file://" + os.path.join(folder, "mlruns"))
        with mlflow.start_run():
            t0 = clock()
            for i in range(n):
                mlflow.log_metrics({"loss": i * 0.001}, step=i)
            elapsed = clock() - t0
        return elapsed
    if peer == "wandb":
        import wandb

        run = wandb.init(mode="offline", dir=folder, project="bench")
        t0 = clock()
        for i in range(n):
            run.log({"loss": i * 0.001}, step=i)
        run.finish()  # W&B writes its offline file on finish: counted, like autotrack's flush
        return clock() - t0
    if peer == "dvclive":
        from dvclive import Live

        with Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False) as live:
            t0 = clock()
            for i in range(n):
                live.log_metric("loss", i * 0.001)
                live.next_step()
            elapsed = clock() - t0
        return elapsed
    raise ValueError(peer)


def run(quick: bool) -> None:
    n = 10_000 if quick else 100_000
    repeats = 5 if quick else 9
    section(f"2. hot path: log_metrics({{'loss': x}}, step=i) x {n:,} + final flush")
    sizes: list[int] = []

    def at() -> float:
        elapsed, size = autotrack_loop(n, tmpdir("hot"))
        sizes.append(size)
        return elapsed

    times = interleave({"no-op call (baseline)": lambda: baseline_loop(n), "autotrack": at}, repeats)
    # peers: fewer calls (they are 100-1000x slower), per-call figures are comparable
    peer_n = {"mlflow": 300 if quick else 2_000, "wandb": 1_000 if quick else 5_000, "dvclive": 100 if quick else 500}
    peer_cases = {}
    for peer in peers():
        def once(peer: str = peer) -> float:
            proc = run_child([os.path.join(BENCH, "_hotpath.py"), peer, str(peer_n[peer]), tmpdir(peer)],
                             env=clean_env())
            return child_result(proc)["seconds"] / peer_n[peer] * n
        peer_cases[f"{peer} (peer)"] = once
    if peer_cases:
        try:
            times.update(interleave(peer_cases, 2 if quick else 3, warmup=0))
        except Exception as exc:  # noqa: BLE001 - a broken peer is a missing column, not a failed benchmark
            print(f"  peers failed: {exc}".splitlines()[0])
    base = median(times["no-op call (baseline)"])
    rows = []
    for name, ts in times.items():
        med = median(ts)
        rows.append([name, med / n * 1e6, med / base])
    table(rows, ["case", "median us/call", "x no-op call"])
    per_call = median(times["autotrack"]) / n * 1e6
    bytes_per_point = median([s / n for s in sizes])
    print(f"  on-disk metric bytes per point (step, epoch, value, time_ms columns): {bytes_per_point:.1f}")
    record("hotpath", calls=n, repeats=repeats, us_per_call={k: median(v) / n * 1e6 for k, v in times.items()},
           bytes_per_point=bytes_per_point)
    verdict("hotpath", "log_metrics per call incl. final flush", per_call, GOAL_US, " us",
            detail=f"{median(times['autotrack']) / base:.0f}x a no-op call")


if __name__ == "__main__":
    sys.path.insert(0, BENCH)
    peer, count, where = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    emit({"seconds": peer_loop(peer, count, where)})
