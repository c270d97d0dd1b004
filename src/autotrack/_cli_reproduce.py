"""``autotrack reproduce``, ``autotrack explain`` and ``autotrack env``: the command line of
"can I get it again, and if not, why not" (``_reproduce``, ``_explain``).

Kept out of ``cli.py`` so that module stays a list of the everyday commands; like every
command, these import what they need inside the command and fail with one line, never a
traceback. ``reproduce`` exits 0 when the replay is identical and 1 when it differs, as
``diff(1)`` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands", "print_explanation"]


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("reproduce", parents=[common], help="run a recorded run again and say if it came out the same",
                       description="Check out the run's commit in a temporary git worktree (your checkout is not "
                                   "touched), apply its recorded diff, compare packages, run its command with its "
                                   "random state restored, and compare the new run with it point by point. Exit "
                                   "status 0: identical; 1: differs (or an error).")
    p.add_argument("run", metavar="RUN", help="run id, unique id prefix, or 'last'")
    p.add_argument("--in", dest="into", metavar="DIR",
                   help="run in this folder (code you prepared) instead of a worktree of the recorded commit")
    p.add_argument("--strict", action="store_true", help="refuse to run when a package or Python version differs")
    p.add_argument("--link", metavar="PATH", action="append", default=[],
                   help="a path of your checkout that git ignores (a data folder) to link into the worktree, as it "
                        "is now (repeatable)")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("explain", parents=[common], help="why two runs differ, most likely cause first",
                       description="Ranked causes (params, code, data, seeds and random state, packages that "
                                   "compute, hardware and threads, nondeterministic kernels) and the first step "
                                   "where each metric diverges.")
    p.add_argument("run_a", metavar="RUN_A", help="run id, unique id prefix, or 'last'")
    p.add_argument("run_b", metavar="RUN_B", help="the other run")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("env", parents=[common], help="a run's packages against this interpreter's",
                       description="Packages and Python version that differ between the run and the current "
                                   "interpreter; --requirements writes a pip requirements file that recreates the run's.")
    p.add_argument("run", metavar="RUN", help="run id, unique id prefix, or 'last'")
    p.add_argument("--requirements", action="store_true", help="print a pip requirements file (name==version) instead")
    p.add_argument("-o", "--output", metavar="PATH", help="with --requirements: write it to PATH")
    p.set_defaults(func=_cmd_env)


def _say(con: Any) -> Any:
    from autotrack._cli_format import text

    return lambda line: con.print(text(line))


def print_environment(con: Any, changes: dict[str, Any], limit: int = 15) -> None:
    from autotrack._cli_format import text

    if not changes["recorded"]:
        con.print(text("environment: the run recorded no package list", "yellow"))
        return
    rows = []
    if changes["python"]:
        rows.append(f"  python {changes['python'][0]} (recorded) -> {changes['python'][1]} (now)")
    rows += [f"  {n} {v[0]} (recorded) -> {v[1]} (now)" for n, v in changes["changed"].items()]
    rows += [f"  {n} {v} (recorded) -> not installed" for n, v in changes["missing"].items()]
    rows += [f"  {n} not recorded -> {v} (now)" for n, v in changes["extra"].items()]
    if not rows:
        con.print(text("environment: same Python and packages as recorded"))
        return
    con.print(text(f"environment: {len(rows)} difference(s) from the recorded one", "yellow"))
    for row in rows[:limit]:
        con.print(text(row))
    if len(rows) > limit:
        con.print(text(f"  ... and {len(rows) - limit} more ('autotrack env RUN')", "dim"))


def print_explanation(con: Any, found: dict[str, Any]) -> None:
    from autotrack._cli_format import fmt_value, text

    if not found["causes"]:
        con.print(text("causes: nothing recorded differs (params, code, data, random state, packages, hardware)"))
        if found["divergence"]:
            con.print(text("  so the randomness or arithmetic came from outside the record: unseeded draws no recorded "
                           "generator holds, thread or GPU kernel order (docs/reproduce.md, 'Guarantees and their "
                           "limits')", "dim"))
    for i, cause in enumerate(found["causes"], 1):
        con.print(text(f"{i}. {cause['summary']}", "bold" if i == 1 else ""))
        diff = cause.get("uncommitted_diff") or cause.get("commits_diff")
        if diff:
            lines = diff.splitlines()
            for line in lines[:40]:
                con.print(text("     " + line, "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"))
            if len(lines) > 40:
                con.print(text(f"     ... {len(lines) - 40} more lines", "dim"))
    if not found["divergence"]:
        con.print(text("metrics: every point identical"))
        return
    con.print(text("metrics: first divergence", "bold"))
    for name, where in found["divergence"].items():
        if "missing" in where:
            con.print(text(f"  {name}: only in run {'B' if where['missing'] == 'a' else 'A'}"))
        else:
            epoch = f" (epoch {where['epoch']})" if where.get("epoch") is not None else ""
            con.print(text(f"  {name}: step {where['step']}{epoch}: {fmt_value(where['a'])} vs {fmt_value(where['b'])}"))


def _cmd_explain(args: argparse.Namespace) -> int:
    from autotrack._explain import explain
    from autotrack.cli import _find, _print_json, _uri

    uri = _uri(args)
    a, b = _find(args.run_a, uri), _find(args.run_b, uri)
    found = explain(a, b)
    if args.json:
        _print_json({"a": a.id, "b": b.id, **found})
        return 0
    from autotrack._cli_format import console, text

    con = console()
    con.print(text(f"A: {a.id[:8]} {a.name}    B: {b.id[:8]} {b.name}", "bold"))
    print_explanation(con, found)
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    from autotrack._reproduce import environment_changes, requirements
    from autotrack.cli import _find, _print_json, _uri

    run = _find(args.run, _uri(args))
    if args.requirements:
        body = requirements(run)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(body)
            print(f"wrote {args.output}: {sum(1 for line in body.splitlines() if line and line[0] != '#')} packages; "
                  f"pip install -r {args.output}")
        elif args.json:
            _print_json({"run": run.id, "requirements": body})
        else:
            sys.stdout.write(body)
        return 0
    changes = environment_changes(run)
    if args.json:
        _print_json({"run": run.id, **changes})
        return 0
    from autotrack._cli_format import console

    print_environment(console(), changes, limit=10_000)
    return 0


def _stderr_fd() -> int:
    """Where the script's own output goes with ``--json`` (stdout holds only the answer): our
    stderr's file, or the process's when ``sys.stderr`` is a stream without one (a notebook's)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return 2


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from autotrack._cli_format import console, text
    from autotrack._reproduce import environment_changes, reproduce
    from autotrack.cli import _find, _print_json, _uri

    uri = _uri(args)
    run = _find(args.run, uri)
    con = console(stderr=args.json)  # with --json, stdout holds only the answer
    con.print(text(f"reproducing {run.id[:8]} {run.name} ({run.status})", "bold"))
    print_environment(con, environment_changes(run))
    result = reproduce(run, uri, into=args.into, strict=args.strict, link=tuple(args.link), say=_say(con),
                       stdout=_stderr_fd() if args.json else None)
    if args.json:
        _print_json(result)
        return 0 if result["verdict"] == "identical" else 1
    con.print(text(f"new run {result['run'][:8]} (tagged reproduces={run.id[:8]}), script exit status "
                   f"{result['exit_status']}"))
    for name, state in result["models"].items():
        con.print(text(f"model {name}: {state}"))
    identical = result["verdict"] == "identical"
    con.print(text(f"verdict: {result['verdict'].upper()}", "bold green" if identical else "bold red"))
    if not identical:
        print_explanation(con, result)
    return 0 if identical else 1
