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
    p.add_argument("--protected-aliases", metavar="A,B", default=None,
                   help="model aliases only an admin token may move or delete (default: production; '' for none)")
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

    from autotrack.cli import _global_options

    p = sub.add_parser("sync", help="deliver runs saved locally while the store was unreachable",
                       description="Upload the runs (and artifacts) spooled to SPOOL_DIR to the store each was "
                                   "meant for (or --uri), then remove them locally. Every run is tried; each "
                                   "one delivered or not is reported, and the exit status is 1 if any was not.")
    _global_options(p, sub=True, uri_help="deliver everything to this store instead (default: the store each run "
                                          "was meant for, saved with it)")
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
        import uvicorn  # noqa: F401 - serve() imports it only when it runs: a missing one is said here
        from autotrack.server.serve import serve
    except ImportError as exc:
        raise ImportError(f"autotrack serve needs {exc.name}: pip install 'autotrack-ml[server]'") from None
    check_bind(args.host, args.port)
    print(f"autotrack: serving {uri} at http://{args.host}:{args.port} (dashboard /, API /api/v1, spec /api/v1/openapi.json)",
          file=sys.stderr)
    serve(uri, host=args.host, port=args.port, token=token, workers=args.workers,
          max_json_bytes=args.max_json_mb and args.max_json_mb * 1024 * 1024,
          max_artifact_bytes=args.max_artifact_mb and args.max_artifact_mb * 1024 * 1024,
          log_level=args.log_level, protected_aliases=None if args.protected_aliases is None else
          tuple(a.strip() for a in args.protected_aliases.split(",") if a.strip()))
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
        raise ImportError(f"autotrack token needs {exc.name}: pip install 'autotrack-ml[server]'") from None
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


def _spool_root(args: argparse.Namespace) -> tuple[str, bool]:
    """The spool folder to deliver from, and whether it exists (the default one is made only when
    something is saved: its absence means nothing to do). A folder named on the command line must
    exist, and must not be a run store: sync deletes what it delivers, so a store's own files must
    never be taken for spooled ones."""
    from autotrack._spool import spool_dir

    root = os.path.abspath(os.path.expanduser(args.spool or spool_dir()))
    if not os.path.exists(root):
        if args.spool is None:
            return root, False
        raise FileNotFoundError(f"the spool folder {root} does not exist (default: {spool_dir()})")
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{root} is not a folder: sync delivers the runs saved in a spool folder "
                                 f"(default: {spool_dir()})")
    if os.path.isdir(os.path.join(root, "runs")) or os.path.isdir(os.path.join(root, "refs")):
        raise ValueError(f"{root} is a run store, not a spool folder: sync delivers the runs saved locally when "
                         f"a store was unreachable (default: {spool_dir()}); nothing was changed")
    return root, True


def _local(uri: str) -> str:
    """A relative store path made absolute, so the report says which folder got the runs."""
    from autotrack.backends.base import scheme_of

    return os.path.abspath(os.path.expanduser(uri)) if scheme_of(uri) == "file" and "://" not in uri else uri


def _why(exc: BaseException) -> str:
    """What went wrong, on one line, with the kind of error (NoCredentialsError says a lot)."""
    message = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _run_name(folder: str) -> str:
    try:
        with open(os.path.join(folder, "run.json"), encoding="utf-8") as fh:
            name = json.load(fh).get("name")
        return name if isinstance(name, str) else ""
    except (OSError, ValueError, AttributeError):
        return ""


def _put(backend: Any, path: str, run_id: str | None = None) -> None:
    sha, _ = backend.put_artifact(path, run_id) if run_id else backend.put_artifact(path)
    if sha != os.path.basename(path):
        raise ValueError(f"the spooled file {path} does not hold the content it is named after")
    os.unlink(path)


def _deliver_run(backend: Any, folder: str, segs: list[str], advance: Any) -> tuple[int, int]:
    """Artifacts, then segments, then the run document (its final status); removed once all are in."""
    run_id = os.path.basename(folder)
    arts = _run_artifacts(folder)
    for art_path in arts:  # first: its segments refer to them
        _put(backend, art_path, run_id)
        advance()
    for seg_path in segs:
        with open(seg_path, encoding="utf-8") as fh:
            segment = json.load(fh)
        backend.append(run_id, int(segment.get("seq", os.path.basename(seg_path)[:-5])), segment)
        advance()
    with open(os.path.join(folder, "run.json"), encoding="utf-8") as fh:
        backend.update_run(run_id, json.load(fh))
    advance()
    shutil.rmtree(folder, ignore_errors=True)
    return len(segs), len(arts)


def cmd_sync(args: argparse.Namespace) -> int:
    """Every spooled item is tried, whatever happened to the ones before (a store without
    credentials, a mistyped URI, any exception of a backend's library), and each is reported:
    which run, to which store, and why not."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autotrack import _pending
    from autotrack._config import resolve_uri
    from autotrack.backends.base import backend_for

    _pending.wait_all()  # called in-process (autotrack.cli.main): the runs that just ended have spooled
    root, exists = _spool_root(args)
    runs, artifacts = _spooled(root) if exists else ([], [])
    total = sum(len(segs) + 1 + len(_run_artifacts(folder)) for folder, segs in runs) + len(artifacts)
    delivered: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=total == 0 or not console.is_terminal) as progress:
        task = progress.add_task("syncing", total=total)
        for path in artifacts:  # first: segments may refer to them (spooled by an older autotrack, run unknown)
            sidecar = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.uri")
            target = args.uri or _read_uri(sidecar)
            try:
                target = _local(target or resolve_uri(None))
                _put(backend_for(target), path)
                _unlink(sidecar)
            except Exception as exc:  # noqa: BLE001 - reported, and the next item is tried
                failed.append({"artifact": os.path.basename(path), "uri": target, "error": _why(exc)})
            progress.advance(task)
        _remove_empty(os.path.join(root, "artifacts"))
        for folder, segs in runs:
            run_id = os.path.basename(folder)
            name = _run_name(folder)
            target = args.uri or _read_uri(os.path.join(folder, ".uri"))
            progress.update(task, description=f"run {run_id[:8]}")
            try:
                target = _local(target or resolve_uri(None))
                n_segs, n_arts = _deliver_run(backend_for(target), folder, segs, lambda: progress.advance(task))
                delivered.append({"run": run_id, "name": name, "uri": target, "segments": n_segs, "artifacts": n_arts})
            except Exception as exc:  # noqa: BLE001 - reported, and the next run is tried
                failed.append({"run": run_id, "name": name, "uri": target, "error": _why(exc), "kept": folder})
    if args.json:
        print(json.dumps({"spool": root, "delivered": delivered, "failed": failed}))
    elif not runs and not artifacts:
        print(f"nothing to sync in {root}")
    else:
        for item in delivered:
            label = f"run {item['run'][:8]}" + (f" ({item['name']})" if item["name"] else "")
            print(f"delivered {label} to {item['uri']}: {item['segments']} segment(s), {item['artifacts']} artifact(s)")
        print(f"delivered {len(delivered)} run(s) from {root}" + (f"; {len(failed)} failed" if failed else ""))
    for item in failed:
        if "run" in item:
            label = f"run {item['run'][:8]}" + (f" ({item['name']})" if item["name"] else "")
            kept = item["kept"]
        else:
            label, kept = f"artifact {item['artifact'][:12]}", os.path.join(root, "artifacts")
        where = item["uri"] or "the configured store"
        print(f"autotrack: error: {label} not delivered to {where}: {item['error']} (kept in {kept})",
              file=sys.stderr)
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
