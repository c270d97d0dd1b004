"""The ``autotrack`` command: list, show, compare and fetch recorded runs; serve and sync a store.

Every command reads through the public reading API (``runs``, ``get_run``, ``RunRecord``), so the
command line shows exactly what a notebook would see. Two rules shape this module:

* ``autotrack --help`` must be quick: rich, the records and the backends are imported inside
  the commands, never at module level.
* A user never sees a traceback: every failure is one ``autotrack: error: ...`` line on stderr,
  exit status 2 for a usage error and 1 for anything else. ``AUTOTRACK_DEBUG=1`` re-raises, for
  the rare case where the traceback is what is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Sequence

from autotrack._cli_args import UsageError, _global_options, _Parser, output_options, whole_number
from autotrack._errors import (AmbiguousArtifactError, ArtifactNotFoundError, AutotrackError, ConfigError,
                               RunNotFoundError)

__all__ = ["main", "build_parser"]

_STATUSES = ("running", "finished", "failed", "killed", "corrupt")
_DEFAULT_TABLE_LIMIT = 50
_DEBUG_HINT = "set AUTOTRACK_DEBUG=1 to see the traceback"


_limit = whole_number(0, " (all runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autotrack",
        description="Inspect the training runs recorded by autotrack.",
        epilog="RUN is a full run id, a unique id prefix, or 'last' (the newest run). "
               "Set AUTOTRACK_DEBUG=1 to see the traceback of an unexpected error.",
    )
    from autotrack import __version__

    parser.add_argument("--version", action="version", version=f"autotrack {__version__}")
    _global_options(parser, sub=False)
    common = _Parser(add_help=False)
    _global_options(common, sub=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first",
                       description="List runs, newest first, with their final metrics.")
    p.add_argument("--experiment", "-e", help="only this experiment")
    p.add_argument("--status", "-s", choices=_STATUSES, help="only runs with this status")
    p.add_argument("--limit", "-n", type=_limit, default=None,
                   help=f"at most N runs (default: {_DEFAULT_TABLE_LIMIT} in the table, all with --json; 0: all)")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("show", parents=[common], help="everything recorded about one run",
                       description="Params, metrics, seeds, data, artifacts, environment and error of a run.")
    p.add_argument("run", metavar="RUN", help="run id, unique id prefix, or 'last'")
    p.add_argument("--diff", action="store_true",
                   help="print the uncommitted changes (git diff) the run recorded instead: through $PAGER on a "
                        "terminal, plain in a pipe (ready for 'git apply')")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("diff", parents=[common], help="what differs between two runs",
                       description="Params, metrics, seeds, data, git (with a diff of the two runs' uncommitted "
                                   "changes), packages and run facts that differ.")
    p.add_argument("run_a", metavar="RUN_A", help="run id, unique id prefix, 'last', or a model version "
                                                  "(NAME@ALIAS, NAME/N): the run that produced it")
    p.add_argument("run_b", metavar="RUN_B", help="the same, for the other side")
    p.add_argument("--explain", action="store_true",
                   help="then why they differ: ranked causes and the first diverging step (as 'autotrack explain')")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("get", parents=[common], help="download an artifact of a run",
                       description="Write an artifact's recorded bytes to a file (verified against its sha256).")
    p.add_argument("run", metavar="RUN", help="run id, unique id prefix, or 'last'")
    p.add_argument("artifact", metavar="ARTIFACT", help="artifact name (or its file name)")
    output_options(p)
    p.set_defaults(func=_cmd_get)

    from autotrack._cli_server import add_commands

    add_commands(sub, common)  # serve, sync
    from autotrack._cli_ui import add_commands as add_ui_commands

    add_ui_commands(sub, common)  # ui, report
    from autotrack._cli_models import add_commands as add_model_commands

    add_model_commands(sub, common)  # models, model show|register|alias|get|history
    from autotrack._cli_reproduce import add_commands as add_reproduce_commands

    add_reproduce_commands(sub, common)  # reproduce, explain, env
    return parser


# -- helpers ---------------------------------------------------------------------------------
def _uri(args: argparse.Namespace) -> str:
    from autotrack._config import resolve_uri
    from autotrack.backends.base import scheme_of

    uri = resolve_uri(args.uri)
    if scheme_of(uri) == "file" and "://" not in uri:
        uri = os.path.abspath(os.path.expanduser(uri))  # say which folder was read, not "./..."
    if scheme_of(uri) == "file":
        _check_local_store(uri)
    return uri


def _check_local_store(uri: str) -> None:
    """A local store that cannot be one is an error, not "No runs" with exit status 0. A folder
    not made yet is fine: no runs yet (reading never creates it)."""
    path = uri[7:] if uri[:7].lower() == "file://" else uri
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"the store {uri} is a file, not a folder (a run store is a folder holding runs/; "
                          "choose it with --uri or AUTOTRACK_URI)")
    runs = os.path.join(path, "runs")
    if os.path.exists(runs) and not os.path.isdir(runs):
        raise ConfigError(f"{uri} is not a usable run store: {runs} is a file, not the folder of runs")


def _find(run_id: str, uri: str) -> Any:
    from autotrack._records import get_run

    try:
        return get_run(run_id, uri=uri)
    except RunNotFoundError as exc:
        raise type(exc)(f"{exc} (store: {uri})") from None


def _print_json(value: Any) -> None:
    from autotrack._cli_format import dumps_json

    sys.stdout.write(dumps_json(value) + "\n")


# -- commands --------------------------------------------------------------------------------
def _cmd_runs(args: argparse.Namespace) -> int:
    from autotrack._cli_format import STATUS_STYLES, console, fmt_duration, fmt_number, fmt_time, pick_metrics, table, text
    from autotrack._records import runs

    uri = _uri(args)
    found = runs(uri, experiment=args.experiment, status=args.status)
    total = len(found)
    limit = args.limit if args.limit is not None else (0 if args.json else _DEFAULT_TABLE_LIMIT)
    if limit:
        found = found[:limit]
    if args.json:
        _print_json([r.to_dict(metrics="last") for r in found])
        return 0
    con = console()
    if not found:
        which = " ".join(f"{k} {v!r}" for k, v in (("experiment", args.experiment), ("status", args.status)) if v)
        con.print(text(f"No runs{' with ' + which if which else ''} in {uri}"))
        if not which:
            con.print(text("(choose the store with --uri or AUTOTRACK_URI)", "dim"))
        return 0
    finals = {r.id: r.final_metrics for r in found}
    names = pick_metrics(finals.values())
    cells: dict[str, Callable[[Any], Any]] = {
        "id": lambda r: text(r.id[:8], "cyan"),
        "name": lambda r: text(r.name),
        "experiment": lambda r: text(r.experiment),
        "status": lambda r: text(r.status, STATUS_STYLES.get(r.status, "")),
        "framework": lambda r: text(r.framework or "manual", "" if r.framework else "dim"),
        "start": lambda r: text(fmt_time(r.start_time)),
        "duration": lambda r: text(fmt_duration(r.duration)),
    }
    said_once = []
    for col in ("experiment", "framework"):  # the same in every row: say it once, keep room for metrics
        values = {cells[col](r).plain for r in found}
        if len(values) == 1:
            said_once.append(f"{col}: {values.pop()}")
            del cells[col]
    keep = {"id": 8, "name": min(12, max(len(r.name) for r in found)), "status": 8}
    for shown in range(len(names), -1, -1):  # drop metric columns rather than cut every column
        tab = table(*cells, *names[:shown], keep=keep)
        for run in found:
            final = finals[run.id]
            tab.add_row(*(cell(run) for cell in cells.values()),
                        *(text(fmt_number(final[n]) if n in final else "—") for n in names[:shown]))
        if not shown or con.measure(tab, options=con.options.update_width(10_000)).maximum <= con.width:
            break
    if said_once:
        con.print(text("  ".join(said_once), "dim"))
    con.print(tab)
    _print_corrupt(con, found)
    if total > len(found):
        con.print(text(f"{len(found)} of {total} runs shown; --limit N for more (0: all)", "dim"))
    return 0


def _print_corrupt(con: Any, found: list[Any]) -> None:
    """Under the table: which file of each corrupt run could not be read, and why."""
    from autotrack._cli_format import STATUS_STYLES, text

    broken = [r for r in found if r.status == "corrupt"]
    if broken:
        con.print(text(f"{len(broken)} corrupt run{'s' if len(broken) > 1 else ''}: a file that could not be read "
                       "('autotrack show ID' shows the rest)", STATUS_STYLES["corrupt"]))
    for run in broken:
        for problem in run.problems[:1]:  # the run document's (segments are show's business)
            con.print(text(f"  {run.id[:8]}  {problem['file']}: {problem['reason']}"))


def _print_problems(con: Any, run: Any) -> None:
    """``show``: the files of the run that could not be used, before what could."""
    from autotrack._cli_format import STATUS_STYLES, text

    if not run.problems:
        return
    con.print(text(f"problems: {len(run.problems)} file{'s' if len(run.problems) > 1 else ''} could not be used",
                   f"bold {STATUS_STYLES['corrupt']}"))
    for problem in run.problems:
        con.print(text(f"  {problem['file']}: {problem['reason']}"))
    con.print()


def _cmd_show(args: argparse.Namespace) -> int:
    from autotrack._cli_format import console, run_sections, text

    run = _find(args.run, _uri(args))
    if args.diff:
        from autotrack._cli_show import show_diff

        return show_diff(run, args.json)
    if args.json:
        _print_json(run.to_dict())
        return 0
    from autotrack._cli_show import show_header

    con = console()
    show_header(con, run)
    _print_problems(con, run)
    missing = []
    for name, renderable in run_sections(run):
        if renderable is None:
            missing.append(name)
        else:
            con.print(renderable)
    if missing:
        con.print(text(f"not recorded: {', '.join(missing)}", "dim"))
    if run.error:
        con.print(text("error", "bold red"))
        con.print(text(str(run.error).rstrip(), "red"))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from autotrack._cli_models import model_section, resolve_ref
    from autotrack._diff import diff_runs

    uri = _uri(args)
    (a, va), (b, vb) = resolve_ref(args.run_a, uri), resolve_ref(args.run_b, uri)  # a model version: its run
    found = diff_runs(a, b)
    model = model_section(va, vb) if va is not None or vb is not None else {}
    explained = None
    if getattr(args, "explain", False):
        from autotrack._explain import explain

        explained = explain(a, b)
    if args.json:
        out = {"model": model, **found} if model else found
        _print_json({**out, "explain": explained} if explained is not None else out)
        return 0
    from autotrack._cli_format import console
    from autotrack._cli_models import print_versions
    from autotrack._cli_show import print_diff

    con = console()
    print_versions(con, (args.run_a, va), (args.run_b, vb), model=model)
    print_diff(con, a, b, found)
    if explained is not None:
        from autotrack._cli_format import text
        from autotrack._cli_reproduce import print_explanation

        con.print(text("why they differ", "bold"))
        print_explanation(con, explained)
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    run = _find(args.run, _uri(args))
    try:
        art = run.artifact(args.artifact)
    except AmbiguousArtifactError:
        raise  # it lists the matches itself
    except ArtifactNotFoundError as exc:
        names = ", ".join(a.name for a in run.artifacts)
        message = f"{exc}; it has {names}" if names else f"{exc}; it has no artifacts"
        if run.problems:  # the artifact may be in a file that could not be read
            message += f" (files skipped: {', '.join(p['file'] for p in run.problems)}; see 'autotrack show')"
        raise ArtifactNotFoundError(message) from None
    from autotrack._output import OutputExistsError

    try:
        path = os.path.abspath(art.download(args.output, overwrite=args.force))
    except OutputExistsError as exc:
        raise OutputExistsError(f"{os.path.abspath(exc.path or args.output)} already exists: pass --force "
                                "to replace it, or -o another path") from None
    size = os.path.getsize(path)
    if args.json:
        _print_json({"path": path, "sha256": art.sha256, "size": size})
    else:
        from autotrack._cli_format import fmt_size

        print(f"{path}  sha256 {art.sha256}  ({fmt_size(size)})")
    return 0


# -- entry point -----------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    message = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return message or type(exc).__name__


def _fail(message: str) -> None:
    print(f"autotrack: error: {message}", file=sys.stderr)


def _tolerant_output() -> None:
    """Text with no UTF-8 form (a lone surrogate: the writer keeps one from an undecodable file
    name) is printed as its ``\\udcxx`` escape, which in ``--json`` output is the JSON escape
    itself, instead of failing the whole command over one run's name."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # not a text stream we may change
            pass


def _quiet_stdout() -> None:
    """After a closed pipe (``autotrack runs | head``) the interpreter's final flush must not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage error)."""
    from autotrack._config import env_flag

    debug = env_flag("AUTOTRACK_DEBUG")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except SystemExit as exc:  # --help and --version print, then exit 0
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help()
        return 2
    if args.json and args.command in ("ui", "serve"):  # they serve a page and print nothing to parse
        _fail(f"autotrack {args.command} has no --json output (see 'autotrack {args.command} --help')")
        return 2
    func: Callable[[argparse.Namespace], int] = args.func
    _tolerant_output()
    try:
        return func(args)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except (AutotrackError, OSError, ValueError, ImportError, LookupError) as exc:
        if debug:
            raise
        _fail(_one_line(exc))
        return 1
    except Exception as exc:
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {_one_line(exc)} ({_DEBUG_HINT})")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
