"""Formatting helpers for the command line: human numbers, times, sizes, strict JSON, tables.

Kept apart from ``cli.py`` so the command logic stays short, and free of rich at import time:
every function that needs rich imports it when called (``autotrack --help`` must stay quick).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shlex
import sys
from typing import Any, Iterable, Mapping

from autotrack._values import json_safe

__all__ = [
    "STATUS_STYLES", "console", "text", "table", "json_safe", "dumps_json", "fmt_value", "fmt_number",
    "fmt_duration", "fmt_size", "fmt_time", "fmt_metadata", "pick_metrics", "short", "env_summary", "git_rows",
    "run_sections", "data_rows", "artifact_state", "artifact_rows",
]

STATUS_STYLES = {"running": "blue", "finished": "green", "failed": "red", "killed": "yellow", "corrupt": "magenta"}
_PREFERRED_PREFIXES = ("val_", "val-", "val/", "eval_", "eval-", "eval/", "valid")
_WIDE = 200  # when stdout is not a terminal (a pipe, a file, a test): do not wrap at 80


class _Unpadded:
    """A text stream minus the spaces rich pads lines with (every cell of a table, every column
    of a grid is filled to its width). On a terminal they are invisible; in a pipe or a file,
    where output meets grep, diff and editors, they are noise, so they are dropped before each
    newline (colour codes after them are kept). Spaces at the end of a write are held back until
    the next one shows whether a newline follows them."""

    _PAD = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._held = ""

    def write(self, data: str) -> int:
        text = self._held + data
        body, newline, rest = text.rpartition("\n")
        kept = rest.rstrip(" \t")
        self._held = rest[len(kept):]
        if newline:
            self._stream.write(self._PAD.sub(r"\1", body) + "\n" + kept)
        elif kept:
            self._stream.write(kept)
        return len(data)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno...: the stream's
        return getattr(self._stream, name)


def console(stderr: bool = False) -> Any:
    """A rich Console on the current stdout (or stderr). When it is not a terminal: wide (unless
    COLUMNS says otherwise), and without the padding at the end of lines (``_Unpadded``)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    con = Console(file=stream, highlight=False, soft_wrap=False)
    if not con.is_terminal:
        con.file = _Unpadded(stream)
        if not os.environ.get("COLUMNS"):
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
            if not name.startswith("system/"):  # the hardware's figures are show's system section
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


_UNTRACKED_SHOWN = 20


def git_rows(git: Mapping[str, Any], run_id: str = "RUN") -> list[tuple[str, str]]:
    """The uncommitted changes under the git line: how big the recorded diff is (and whether it
    was cut at capture), where to read it, and the untracked files, which a diff never holds."""
    rows = []
    diff = git.get("diff")
    if isinstance(diff, str) and diff:
        files = sum(1 for line in diff.splitlines() if line.startswith("diff --git "))
        size = git.get("diff_bytes") if type(git.get("diff_bytes")) is int else len(diff.encode("utf-8"))
        what = f"{files} file{'' if files == 1 else 's'} changed, " if files else ""
        cut = (f", truncated at capture ({fmt_size(len(diff.encode('utf-8')))} kept)"
               if git.get("diff_truncated") else "")
        rows.append(("uncommitted", f"{what}{fmt_size(size)} of git diff{cut}: autotrack show --diff {run_id}"))
    untracked = [str(u) for u in git.get("untracked") or () if isinstance(u, str)]
    if untracked:
        shown = ", ".join(untracked[:_UNTRACKED_SHOWN])
        more = len(untracked) - _UNTRACKED_SHOWN
        rows.append(("untracked", f"{len(untracked)}: {shown}" + (f", … and {more} more (--json for all)"
                                                                  if more > 0 else "")))
    return rows


def env_summary(env: Mapping[str, Any], run_id: str = "RUN") -> list[tuple[str, str]]:
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
        rows += git_rows(git, run_id)
    argv = get(env, "command", "argv")
    if isinstance(argv, list) and argv:
        rows.append(("command", shlex.join(str(a) for a in argv)))
    rows.append(("cwd", get(env, "command", "cwd")))
    return [(k, str(v)) for k, v in rows if v]


def _shape_text(shape: Any) -> Any:
    return "x".join(map(str, shape)) if isinstance(shape, list) and shape else shape


def _part_label(index: int, part: Mapping[str, Any]) -> str:
    return str(part["key"]) if isinstance(part.get("key"), str) else f"[{index}]"


def data_rows(name: str, info: Any, depth: int = 0) -> list[list[Any]]:
    """A dataset's row of ``show``'s data table, and below it one row per part of a dataset made
    of parts (an ``(X, y)`` pair, a dict of arrays), indented, each with its own type, shape,
    rows and dtype. The dataset's own ``rows`` there is its parts' common row count (a tuple's
    length, 2, says nothing about the data), or none when the parts disagree."""
    info = info if isinstance(info, Mapping) else {}
    parts = [p for p in info.get("parts") or () if isinstance(p, Mapping)] if depth < 3 else []
    if info.get("sha256"):
        digest = str(info["sha256"])[:12] + (" (sampled)" if info.get("hash_sampled") else "")
    else:
        digest = f"error: {info['error']}" if info.get("error") else "—"
    kind, rows = info.get("type"), info.get("rows")
    if parts:
        kind = f"{kind} ({len(parts)} part{'s' if len(parts) > 1 else ''})"
        counts = {p.get("rows") for p in parts}
        rows = counts.pop() if len(counts) == 1 else None
    out = [[text("  " * depth + name), text(kind), text(_shape_text(info.get("shape"))), text(rows),
            text(info.get("dtype")), text(digest)]]
    for index, part in enumerate(parts):
        out += data_rows(_part_label(index, part), part, depth + 1)
    return out


_STATE_KEYS = ("best", "superseded", "kept")


def artifact_state(meta: Mapping[str, Any]) -> str:
    """What a checkpoint's flags mean for its bytes: ``best``, ``superseded (kept)`` (rotated out,
    bytes still there) or ``released`` (rotated out, bytes freed: ``get`` cannot fetch it)."""
    states = ["best"] if meta.get("best") is True else []
    if meta.get("superseded"):
        states.append("released" if meta.get("kept") is False else "superseded (kept)")
    return ", ".join(states)


def artifact_rows(artifacts: Iterable[Any]) -> Any:
    """``show``'s artifacts table, with a state column when any artifact has a state."""
    artifacts = list(artifacts)
    states = [artifact_state(a.metadata) for a in artifacts]
    widest = max(len(a.name) for a in artifacts)
    columns = ("name", "kind", "size", "sha256", *(("state",) if any(states) else ()), "metadata")
    # names are read whole; both wrap on a narrow terminal (with only the name wrapping, rich
    # squeezes it to nothing before it cuts the metadata)
    tab = table(*columns, title="artifacts", fold=("name", "metadata"), keep={"name": min(widest, 48)})
    for art, state in zip(artifacts, states):
        meta = {k: v for k, v in art.metadata.items() if k not in _STATE_KEYS}
        cells = [text(art.name), text(art.kind), text(fmt_size(art.size)), text(art.sha256[:12])]
        if any(states):
            cells.append(text(state, "dim" if state == "released" else "green" if "best" in state else ""))
        tab.add_row(*cells, text(fmt_metadata(meta)), style="dim" if state == "released" else None)
    return tab, "released" in states


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
    from autotrack._system_view import is_system, section

    if any(not is_system(name) for name in run.metrics):
        tab = table("metric", "last", "step", "points", "min", "max", title="metrics")
        for name in sorted(n for n in run.metrics if not is_system(n)):
            points = run.metrics[name]
            finite = [p.value for p in points if not math.isnan(p.value)]
            last = points[-1] if points else None
            tab.add_row(text(name), text(fmt_number(last.value) if last else "—"), text(last.step if last else None),
                        text(str(len(points))), text(min(finite) if finite else None),
                        text(max(finite) if finite else None))
    out.append(("metrics", tab))
    out.append(("system", section(run)))  # mean/max of each system/ series, peak memory
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
            for row in data_rows(name, info):
                tab.add_row(*row)
    out.append(("data", tab))
    group = None
    if run.artifacts:
        tab, released = artifact_rows(run.artifacts)
        group = Group(tab, text("released: a superseded checkpoint whose bytes were freed; it cannot be "
                                "downloaded", "dim")) if released else tab
    out.append(("artifacts", group))
    rows = env_summary(run.environment or {}, run.id[:8])
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
