"""Workload 1: the cost of ``import autotrack`` and ``autotrack.autolog()`` in a fresh interpreter.

Each case is a new ``python -c ...`` process, timed from the outside (wall clock), interleaved with
a bare interpreter (``python -c pass``); the figure is the median extra time over the bare one.
"""

from __future__ import annotations

import subprocess
import sys

from _common import (PEER_PATH_SNIPPET, clean_env, clock, interleave, median, peers, record, section, table,
                     tmpdir, verdict)

GOAL_MS = 30.0
HEAVY = ("torch", "lightning", "pytorch_lightning", "tensorflow", "keras", "sklearn", "xgboost", "transformers",
         "numpy", "pandas")


def _timer(code: str, cwd: str, env: dict[str, str]):
    cmd = [sys.executable, "-c", code]

    def once() -> float:
        t0 = clock()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return clock() - t0

    return once


def run(quick: bool) -> None:
    section("1. import: fresh interpreter, wall time over a bare `python -c pass`")
    cwd = tmpdir("import")
    env = clean_env(AUTOTRACK_URI=cwd + "/runs")
    cases = {
        "bare python": "pass",
        "import autotrack": "import autotrack",
        "import autotrack; autolog()": "import autotrack; autotrack.autolog()",
        # diagnostic: autolog() uses wrapt's post-import hooks; wrapt 2 imports asyncio,
        # importlib.metadata, ... at import (see docs/benchmarks.md)
        "import wrapt (diagnostic)": "import wrapt",
    }
    names = {"mlflow": "import mlflow", "wandb": "import wandb", "dvclive": "import dvclive"}
    for peer in peers():
        cases[f"{names[peer]} (peer)"] = PEER_PATH_SNIPPET + names[peer]
    repeats = 7 if quick else 25
    times = interleave({k: _timer(v, cwd, env) for k, v in cases.items()}, repeats)
    base = median(times["bare python"])
    rows = []
    for name, ts in times.items():
        med = median(ts)
        rows.append([name, med * 1e3, (med - base) * 1e3, med / base])
    table(rows, ["case", "median ms", "over bare ms", "x bare"])
    record("import", repeats=repeats, medians_ms={k: median(v) * 1e3 for k, v in times.items()})

    # what autolog() pulled in: it must import no framework by itself
    probe = ("import sys, autotrack; autotrack.autolog(); "
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True,
                           check=True).stdout.strip()
    print(f"  heavy modules imported by autolog(): {heavy or 'none'}")
    verdict("import", "import autotrack over bare interpreter",
            (median(times["import autotrack"]) - base) * 1e3, GOAL_MS, " ms")
    verdict("import", "import autotrack + autolog() over bare interpreter",
            (median(times["import autotrack; autolog()"]) - base) * 1e3, GOAL_MS, " ms",
            detail=f"frameworks imported: {heavy or 'none'}")
