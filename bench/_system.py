"""Workload 8: system metrics, sampling on vs off, side by side on the Lightning workload.

The same child as workload 3 (``_training.py lightning autotrack``: Lightning, loss logged every
step, ``autotrack.autolog()``), only the environment differs: ``AUTOTRACK_SYSTEM_METRICS=0``
(off), sampling every second (the shortest interval a user can set, ten times the default's
work), and the default (every 10 s, which a quick-size fit may not even reach). Interleaved, a
fresh process each; the figure is the ratio of medians to sampling off. The run each child wrote
is read back to count its samples, so "on" is known to have sampled.
"""

from __future__ import annotations

import os

from _common import BENCH, child_result, clean_env, median, record, run_child, section, table, tmpdir, verdict

GOAL_RATIO = 1.02  # within noise of sampling off: the training workloads' own goal

MODES = {  # mode -> environment of the child
    "untracked": ({}, "none"),
    "sampling off": ({"AUTOTRACK_SYSTEM_METRICS": "0"}, "autotrack"),
    "sampling every 1 s": ({"AUTOTRACK_SYSTEM_METRICS_SECONDS": "1"}, "autotrack"),
    "sampling every 10 s (default)": ({}, "autotrack"),
}


def _samples(folder: str) -> int:
    import autotrack

    found = autotrack.runs(uri=os.path.join(folder, "runs"))
    points = found[0].metrics.get("system/process/cpu_percent", []) if found else []
    return len(points)


def run(quick: bool, repeats: int | None = None) -> None:
    repeats = repeats or (3 if quick else 5)
    section(f"8. system metrics: Lightning wall time, sampling on / off ({repeats} interleaved repeats, "
            f"{'quick sizes' if quick else 'full sizes'})")
    times: dict[str, list[float]] = {m: [] for m in MODES}
    samples: dict[str, list[int]] = {m: [] for m in MODES}
    names = list(MODES)
    for i in range(repeats):
        k = i % len(names)
        for mode in names[k:] + names[:k]:
            env, child_mode = MODES[mode]
            folder = tmpdir("system")
            proc = run_child([os.path.join(BENCH, "_training.py"), "lightning", child_mode, "1" if quick else "0",
                              folder], env=clean_env(**env))
            times[mode].append(child_result(proc)["seconds"])
            if child_mode == "autotrack":
                samples[mode].append(_samples(folder))
    base = median(times["sampling off"])
    rows = [[m, median(ts), median(ts) / base, median(samples[m]) if samples[m] else "-"] for m, ts in times.items()]
    table(rows, ["mode", "median s", "x off", "samples"])
    record("system", repeats=repeats, median_s={m: median(ts) for m, ts in times.items()},
           ratios={m: median(ts) / base for m, ts in times.items()},
           samples={m: median(s) for m, s in samples.items() if s})
    verdict("system", "Lightning wall time, sampling every 1 s / sampling off", median(times["sampling every 1 s"]) / base,
            GOAL_RATIO, "x", detail=f"{median(samples['sampling every 1 s']):.0f} samples a run")
    verdict("system", "Lightning wall time, default sampling / sampling off",
            median(times["sampling every 10 s (default)"]) / base, GOAL_RATIO, "x")
