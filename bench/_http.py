"""Workload 6: one client to a local ``autotrack serve``.

* Throughput: one process logs N points to ``http://127.0.0.1:PORT`` and flushes; points/s.
* Server stopped: the Lightning workload of ``_training.py`` with ``AUTOTRACK_URI`` pointing at
  a port where nothing listens, interleaved with the file store: the ratio must stay ~1.

Skipped, with a clear line, while the HTTP backend (issue 6) is not there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from _common import (BENCH, child_result, clean_env, clock, median, record, run_child, section, skip, table, tmpdir,
                     verdict)

GOAL_POINTS_S = 100_000.0
GOAL_RATIO = 1.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def run(quick: bool) -> None:
    section("6. HTTP: one client to a local `autotrack serve`")
    try:
        import autotrack.backends.http  # noqa: F401
    except ImportError:
        skip("http", "needs autotrack serve (issue 6): autotrack.backends.http is not importable yet")
        return
    import autotrack

    store, port = tmpdir("http-store"), _free_port()
    server = subprocess.Popen([sys.executable, "-m", "autotrack", "serve", "--uri", store, "--host", "127.0.0.1",
                               "--port", str(port)], env=clean_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        if not _wait_port(port, 30):
            skip("http", f"`autotrack serve` did not listen on port {port}: {server.stderr.read()[-300:] if server.poll() is not None else 'timeout'}")
            return
        n = 100_000 if quick else 1_000_000
        rates = []
        for _ in range(3):
            run = autotrack.start_run(uri=f"http://127.0.0.1:{port}")
            t0 = clock()
            for i in range(n):
                run.log_metrics({"loss": i * 1e-6}, step=i)
            run.finish()
            run.flush()  # finish() delivers in the background: the rate counts delivered points
            rates.append(n / (clock() - t0))
        print(f"  {n:,} points per run, 3 runs: median {median(rates):,.0f} points/s delivered")
        record("http/throughput", points=n, points_per_s=rates)
        verdict("http", "metric points delivered per second (one client)", median(rates), GOAL_POINTS_S, " points/s",
                higher_is_better=True)
    finally:
        server.terminate()
        server.wait(10)

    # server stopped: the training overhead must be that of the file store
    dead = f"http://127.0.0.1:{_free_port()}"
    times: dict[str, list[float]] = {"file store": [], "http, server stopped": []}
    for i in range(2 if quick else 5):
        order = list(times) if i % 2 == 0 else list(reversed(times))
        for mode in order:
            folder = tmpdir("http-train")
            extra = {"AUTOTRACK_URI": dead, "AUTOTRACK_SPOOL_DIR": os.path.join(folder, "spool")} if "http" in mode else {}
            proc = run_child([os.path.join(BENCH, "_http.py"), "1" if quick else "0", folder], env=clean_env(**extra))
            times[mode].append(child_result(proc)["seconds"])
    base = median(times["file store"])
    table([[k, median(v), median(v) / base] for k, v in times.items()], ["lightning with autotrack", "median s", "x file"])
    record("http/server-stopped", median_s={k: median(v) for k, v in times.items()})
    verdict("http", "training time, server stopped / file store", median(times["http, server stopped"]) / base,
            GOAL_RATIO, "x")


if __name__ == "__main__":  # child: the Lightning workload with autotrack, URI from the environment
    sys.path.insert(0, BENCH)
    import _training
    from _common import emit

    quick_flag, where = sys.argv[1:3]
    os.chdir(where)
    uri = os.environ.get("AUTOTRACK_URI")
    if uri is None:
        os.environ["AUTOTRACK_URI"] = os.path.join(where, "runs")
    emit({"seconds": _training.lightning_job("autotrack-env", quick_flag == "1", where)})
