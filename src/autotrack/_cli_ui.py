"""``autotrack ui`` and ``autotrack report``: the command bodies (kept out of cli.py)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from autotrack._cli_server import check_bind, server_options, server_token, store_uri
from autotrack.cli import whole_number

__all__ = ["add_commands"]

DEFAULT_PORT = 8090


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ui", parents=[common], help="browse and compare runs in a web browser (read-only)",
                       description="Serve the dashboard over a run store (docs/ui.md): the runs table, each run's "
                                   "page and charts, and side-by-side comparisons. Read-only: nothing can be "
                                   "written through it. With AUTOTRACK_TOKEN or --token-file set, the page asks "
                                   "for the token.")
    server_options(p, port_type=whole_number(0), port=DEFAULT_PORT,
                   port_help=f"port (default {DEFAULT_PORT}; 0: any free port)", log_level="warning")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("report", parents=[common], help="write runs into one self-contained HTML file",
                       description="Write the runs' summaries, charts and (for several runs) what differs between "
                                   "them into one HTML file that needs no server and no network.")
    p.add_argument("runs", metavar="RUN", nargs="+", help="run id, unique id prefix, or 'last'")
    p.add_argument("-o", "--output", metavar="PATH", default="report.html",
                   help="file to write (replaced if it exists), or a folder to put report.html in "
                        "(default: report.html in the current directory)")
    p.add_argument("--title", help="the page title (default: the run's name, or 'N runs compared')")
    p.set_defaults(func=cmd_report)


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def cmd_ui(args: argparse.Namespace) -> int:
    uri = store_uri(args, "ui reads a store (a folder, s3://...); a tracking server already shows the dashboard at /")
    token = server_token(args, "read every run")
    try:
        import uvicorn

        from autotrack.server.app import create_app
    except ImportError as exc:
        raise ImportError(f"autotrack ui needs {exc.name}: pip install 'autotrack-ml[server]'") from None
    port = args.port or _free_port(args.host)
    check_bind(args.host, port)
    app = create_app(uri, token, read_only=True, hosts=(args.host,))
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}/"
    print(f"autotrack: dashboard for {uri} at {url} (read-only; Ctrl-C to stop)", file=sys.stderr, flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=args.host, port=port, log_level=args.log_level, server_header=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from autotrack.cli import _find, _uri
    from autotrack.ui._report import write_report

    uri = _uri(args)
    records, seen = [], set()
    for run_id in args.runs:
        record = _find(run_id, uri)
        if record.id not in seen:
            seen.add(record.id)
            records.append(record)
    path = write_report(records, args.output, title=args.title)
    size = os.path.getsize(path)
    if args.json:
        import json

        print(json.dumps({"path": os.path.abspath(path), "runs": [r.id for r in records], "bytes": size}))
    else:
        print(f"wrote {path} ({len(records)} run{'s' if len(records) > 1 else ''}, {size // 1024} KB): "
              "open it in any browser, no server needed")
    return 0
