"""A training process for the server tests: ``python -m tests.server.client_script URI N SLEEP [ARTIFACT]``.

Logs N points of ``loss`` (step i, value i), sleeping SLEEP seconds between them, prints the
run id at start and the time spent in log_metrics at the end.
"""

from __future__ import annotations

import sys
import time

import autotrack

uri, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
artifact = sys.argv[4] if len(sys.argv) > 4 else None
with autotrack.start_run(uri=uri, params={"n": n}) as run:
    print(run.id, flush=True)
    spent = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        run.log_metrics({"loss": float(i)}, step=i)
        spent += time.perf_counter() - t0
        if pause:
            time.sleep(pause)
    if artifact:
        run.log_artifact(artifact)
print(f"log_metrics {spent:.4f}", flush=True)
