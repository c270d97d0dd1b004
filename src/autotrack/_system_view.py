"""System metrics for people: a run's ``system/...`` series summed up (mean and max of each,
peak memory, GPU throttling), and the differences between runs large enough to say in words
("run 7d1e2a3b's GPU utilisation 35 % vs 92 %: input-bound?").

One place for ``autotrack show`` (``section``), ``autotrack diff`` and the dashboard's compare
view (``differences``, through ``_diff``) and the run page (``summary``). Pure: reads records only.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

__all__ = ["PREFIX", "is_system", "split", "summary", "peaks", "fmt", "differences", "info_line", "detail", "section"]

PREFIX = "system/"
_GROUPS = ("process", "cpu", "memory", "swap", "disk", "network", "gpu")  # as _sampler.GROUPS
_SLOWDOWN = 0x4 | 0x8 | 0x20 | 0x40 | 0x80  # power cap, hardware slowdown, thermal (sw, hw), power brake
_GIB = 1024 ** 3


def is_system(name: str) -> bool:
    return name.startswith(PREFIX)


def split(name: str) -> tuple[str | None, str]:
    """``system/gpu/0/power_watts`` -> ``(None, "gpu/0/power_watts")``; with a node's name
    (a multi-node run), ``system/node7/gpu/0/power_watts`` -> ``("node7", "gpu/0/power_watts")``."""
    rest = name[len(PREFIX):]
    head, _, tail = rest.partition("/")
    return (None, rest) if head in _GROUPS or not tail else (head, tail)


def _order(name: str) -> tuple[str, int, str]:
    """Per node, the process first, then the machine (CPU, memory, swap, disk, network), then GPUs."""
    node, key = split(name)
    group = key.partition("/")[0]
    return node or "", _GROUPS.index(group) if group in _GROUPS else len(_GROUPS), key


def _values(points: Any) -> list[float]:
    column = getattr(points, "column", None)
    values = column("value") if column is not None else [p.value for p in points]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _metrics(run: Any) -> Any:
    """The run's series; a record-like object without any (a diff of summaries) has none."""
    return getattr(run, "metrics", None) or {}


def summary(run: Any) -> list[dict[str, Any]]:
    """One row per system series: ``name``, ``node``, ``key``, ``mean``, ``max``, ``last``, ``count``."""
    rows = []
    metrics = _metrics(run)
    for name in sorted((n for n in metrics if is_system(n)), key=_order):
        values = _values(metrics[name])
        node, key = split(name)
        rows.append({"name": name, "node": node, "key": key, "count": len(values),
                     "mean": sum(values) / len(values) if values else None,
                     "max": max(values) if values else None, "last": values[-1] if values else None})
    return rows


def fmt(key: str, value: float | None) -> str:
    """A figure with its unit, from the series' name (``..._bytes``, ``..._percent``, ...)."""
    if value is None:
        return "—"
    if key.endswith("_bytes"):
        size, unit = abs(value), "B"
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if size < 1024 or unit == "TiB":
                break
            size /= 1024
        sign = "-" if value < 0 else ""
        return f"{sign}{int(size)} B" if unit == "B" else f"{sign}{size:.1f} {unit}"
    if key.endswith("percent"):
        return f"{value:.0f} %"
    if key.endswith("throttle_reasons"):
        return throttle_text([value]) or "none"
    for suffix, unit in (("_c", " °C"), ("_watts", " W"), ("_mhz", " MHz")):
        if key.endswith(suffix):
            return f"{value:.0f}{unit}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def throttle_text(masks: Iterable[float]) -> str:
    """The slowdown reasons seen in any of ``masks`` (NVML's bits; idle and settings left out)."""
    from autotrack._capture.system import THROTTLE_REASONS

    seen = 0
    for mask in masks:
        seen |= int(mask) & _SLOWDOWN
    return ", ".join(name for bit, name in THROTTLE_REASONS.items() if seen & bit)


def peaks(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The highest memory of the run: the process's (with children) and its memory on each GPU."""
    out = []
    for row in rows:
        where = f"{row['node']}: " if row["node"] else ""
        key = row["key"]
        if key == "process/memory_rss_bytes":
            out.append((f"{where}process memory (RSS, with children)", fmt(key, row["max"])))
        elif key.startswith("gpu/") and key.endswith("/process_memory_bytes") and row["max"]:
            out.append((f"{where}GPU {key.split('/')[1]} memory of the process", fmt(key, row["max"])))
        elif key == "memory/used_bytes":
            out.append((f"{where}machine memory used", fmt(key, row["max"])))
    return out


# -- between runs -------------------------------------------------------------------------------
def _facts(run: Any) -> dict[str, Any]:
    """What ``differences`` compares, over every node and GPU of one run."""
    rows = summary(run)
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    gpus: dict[tuple[Any, str], dict[str, Any]] = {}
    for row in rows:
        parts = row["key"].split("/")
        if parts[0] == "gpu" and len(parts) == 3:
            gpus.setdefault((row["node"], parts[1]), {})[parts[2]] = row
    used = [g for g in gpus.values() if (g.get("process_memory_bytes") or {}).get("max")] or \
        [g for g in gpus.values() if (g.get("utilization_percent") or {}).get("max")]
    utils = [g["utilization_percent"]["mean"] for g in used if (g.get("utilization_percent") or {}).get("mean") is not None]
    facts: dict[str, Any] = {
        "gpu": sum(utils) / len(utils) if utils else None,
        "cpu": _most(by_key.get("process/cpu_percent"), "mean"),
        "rss": _most(by_key.get("process/memory_rss_bytes"), "max"),
        "gpu_mem": max((g["process_memory_bytes"]["max"] for g in used if g.get("process_memory_bytes")), default=None),
        "swap": None, "throttle": None,
    }
    metrics = _metrics(run)
    swaps = [_values(metrics[r["name"]]) for r in by_key.get("swap/used_bytes", ())]
    grown = [max(v) - v[0] for v in swaps if v]
    facts["swap"] = max(grown) if grown else None
    masks = [m for g in gpus.values() if g.get("throttle_reasons") for m in _values(metrics[g["throttle_reasons"]["name"]])]
    facts["throttle"] = throttle_text(masks) if gpus else None
    return facts


def _most(rows: Any, field: str) -> float | None:
    found = [r[field] for r in rows or () if r[field] is not None]
    return max(found) if found else None


def _spread(values: list[Any], ratio: float, floor: float) -> tuple[int, int] | None:
    """Indices of the lowest and highest value when they differ by ``ratio`` and ``floor``."""
    known = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return None
    (low, lo), (high, hi) = min(known), max(known)
    if high - low < floor or high < ratio * max(low, 1e-9):
        return None
    return lo, hi


def differences(runs: Sequence[Any]) -> dict[str, list[Any]]:
    """What the runs' hardware did differently, enough to matter: one entry per finding, its
    key a sentence naming the run (``run 7d1e2a3b's GPU utilisation 35 % vs 92 %: input-bound?``),
    its value each run's figure (``None`` where the run has none)."""
    facts = [_facts(r) for r in runs]
    ids = [str(getattr(r, "id", "") or f"#{i + 1}")[:8] for i, r in enumerate(runs)]
    out: dict[str, list[Any]] = {}

    def add(field: str, key: str, ratio: float, floor: float, say: Any) -> None:
        values = [f[field] for f in facts]
        found = _spread(values, ratio, floor)
        if found is not None:
            lo, hi = found
            out[say(ids[lo], ids[hi], fmt(key, values[lo]), fmt(key, values[hi]), values[lo])] = [
                None if v is None else fmt(key, v) for v in values]

    add("gpu", "utilization_percent", 1.5, 20.0, lambda low, high, a, b, v: (
        f"run {low}'s GPU utilisation {a} vs {b}" + (": input-bound?" if v < 60 else "")))
    add("cpu", "cpu_percent", 1.5, 50.0, lambda low, high, a, b, v: f"run {high}'s process CPU {b} vs {a}")
    add("rss", "memory_rss_bytes", 1.5, 256 * 1024 ** 2, lambda low, high, a, b, v: (
        f"run {high}'s peak process memory {b} vs {a}"))
    add("gpu_mem", "memory_bytes", 1.5, _GIB, lambda low, high, a, b, v: (
        f"run {high}'s peak GPU memory {b} vs {a}"))
    swapped = [i for i, f in enumerate(facts) if (f["swap"] or 0) >= 256 * 1024 ** 2]
    if swapped and len(swapped) < len(runs):
        for i in swapped:
            out[f"run {ids[i]} swapped ({fmt('_bytes', facts[i]['swap'])} more swap used during the run)"] = [
                None if f["swap"] is None else fmt("_bytes", f["swap"]) for f in facts]
    throttled = [f["throttle"] for f in facts]
    if len(set(throttled)) > 1 and any(throttled):
        for i, reasons in enumerate(throttled):
            if reasons:
                out[f"run {ids[i]}'s GPUs slowed down: {reasons}"] = [t if t is None else t or "none" for t in throttled]
    return out


# -- autotrack show, the run page ---------------------------------------------------------------
def info_line(run: Any, rows: Sequence[dict[str, Any]]) -> str | None:
    """How the run was sampled, in one line (``every 10 s; 42 samples; GPU: absent: no NVIDIA
    driver loaded``), from ``environment["system_metrics"]``; None when neither says anything."""
    info = (run.environment or {}).get("system_metrics")
    info = info if isinstance(info, dict) else {}
    if not rows and not info:
        return None
    parts = []
    if info.get("on") is False:
        parts.append(f"off ({info.get('why')})")
    elif info:
        every = info.get("interval_seconds")
        parts.append(f"every {every:g} s" if isinstance(every, (int, float)) else "on")
    samples = max((r["count"] for r in rows), default=0)
    if info.get("on") is not False:
        parts.append(f"{samples} sample{'' if samples == 1 else 's'}" if samples else
                     "no sample (a run shorter than the interval)")
    for source in ("psutil", "gpu", "error"):
        if isinstance(info.get(source), str) and (source != "psutil" or info[source].startswith("absent")):
            parts.append(f"{'GPU' if source == 'gpu' else source}: {info[source]}")
    return "; ".join(parts)


def detail(run: Any) -> dict[str, Any] | None:
    """The run page's system section: the line, each series' figures with their units, peaks."""
    rows = summary(run)
    line = info_line(run, rows)
    if line is None:
        return None
    return {"info": line, "peaks": peaks(rows),
            "rows": [{"name": r["name"], "mean": fmt(r["key"], r["mean"]), "max": fmt(r["key"], r["max"]),
                      "last": fmt(r["key"], r["last"]), "count": r["count"]} for r in rows]}


def section(run: Any) -> Any:
    """``show``'s system section: a line on how it was sampled, mean/max per series, peak
    memory. None when the run has no system series and no word on why."""
    from rich.console import Group
    from rich.table import Table

    from autotrack._cli_format import table, text

    rows = summary(run)
    line = info_line(run, rows)
    if line is None:
        return None
    out: list[Any] = [text("system", "bold"), text("  " + line, "dim")]
    if rows:
        tab = table("series", "mean", "max", "last")
        for row in rows:
            key = row["key"]
            tab.add_row(text(row["name"][len(PREFIX):]), text(fmt(key, row["mean"])), text(fmt(key, row["max"])),
                        text(fmt(key, row["last"])))
        out.append(tab)
        found = peaks(rows)
        if found:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="dim")
            grid.add_column()
            for label, value in found:
                grid.add_row(text(f"peak {label}"), text(value))
            out.append(grid)
    out.append(text(""))
    return Group(*out)
