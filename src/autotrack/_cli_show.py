"""``autotrack show``'s header and ``--diff``, and ``autotrack diff``'s output.

``show --diff`` prints the uncommitted diff a run recorded: through the user's pager on a
terminal, as git does, and plain in a pipe, so ``autotrack show --diff 3f2a | git apply`` works
(notes go to stderr, never into the patch). ``diff`` compares the two runs' recorded diffs as
text and sums up package changes in a few lines: one run with 300 packages and one without any
is one line, not 300 rows. Kept apart from ``cli.py`` and ``_cli_format`` to keep each short.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from typing import Any, Mapping

from autotrack._errors import AutotrackError

__all__ = ["show_header", "show_diff", "print_diff", "print_code_diff", "print_packages", "page"]

_NAMES_SHOWN = 30  # per kind of package change; --json has them all


def page(text: str) -> None:
    """``text`` through the pager when stdout is a terminal, else written as it is.

    The pager is ``$PAGER`` (an empty one means none), else ``less``; ``LESS`` defaults to
    ``FRX`` as git sets it: a text that fits the screen is simply printed, and stays there.
    """
    command = os.environ.get("PAGER")
    argv = shlex.split(command) if command is not None else ["less"]
    if not sys.stdout.isatty() or not argv or shutil.which(argv[0]) is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, env={"LESS": "FRX", **os.environ})
    except OSError:  # found but not runnable: the text is still wanted
        sys.stdout.write(text)
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode(sys.stdout.encoding or "utf-8", "replace"))
        proc.stdin.close()
    except BrokenPipeError:  # quit before the end: that is what a pager is for
        pass
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:  # Ctrl-C belongs to the pager (less stops a search with it)
            continue


def show_header(con: Any, run: Any) -> None:
    """``show``'s first lines: who the run is, how it ended, where it is stored."""
    from rich.table import Table

    from autotrack._cli_format import STATUS_STYLES, fmt_duration, fmt_metadata, fmt_time, text

    con.print(text(f"run {run.id}  {run.name}", "bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("experiment", text(run.experiment)),
        ("status", text(run.status, STATUS_STYLES.get(run.status, ""))),
        ("framework", text(run.framework or "manual")),
        ("start", text(fmt_time(run.start_time, seconds=True))),
        ("end", text(fmt_time(run.end_time, seconds=True))),
        ("duration", text(fmt_duration(run.duration))),
    ]
    if run.parent_id:
        rows.append(("parent", text(run.parent_id)))
    if run.tags:
        rows.append(("tags", text(fmt_metadata(run.tags, 200))))
    rows.append(("store", text(run.uri)))
    for key, value in rows:
        grid.add_row(key, value)
    con.print(grid)
    con.print()


def _git_of(run: Any) -> Mapping[str, Any] | None:
    git = (run.environment or {}).get("git")
    return git if isinstance(git, Mapping) else None


def show_diff(run: Any, as_json: bool) -> int:
    """``show --diff``: the run's recorded ``git diff`` (against its commit), exactly as recorded."""
    from autotrack._cli_format import dumps_json, fmt_size

    git = _git_of(run)
    if git is None:
        raise AutotrackError(f"run {run.id[:8]} has no git state recorded (not started from a git repository, "
                             "or git was not installed)")
    diff = git.get("diff") if isinstance(git.get("diff"), str) else ""
    untracked = [u for u in git.get("untracked") or () if isinstance(u, str)]
    if as_json:
        sys.stdout.write(dumps_json({"id": run.id, "commit": git.get("commit"), "branch": git.get("branch"),
                                     "dirty": git.get("dirty"), "diff": diff,
                                     "diff_truncated": bool(git.get("diff_truncated")),
                                     "diff_bytes": git.get("diff_bytes"), "untracked": untracked}) + "\n")
        return 0
    notes = []
    if diff:
        page(diff)
        if git.get("diff_truncated"):
            full = git.get("diff_bytes")
            notes.append(f"the diff was truncated at capture: {len(diff.encode('utf-8'))} of "
                         f"{full if type(full) is int else '?'} bytes recorded"
                         + (f" ({fmt_size(full)})" if type(full) is int else ""))
    else:
        notes.append(f"run {run.id[:8]} recorded no uncommitted changes (commit {str(git.get('commit'))[:10]})")
    if untracked:
        notes.append(f"{len(untracked)} untracked file{'' if len(untracked) == 1 else 's'}, not in the diff: "
                     f"{', '.join(untracked[:5])}{', …' if len(untracked) > 5 else ''} ('autotrack show' lists them)")
    for note in notes:
        print(f"autotrack: {note}", file=sys.stderr)
    return 0


def _short_id(key: str, value: Any) -> Any:
    """Hashes and commits are 40-64 characters: 12 tell two apart (``--json`` keeps them whole)."""
    if isinstance(value, str) and (key == "commit" or key.endswith("sha256")) and len(value) > 12:
        return value[:12] + "…"
    return value


def print_diff(con: Any, a: Any, b: Any, found: Mapping[str, Mapping[str, Any]]) -> None:
    """``diff``: a table per section that differs (``diff_runs``), then the code changes compared
    as text, then the package changes summed up (both in place of their rows in a table)."""
    from autotrack._cli_format import table, text

    con.print(text(f"A: {a.id[:8]} {a.name}    B: {b.id[:8]} {b.name}", "bold"))
    if not found:
        con.print(text("no differences"))
        return
    for section, entries in found.items():
        rows = {key: pair for key, pair in entries.items() if not (section == "git" and key == "diff")}
        if rows and section != "packages":
            columns = (f"A {a.id[:8]}", f"B {b.id[:8]}")
            tab = table("key", *columns, title=section, fold=columns)
            for key, (va, vb) in rows.items():
                tab.add_row(text(key), text(_short_id(key, va)), text(_short_id(key, vb)))
            con.print(tab)
    if "git" in found or "packages" in found:
        print_code_diff(con, a, b)
        print_packages(con, a, b)


def print_code_diff(con: Any, a: Any, b: Any) -> None:
    """Under ``diff``'s git table: the two runs' uncommitted changes, compared as text."""
    from rich.text import Text

    from autotrack._cli_format import text
    from autotrack._diff import code_diff

    found = code_diff(a, b)
    if found is None:
        return
    if found["same"]:
        con.print(text(f"uncommitted changes: identical in both runs ({found['lines'][0]} lines of git diff)", "bold"))
        con.print()
        return
    only = [side for side, n in zip("AB", found["lines"]) if n]
    title = (f"uncommitted changes only in {only[0]}" if len(only) == 1
             else "uncommitted changes differ (a diff of the two runs' git diffs: a '-' line is in A's only, "
                  "a '+' line in B's only)")
    con.print(text(title, "bold"))
    cut = [side for side, t in zip("AB", found["truncated"]) if t]
    if cut:
        con.print(text(f"({' and '.join(cut)}: truncated at capture; the comparison covers what was recorded)", "dim"))
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in found["unified"].splitlines():
        con.print(Text(line, style=styles.get(line[:1], "")), soft_wrap=True)
    con.print()


def _names(entries: list[str]) -> str:
    more = len(entries) - _NAMES_SHOWN
    return ", ".join(entries[:_NAMES_SHOWN]) + (f", … and {more} more (--json for all)" if more > 0 else "")


def print_packages(con: Any, a: Any, b: Any) -> None:
    """``diff``'s package section: counts, then one wrapped line per kind of change."""
    from rich.table import Table

    from autotrack._cli_format import text
    from autotrack._diff import package_changes

    found = package_changes(a, b)
    if not all(found["recorded"]):
        if any(found["recorded"]):
            missing = "AB"[found["recorded"].index(False)]
            con.print(text(f"packages: not recorded in {missing}", "bold"))
            con.print()
        return
    kinds = [("changed", [f"{n} {va} → {vb}" for n, (va, vb) in found["changed"].items()]),
             ("only in A", [f"{n} {v}" for n, v in found["only_a"].items()]),
             ("only in B", [f"{n} {v}" for n, v in found["only_b"].items()])]
    kinds = [(label, entries) for label, entries in kinds if entries]
    if not kinds:
        return
    con.print(text("packages: " + ", ".join(f"{len(e)} {label}" for label, e in kinds), "bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    for label, entries in kinds:
        grid.add_row(text(label), text(_names(entries)))
    con.print(grid)
    con.print()
