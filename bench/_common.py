"""Shared helpers: interleaved A/B timing, medians, ratios, verdict lines, result collection.

The benchmark machine is shared and noisy: every figure is taken against a baseline measured
in the same run, interleaved (A B A B ...), and reported as medians and ratios. A single
absolute time is never the verdict on its own.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.dirname(os.path.abspath(__file__))

RESULTS: list[dict[str, Any]] = []

# Peers (MLflow, W&B, DVCLive) may live outside the environment under test, e.g.
# ``pip install -c constraints.txt --target DIR mlflow wandb dvclive``; set AUTOTRACK_BENCH_PEERS=DIR.
# The folder goes at the *end* of sys.path so it never shadows a package of the environment.
PEER_PATH = os.environ.get("AUTOTRACK_BENCH_PEERS", "")
if PEER_PATH and os.path.isdir(PEER_PATH) and PEER_PATH not in sys.path:
    sys.path.append(PEER_PATH)
PEER_PATH_SNIPPET = f"import sys; sys.path.append({PEER_PATH!r}); " if PEER_PATH else ""
PEERS = ("mlflow", "wandb", "dvclive")


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def peers() -> list[str]:
    return [p for p in PEERS if installed(p)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def interleave(cases: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every case ``repeats`` times in turn (A B C A B C ...); each call returns its own time.

    The order rotates each round so no case always follows the same neighbour.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(cases[name]())
    return times


def section(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [[str(c) for c in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def verdict(workload: str, goal: str, value: float, limit: float, unit: str = "", *, higher_is_better: bool = False,
            detail: str = "") -> bool:
    """Print one ``PASS``/``MISS`` line and record it. Returns whether the goal is met."""
    ok = value >= limit if higher_is_better else value <= limit
    sign = ">=" if higher_is_better else "<="
    word = "PASS" if ok else "MISS"
    extra = f"  ({detail})" if detail else ""
    print(f"  VERDICT {word}  {workload}: {goal}: {fmt(value)}{unit} (goal {sign} {fmt(limit)}{unit}){extra}", flush=True)
    RESULTS.append({"workload": workload, "goal": goal, "value": value, "limit": limit, "unit": unit.strip(),
                    "higher_is_better": higher_is_better, "verdict": word, "detail": detail})
    return ok


def skip(workload: str, why: str) -> None:
    print(f"  VERDICT SKIP  {workload}: {why}", flush=True)
    RESULTS.append({"workload": workload, "verdict": "SKIP", "detail": why})


def record(workload: str, **data: Any) -> None:
    RESULTS.append({"workload": workload, "verdict": "DATA", **data})


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: no inherited autotrack settings, peers offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRACK_", "MLFLOW_", "WANDB_", "DVCLIVE_"))}
    if PEER_PATH:
        env["AUTOTRACK_BENCH_PEERS"] = PEER_PATH
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true", DVCLIVE_LOGLEVEL="ERROR",
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", DO_NOT_TRACK="1", DVC_NO_ANALYTICS="1",
               GIT_PYTHON_REFRESH="quiet", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
               MLFLOW_ALLOW_FILE_STORE="true")  # the file store the issue compares with (mlflow 3 deprecates it)
    env.update(extra)
    return env


def run_child(args: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def child_result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Children print one line ``BENCH-RESULT {json}``."""
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT "):])
    raise RuntimeError(f"child printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def emit(result: dict[str, Any]) -> None:
    print("BENCH-RESULT " + json.dumps(result), flush=True)


_made: list[str] = []


def tmpdir(prefix: str) -> str:
    """A fresh folder, removed when the process that made it exits (``AUTOTRACK_BENCH_KEEP=1``
    keeps them, to look at what a workload wrote)."""
    folder = tempfile.mkdtemp(prefix=f"autotrack-bench-{prefix}-")
    if not _made and os.environ.get("AUTOTRACK_BENCH_KEEP") != "1":
        import atexit

        atexit.register(_remove_made)
    _made.append(folder)
    return folder


def _remove_made() -> None:
    import shutil

    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)


def dir_bytes(path: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def clock() -> float:
    return time.perf_counter()
