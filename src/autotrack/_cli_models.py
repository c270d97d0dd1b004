"""``autotrack models`` and ``autotrack model show|register|alias|get|history``: the command bodies.

Every command goes through the registry's public API (``register_model``, ``set_alias``,
``get_model``, ``models``, ``model_history``), so the command line shows exactly what a notebook
would see, with the same one-line errors and exit statuses as the rest of ``cli.py``. A model
reference is ``NAME`` (its latest version), ``NAME@ALIAS`` or ``NAME/N``; ``resolve_ref`` also
lets ``autotrack diff`` take one where it takes a run: the run behind that version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable

from autotrack._cli_model_view import (aliases_text, event_dict, event_text, label, model_dict, model_section,
                                       print_version, print_versions, run_facts, version_dict, when)

__all__ = ["add_commands", "resolve_ref", "is_model_ref", "version_dict", "event_dict", "model_section",
           "print_versions"]


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    from autotrack._cli_args import _Parser, output_options

    p = sub.add_parser("models", parents=[common], help="the registered models: versions and aliases",
                       description="Every registered model: how many versions, the latest, and where each alias "
                                   "points.")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("model", parents=[common], help="one registered model: show, register, alias, get, history",
                       description="Register a run's artifact as a model version, move aliases (production, "
                                   "staging...), fetch a version's bytes, and see what happened to a model. REF "
                                   "is NAME (the latest version), NAME@ALIAS or NAME/N.")
    cmds = p.add_subparsers(dest="model_command", metavar="{show,register,alias,get,history}", required=True,
                            parser_class=_Parser)
    m = cmds.add_parser("show", parents=[common], help="a version, its aliases and the run behind it",
                        description="A model version (its artifact, sha256, aliases, who registered it) and the run "
                                    "that produced it: status, params, final metrics, data fingerprints, code commit.")
    m.add_argument("ref", metavar="REF", help="NAME, NAME@ALIAS or NAME/N")
    m.set_defaults(func=cmd_show)

    m = cmds.add_parser("register", parents=[common], help="register a run's artifact as a new version",
                        description="Register an artifact of RUN as the next version of NAME (versions are never "
                                    "reused). Without ARTIFACT: the run's model (kind 'model'), else its best "
                                    "checkpoint.")
    m.add_argument("name", metavar="NAME", help="the model's name, e.g. churn")
    m.add_argument("run", metavar="RUN", help="run id, unique id prefix, or 'last'")
    m.add_argument("artifact", metavar="ARTIFACT", nargs="?", default=None,
                   help="artifact name (or its file name); default: the run's model")
    m.add_argument("--metadata", "-m", metavar="KEY=VALUE", action="append", default=[],
                   help="metadata for the version (repeatable; VALUE is read as JSON when it is JSON)")
    m.set_defaults(func=cmd_register)

    m = cmds.add_parser("alias", parents=[common], help="point an alias at a version (or --delete it)",
                        description="Point ALIAS of NAME at VERSION; the version it pointed at before is recorded "
                                    "in the history. A rollback is another alias move.")
    m.add_argument("name", metavar="NAME", help="the model's name")
    m.add_argument("alias", metavar="ALIAS", help="e.g. production, staging")
    m.add_argument("version", metavar="VERSION", nargs="?", default=None, help="version number (3 or v3)")
    m.add_argument("--delete", action="store_true", help="remove the alias instead (no VERSION)")
    m.set_defaults(func=cmd_alias)

    m = cmds.add_parser("get", parents=[common], help="write a version's bytes to a file",
                        description="Write the version's artifact (verified against its sha256) to PATH.")
    m.add_argument("ref", metavar="REF", help="NAME, NAME@ALIAS or NAME/N")
    output_options(m)
    m.set_defaults(func=cmd_get)

    m = cmds.add_parser("history", parents=[common], help="every event of a model: who, when, what moved",
                        description="The model's event log in order: registrations and alias moves, with the "
                                    "version an alias pointed at before.")
    m.add_argument("name", metavar="NAME", help="the model's name")
    m.set_defaults(func=cmd_history)


# -- references --------------------------------------------------------------------------------
def is_model_ref(ref: str) -> bool:
    """``churn@production`` and ``churn/3`` name a model version; a run id never has ``@`` or ``/``."""
    return "@" in ref or "/" in ref


def resolve_ref(ref: str, uri: str) -> tuple[Any, Any]:
    """``(RunRecord, ModelVersion or None)`` for a run reference or a model reference.

    A run id, prefix or ``last`` is a run; ``NAME@ALIAS`` and ``NAME/N`` are model versions, whose
    run is the one that produced them; a bare ``NAME`` that is no run but a model's name is its
    latest version.
    """
    from autotrack._errors import RunNotFoundError
    from autotrack.cli import _find

    if not is_model_ref(ref):
        try:
            return _find(ref, uri), None
        except RunNotFoundError as exc:
            version = _model_or_none(ref, uri)
            if version is None:
                raise exc from None
            return _run_of(version, uri), version
    version = _get(ref, uri)
    return _run_of(version, uri), version


def _model_or_none(name: str, uri: str) -> Any:
    from autotrack._errors import ModelNotFoundError
    from autotrack._registry import get_model

    try:
        return get_model(name, uri=uri)
    except (ModelNotFoundError, ValueError):
        return None


def _get(ref: str, uri: str) -> Any:
    from autotrack._errors import ModelNotFoundError
    from autotrack._registry import get_model

    try:
        return get_model(ref, uri=uri)
    except ModelNotFoundError as exc:
        raise type(exc)(str(exc) if uri in str(exc) else f"{exc} (store: {uri})") from None


def _run_of(version: Any, uri: str) -> Any:
    """The run behind a version; an error that says so when it was deleted (the bytes stay)."""
    from autotrack._errors import RunNotFoundError

    try:
        return version.run
    except RunNotFoundError:
        raise RunNotFoundError(f"{label(version)} was produced by run {version.run_id}, which is no longer in "
                               f"the store {uri} (the version's bytes are kept: 'autotrack model get')") from None


def _parse_version(text: str) -> int:
    from autotrack._cli_args import UsageError

    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise UsageError(f"VERSION must be a version number like 3 or v3, not {text!r}")
    return int(digits)


def _metadata(items: Iterable[str]) -> dict[str, Any] | None:
    from autotrack._cli_args import UsageError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata takes KEY=VALUE, not {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out or None


# -- commands ----------------------------------------------------------------------------------
def _print_json(value: Any) -> None:
    from autotrack._cli_format import dumps_json

    sys.stdout.write(dumps_json(value) + "\n")


def _uri(args: argparse.Namespace) -> str:
    from autotrack.cli import _uri as store_uri

    return store_uri(args)


def cmd_models(args: argparse.Namespace) -> int:
    from autotrack._cli_format import console, table, text
    from autotrack._registry import models

    uri = _uri(args)
    found = sorted(models(uri=uri), key=lambda m: m.name)
    if args.json:
        _print_json([model_dict(m) for m in found])
        return 0
    con = console()
    if not found:
        con.print(text(f"No registered models in {uri}"))
        con.print(text("(register one: autotrack model register NAME RUN [ARTIFACT])", "dim"))
        return 0
    tab = table("name", "versions", "latest", "run", "registered", "aliases", fold=("aliases",))
    for model in found:
        latest = model.latest
        tab.add_row(text(model.name, "bold"), text(str(len(model.version_numbers))),
                    text(f"v{latest.version}" if latest else "—"), text(latest.run_id[:8] if latest else "—", "cyan"),
                    text(when(latest.created) if latest else "—"), text(aliases_text(model.aliases)))
    con.print(tab)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from autotrack._errors import RunNotFoundError

    uri = _uri(args)
    version = _get(args.ref, uri)
    try:
        run = version.run
    except RunNotFoundError:
        run = None
    if args.json:
        _print_json({**version_dict(version), "run": run_facts(run) if run is not None else None})
        return 0
    print_version(version, run)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from autotrack._registry import register_model
    from autotrack.cli import _find

    uri = _uri(args)
    metadata = _metadata(args.metadata)
    run = _find(args.run, uri)
    version = register_model(args.name, run.id, args.artifact, uri=uri, metadata=metadata)
    if args.json:
        _print_json(version_dict(version))
        return 0
    from autotrack._cli_format import fmt_size

    print(f"registered {label(version)}: {version.artifact} of run {run.id[:8]} ({run.name}), "
          f"sha256 {version.sha256[:12]}… ({fmt_size(version.size)})")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    from autotrack._cli_args import UsageError
    from autotrack._registry import delete_alias, set_alias

    uri = _uri(args)
    if args.delete:
        if args.version is not None:
            raise UsageError("--delete takes no VERSION: autotrack model alias NAME ALIAS --delete")
        before = _model_or_none(f"{args.name}@{args.alias}", uri)
        delete_alias(args.name, args.alias, uri=uri)
        was = before.version if before is not None else None
        if args.json:
            _print_json({"name": args.name, "alias": args.alias, "version": None, "previous": was})
        else:
            print(f"{args.name}@{args.alias} removed" + (f" (it pointed at v{was})" if was is not None else ""))
        return 0
    if args.version is None:
        raise UsageError("give the VERSION the alias should point at (or --delete to remove it)")
    number = _parse_version(args.version)
    before = _model_or_none(f"{args.name}@{args.alias}", uri)
    version = set_alias(args.name, args.alias, number, uri=uri)
    was = before.version if before is not None else None
    if args.json:
        _print_json({**version_dict(version), "alias": args.alias, "previous": was})
        return 0
    move = f"v{was} → v{version.version}" if was is not None and was != version.version else f"v{version.version}"
    print(f"{args.name}@{args.alias}: {move} (run {version.run_id[:8]}, sha256 {version.sha256[:12]}…)")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from autotrack._output import OutputExistsError, output_path, write_file

    version = _get(args.ref, _uri(args))
    path = output_path(args.output, os.path.basename(version.artifact))
    try:
        with version.open() as src:  # bytes that are gone or do not match fail before any file
            path = os.path.abspath(write_file(path, iter(lambda: src.read(1 << 20), b""), overwrite=args.force))
    except OutputExistsError as exc:
        raise OutputExistsError(f"{os.path.abspath(exc.path or path)} already exists: pass --force to replace it, "
                                "or -o another path") from None
    size = os.path.getsize(path)
    if args.json:
        _print_json({"path": path, "name": version.name, "version": version.version, "sha256": version.sha256,
                     "size": size})
    else:
        from autotrack._cli_format import fmt_size

        print(f"{path}  {label(version)}  sha256 {version.sha256}  ({fmt_size(size)})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from autotrack._cli_format import console, table, text
    from autotrack._registry import model_history

    uri = _uri(args)
    events = model_history(args.name, uri=uri)
    if args.json:
        _print_json([event_dict(e) for e in events])
        return 0
    tab = table("#", "time", "by", "event", "run", "sha256", title=f"model {args.name}", fold=("event",))
    for event in events:
        tab.add_row(text(str(event.seq)), text(when(event.time)), text(event.by or "—"),
                    text(event_text(event), "bold" if event.action == "register" else ""),
                    text(event.run_id[:8] if event.run_id else "—", "cyan"),
                    text(event.sha256[:12] if event.sha256 else "—"))
    console().print(tab)
    return 0
