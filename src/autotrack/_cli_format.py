"""Formatting helpers for the command line: human numbers, times, sizes, strict JSON, tables.

Kept apart from ``cli.py`` so the command logic stays short, and free of rich at import time:
every function that needs rich imports it when called (``autotrack --help`` must stay quick).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import sys
from typing import Any, Iterable, Mapping

from autotrack._values import json_safe

__all__ = [
    "STATUS_STYLES", "console", "text", "table", "json_safe", "dumps_json", "fmt_value", "fmt_number",
    "fmt_duration", "fmt_size", "fmt_time", "fmt_metadata", "pick_metrics", "short", "env_summary", "run_sections",
]

STATUS_STYLES = {"running": "blue", "finished": "green", "failed": "red", "killed": "yellow", "corrupt": "magenta"}
_PREFERRED_PREFIXES = ("val_", "val-", "val/", "eval_", "eval-", "eval/", "valid")
_WIDE = 200  # when stdout is not a terminal (a pipe, a file, a test): do not wrap at 80


def console(stderr: bool = False) -> Any:
    """A rich Console on the current stdout; wide when it is not a terminal and COLUMNS is unset."""
    from rich.console import Console

    con = Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=False)
    if not con.is_terminal and not os.environ.get("COLUMNS"):
        con.width = _WIDE
    return con


def text(value: Any, style: str = "") -> Any:
    """A rich Text: user strings like ``[64, 64]`` or ``[red]`` must never be read as markup."""
    from rich.text import Text

    return value if isinstance(value, Text) else Text(value if isinstance(value, str) else fmt_value(value), style=style)


def table(*columns: str, title: str | None = None, fold: Iterable[str] = (),
          keep: Mapping[str, int] | None = None) -> Any:
    """A plain table. On a narrow terminal cells are cut with an ellipsis rather than wrapped into
    towers of 3-letter lines; columns in ``fold`` wrap instead (long values that must be read
    whole); ``keep`` gives columns a minimum width (an id must stay whole)."""
    from rich import box
    from rich.table import Table

    fold, keep = set(fold), dict(keep or {})
    tab = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                show_edge=False, pad_edge=False, collapse_padding=True)
    for col in columns:
        header = text(col)  # a metric name is user text too: never markup
        if col in fold:
            tab.add_column(header, overflow="fold", min_width=keep.get(col))
        else:
            tab.add_column(header, overflow="ellipsis", no_wrap=True, min_width=keep.get(col))
    return tab


def dumps_json(value: Any) -> str:
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False, default=str)


def fmt_number(value: float | int) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.5g}"


def fmt_value(value: Any) -> str:
    """Any param/metric/fingerprint value as short text; ``None`` is an em dash (absent)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(json_safe(value), ensure_ascii=False, default=str)
    return str(value)


def short(value: str, width: int = 60) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def fmt_time(when: _dt.datetime | None, seconds: bool = False) -> str:
    """Local time: ``2024-05-01 14:03:07`` with ``seconds``, else short (``05-01 14:03`` this year)."""
    if when is None:
        return "—"
    local = when.astimezone()
    if seconds:
        return local.strftime("%Y-%m-%d %H:%M:%S")
    this_year = local.year == _dt.datetime.now().astimezone().year
    return local.strftime("%m-%d %H:%M" if this_year else "%Y-%m-%d %H:%M")


def fmt_metadata(meta: Mapping[str, Any], width: int = 60) -> str:
    return short(", ".join(f"{k}={fmt_value(v)}" for k, v in meta.items()), width)


def pick_metrics(finals: Iterable[Mapping[str, float]], limit: int = 3) -> list[str]:
    """The metrics worth a column: validation ones first, then losses, then the most common."""
    counts: dict[str, int] = {}
    for final in finals:
        for name in final:
            counts[name] = counts.get(name, 0) + 1

    def rank(name: str) -> tuple[int, bool, int, str]:
        low = name.lower()
        if low.startswith(_PREFERRED_PREFIXES) or low.startswith(("test_", "mean_test_")):
            group = 0  # held-out data: validation, test, a search's cross-validated score
        elif "loss" in low or "score" in low or "acc" in low:
            group = 1
        else:
            group = 2  # timings and the like come last
        if "time" in low or "runtime" in low or "per_second" in low:
            group = 3
        return group, "loss" not in low, -counts[name], name

    return sorted(counts, key=rank)[:limit]


def _gpus(gpus: Any) -> str | None:
    if not isinstance(gpus, list) or not gpus:
        return None
    names: dict[str, int] = {}
    for gpu in gpus:
        name = str((gpu or {}).get("name") or "gpu")
        mem = (gpu or {}).get("memory_bytes")
        label = f"{name} ({fmt_size(mem)})" if mem else name
        names[label] = names.get(label, 0) + 1
    return ", ".join(f"{n} x {label}" if n > 1 else label for label, n in names.items())


def env_summary(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The lines of ``show``'s environment section; missing probes are simply left out."""
    def get(obj: Any, *keys: str) -> Any:
        for key in keys:
            obj = obj.get(key) if isinstance(obj, Mapping) else None
        return obj

    rows: list[tuple[str, str | None]] = []
    py = get(env, "python")
    if isinstance(py, Mapping):
        rows.append(("python", " ".join(str(v) for v in (py.get("version"), py.get("implementation")) if v)))
    rows.append(("platform", get(env, "platform", "platform") or get(env, "platform", "system")))
    rows.append(("hostname", env.get("hostname")))
    cpu = get(env, "hardware", "cpu")
    if isinstance(cpu, Mapping) and (cpu.get("model") or cpu.get("count")):
        cores = f"{cpu.get('count')} cores" if cpu.get("count") else ""
        if cpu.get("usable") and cpu.get("usable") != cpu.get("count"):
            cores += f" ({cpu['usable']} usable)"
        rows.append(("cpu", ", ".join(p for p in (cpu.get("model"), cores) if p)))
    mem = get(env, "hardware", "memory", "total_bytes")
    rows.append(("memory", fmt_size(mem) if mem else None))
    rows.append(("gpus", _gpus(get(env, "hardware", "gpus"))))
    frameworks = env.get("frameworks")
    if isinstance(frameworks, Mapping) and frameworks:
        rows.append(("frameworks", ", ".join(f"{k} {v}" for k, v in frameworks.items())))
    git = env.get("git")
    if isinstance(git, Mapping):
        commit = str(git.get("commit") or "no commit")[:10]
        parts = [commit + (f" on {git['branch']}" if git.get("branch") else ""),
                 "dirty" if git.get("dirty") else "clean"]
        if git.get("remote"):
            parts.append(str(git["remote"]))
        rows.append(("git", ", ".join(parts)))
    argv = get(env, "command", "argv")
    if isinstance(argv, list) and argv:
        rows.append(("command", shlex.join(str(a) for a in argv)))
    rows.append(("cwd", get(env, "command", "cwd")))
    return [(k, str(v)) for k, v in rows if v]


def _data_row(name: str, info: Any) -> list[Any]:
    info = info if isinstance(info, Mapping) else {}
    shape = info.get("shape")
    if info.get("sha256"):
        digest = str(info["sha256"])[:12] + (" (sampled)" if info.get("hash_sampled") else "")
    else:
        digest = f"error: {info['error']}" if info.get("error") else "—"
    shape_text = "x".join(map(str, shape)) if isinstance(shape, list) and shape else shape
    return [text(name), text(info.get("type")), text(shape_text), text(info.get("rows")), text(info.get("dtype")),
            text(digest)]


def run_sections(run: Any) -> list[tuple[str, Any]]:
    """``show``'s sections in order, each a renderable, or None when the run recorded nothing there."""
    from rich.console import Group
    from rich.table import Table

    out: list[tuple[str, Any]] = []
    tab = None
    if run.params:
        tab = table("param", "value", title="params", fold=("value",))
        for key in sorted(run.params):
            tab.add_row(text(key), text(run.params[key]))
    out.append(("params", tab))
    tab = None
    if run.metrics:
        tab = table("metric", "last", "step", "points", "min", "max", title="metrics")
        for name in sorted(run.metrics):
            points = run.metrics[name]
            finite = [p.value for p in points if not math.isnan(p.value)]
            last = points[-1] if points else None
            tab.add_row(text(name), text(fmt_number(last.value) if last else "—"), text(last.step if last else None),
                        text(str(len(points))), text(min(finite) if finite else None),
                        text(max(finite) if finite else None))
    out.append(("metrics", tab))
    tab = None
    if run.seeds:
        tab = table("source", "seed", title="seeds")
        for key, value in run.seeds.items():
            tab.add_row(text(key), text(value))
    out.append(("seeds", tab))
    tab = None
    if run.data:
        tab = table("name", "type", "shape", "rows", "dtype", "sha256", title="data")
        for name, info in run.data.items():
            tab.add_row(*_data_row(name, info))
    out.append(("data", tab))
    tab = None
    if run.artifacts:
        widest = max(len(a.name) for a in run.artifacts)
        tab = table("name", "kind", "size", "sha256", "metadata", title="artifacts", fold=("name",),
                    keep={"name": min(widest, 48)})  # names are read whole; metadata may be cut
        for art in run.artifacts:
            tab.add_row(text(art.name), text(art.kind), text(fmt_size(art.size)), text(art.sha256[:12]),
                        text(fmt_metadata(art.metadata)))
    out.append(("artifacts", tab))
    rows = env_summary(run.environment or {})
    group = None
    if rows:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column(overflow="fold")
        for key, value in rows:
            grid.add_row(key, text(value))
        group = Group(text("environment", "bold"), grid, text(""))
    out.append(("environment", group))
    return out
