"""``autotrack serve`` and ``autotrack sync``: the command bodies (kept out of cli.py)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from autotrack.cli import whole_number

__all__ = ["add_commands", "server_options", "server_token", "check_bind", "store_uri", "cmd_token"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


_positive = whole_number(1)


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the tracking server over a store",
                       description="Serve a run store over HTTP (docs/server.md). --uri is the store the "
                                   "server writes to (a folder, s3://...). With AUTOTRACK_TOKEN or --token-file set, every "
                                   "API call needs 'Authorization: Bearer <token>'.")
    server_options(p, port_type=_positive, port=8080, port_help="port (default 8080)", log_level="info")
    p.add_argument("--workers", type=_positive, default=1, help="server processes (default 1)")
    p.add_argument("--max-json-mb", type=_positive, default=None, help="largest JSON request body (default 64)")
    p.add_argument("--max-artifact-mb", type=_positive, default=None, help="largest artifact upload (default 1 TiB)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", parents=[common], help="manage the access tokens of a server's store",
                       description="Tokens for 'autotrack serve', kept (hashed) in the store the server serves "
                                   "(--uri: the store, not the server's URL). Scopes: read (dashboard, reading), "
                                   "write (create runs and append to its own), admin (everything, deleting runs).")
    tokens = p.add_subparsers(dest="token_command", metavar="{create,list,revoke}", required=True)
    t = tokens.add_parser("create", parents=[common], help="make a token (shown once)")
    t.add_argument("name", help="who or what uses it: a person, a CI job")
    t.add_argument("--scope", choices=["read", "write", "admin"], default="write", help="default: write")
    t.set_defaults(func=cmd_token)
    t = tokens.add_parser("list", parents=[common], help="the tokens: name, scope, created, revoked")
    t.set_defaults(func=cmd_token)
    t = tokens.add_parser("revoke", parents=[common], help="revoke a token (running servers stop taking it within seconds)")
    t.add_argument("name", help="the token's name or id")
    t.set_defaults(func=cmd_token)

    p = sub.add_parser("sync", parents=[common], help="deliver runs saved locally while the store was unreachable",
                       description="Upload the runs (and artifacts) spooled to SPOOL_DIR to the store they were "
                                   "meant for (or --uri), then remove them locally.")
    p.add_argument("spool", metavar="SPOOL_DIR", nargs="?", default=None,
                   help="default: AUTOTRACK_SPOOL_DIR or ~/.cache/autotrack/unsent")
    p.set_defaults(func=cmd_sync)


# -- serve -----------------------------------------------------------------------------------
def server_options(p: argparse.ArgumentParser, *, port_type: Any, port: int, port_help: str, log_level: str) -> None:
    """--host, --port, --token-file and --log-level, as ``serve`` and ``ui`` both take them."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_type, default=port, help=port_help)
    p.add_argument("--token-file", metavar="PATH", help="file holding the bearer token (default: AUTOTRACK_TOKEN)")
    p.add_argument("--log-level", default=log_level, choices=["critical", "error", "warning", "info", "debug"])


def store_uri(args: argparse.Namespace, refusal: str) -> str:
    """The store a server command serves: --uri or the configured default, never a server URI."""
    from autotrack.backends.base import scheme_of
    from autotrack.cli import _uri

    uri = _uri(args)  # default: the local folder ./autotrack-runs (or the config file's store)
    if scheme_of(uri) in ("http", "https"):
        raise ValueError(f"{refusal}, not a server URI: {uri} (pass --uri)")
    return uri


def cmd_serve(args: argparse.Namespace) -> int:
    uri = store_uri(args, "serve needs a store to write to (a folder, s3://...)")
    token = server_token(args, "read and write runs")
    try:
        from autotrack.server.serve import serve
    except ImportError as exc:
        raise ImportError(f"autotrack serve needs {exc.name}: pip install 'autotrack[server]'") from None
    check_bind(args.host, args.port)
    print(f"autotrack: serving {uri} at http://{args.host}:{args.port} (dashboard /, API /api/v1, spec /api/v1/openapi.json)",
          file=sys.stderr)
    serve(uri, host=args.host, port=args.port, token=token, workers=args.workers,
          max_json_bytes=args.max_json_mb and args.max_json_mb * 1024 * 1024,
          max_artifact_bytes=args.max_artifact_mb and args.max_artifact_mb * 1024 * 1024,
          log_level=args.log_level)
    return 0


def server_token(args: argparse.Namespace, what: str) -> str | None:
    """The bearer token from ``--token-file`` or AUTOTRACK_TOKEN; a warning when a non-loopback
    address is served without one."""
    token = os.environ.get("AUTOTRACK_TOKEN") or None
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as fh:
            token = fh.read().strip()
        if not token:
            raise ValueError(f"the token file {args.token_file} is empty")
    if token is None and args.host not in _LOOPBACK:
        print(f"autotrack: warning: serving {args.host} without a token: anyone who reaches it can {what} "
              "(set AUTOTRACK_TOKEN or --token-file)", file=sys.stderr)
    return token


def check_bind(host: str, port: int) -> None:
    """A port in use is one clear line here, not a server log record later."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(infos[0][4])
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


# -- token ------------------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    from autotrack.backends.base import backend_for

    uri = store_uri(args, "tokens live in the store a server serves (a folder, s3://...)")
    try:
        from autotrack.server._auth import Tokens
    except ImportError as exc:
        raise ImportError(f"autotrack token needs {exc.name}: pip install 'autotrack[server]'") from None
    tokens = Tokens(backend_for(uri))
    if args.token_command == "create":
        token, record = tokens.create(args.name, args.scope)
        if args.json:
            print(json.dumps({**record, "token": token}))
        else:
            print(token)
            print(f"autotrack: token {record['name']!r} ({record['scope']}) for {uri}: shown this once, "
                  "keep it as a secret (AUTOTRACK_TOKEN on the machines that use it)", file=sys.stderr)
        return 0
    if args.token_command == "revoke":
        record = tokens.revoke(args.name)
        print(json.dumps(record) if args.json else f"revoked token {record['name']!r} ({record['id']})")
        return 0
    listing = tokens.listing()
    if args.json:
        print(json.dumps(listing))
    elif not listing:
        print(f"no tokens in {uri} (create one: autotrack token create NAME --scope write --uri {uri})")
    else:
        from autotrack._cli_format import console, table

        rows = table("name", "id", "scope", "created", "revoked")
        for r in listing:
            rows.add_row(r["name"], r["id"], r["scope"], (r["created"] or "")[:19], (r["revoked"] or "")[:19])
        console().print(rows)
    return 0


# -- sync ------------------------------------------------------------------------------------
def _read_uri(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _spooled(root: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(run folders with their segment files, artifact files) under the spool folder."""
    runs, artifacts = [], []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return [], []
    for name in names:
        folder = os.path.join(root, name)
        if name == "artifacts":
            for dirpath, _dirs, files in os.walk(folder):
                artifacts += [os.path.join(dirpath, f) for f in sorted(files) if not f.startswith(".")]
        elif not name.startswith(".") and os.path.isfile(os.path.join(folder, "run.json")):
            events = os.path.join(folder, "events")
            segs = sorted(f for f in os.listdir(events) if f.endswith(".json") and not f.startswith(".")) \
                if os.path.isdir(events) else []
            runs.append((folder, [os.path.join(events, f) for f in segs]))
    return runs, artifacts


def _run_artifacts(folder: str) -> list[str]:
    """Artifact bytes spooled with a run (``<spool>/<run_id>/artifacts/<sha256>``)."""
    root = os.path.join(folder, "artifacts")
    try:
        return [os.path.join(root, n) for n in sorted(os.listdir(root)) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def cmd_sync(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autotrack._config import resolve_uri
    from autotrack._writer import spool_dir
    from autotrack.backends.base import backend_for

    root = os.path.abspath(os.path.expanduser(args.spool or spool_dir()))
    runs, artifacts = _spooled(root)
    total = sum(len(segs) + 1 + len(_run_artifacts(folder)) for folder, segs in runs) + len(artifacts)
    default_uri = args.uri or None
    delivered, failed = [], []
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=False, disable=total == 0) as progress:
        task = progress.add_task("syncing", total=total)
        for path in artifacts:  # first: segments may refer to them
            target = default_uri or _read_uri(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.uri")) \
                or resolve_uri(None)
            try:
                backend = backend_for(target)
                sha, _ = backend.put_artifact(path)  # spooled by an older autotrack, run unknown
                if sha != os.path.basename(path):
                    raise ValueError(f"the spooled file {path} does not hold the content it is named after")
                os.unlink(path)
                _unlink(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.uri"))
            except (OSError, ValueError) as exc:
                failed.append({"artifact": os.path.basename(path), "error": str(exc)})
            progress.advance(task)
        _remove_empty(os.path.join(root, "artifacts"))
        for folder, segs in runs:
            run_id = os.path.basename(folder)
            target = default_uri or _read_uri(os.path.join(folder, ".uri")) or resolve_uri(None)
            progress.update(task, description=f"run {run_id[:8]}")
            try:
                backend = backend_for(target)
                for art_path in _run_artifacts(folder):  # first: its segments refer to them
                    sha, _ = backend.put_artifact(art_path, run_id)
                    if sha != os.path.basename(art_path):
                        raise ValueError(f"the spooled file {art_path} does not hold the content it is named after")
                    os.unlink(art_path)
                    progress.advance(task)
                for seg_path in segs:  # segments, then the run document (its final status)
                    with open(seg_path, encoding="utf-8") as fh:
                        segment = json.load(fh)
                    backend.append(run_id, int(segment.get("seq", os.path.basename(seg_path)[:-5])), segment)
                    progress.advance(task)
                with open(os.path.join(folder, "run.json"), encoding="utf-8") as fh:
                    backend.update_run(run_id, json.load(fh))
                progress.advance(task)
                shutil.rmtree(folder, ignore_errors=True)
                delivered.append({"run": run_id, "uri": target, "segments": len(segs)})
            except (OSError, ValueError) as exc:
                failed.append({"run": run_id, "uri": target, "error": str(exc)})
    if args.json:
        print(json.dumps({"spool": root, "delivered": delivered, "failed": failed}))
    elif not runs and not artifacts:
        print(f"nothing to sync in {root}")
    else:
        print(f"delivered {len(delivered)} run(s) from {root}" + (f"; {len(failed)} failed" if failed else ""))
    for item in failed:
        what = f"run {item['run']}" if "run" in item else f"artifact {item['artifact']}"
        print(f"autotrack: error: {what}: {item['error']} (kept in {root})", file=sys.stderr)
    return 1 if failed else 0


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_empty(folder: str) -> None:
    for dirpath, _dirs, _files in sorted(os.walk(folder), reverse=True):  # deepest first
        try:
            os.rmdir(dirpath)  # only succeeds when empty
        except OSError:
            pass
