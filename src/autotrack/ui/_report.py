"""``autotrack report``: the dashboard's run and compare views as one HTML file to send around.

The file holds everything it needs (styles, scripts, the runs' data as JSON) and loads nothing
from anywhere: it opens from an e-mail attachment, offline, years later. The data sits in a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as JSON escapes,
so no recorded string (a run name, a traceback) can close that block or open a tag; the page
script then renders it with the same text-only DOM calls as the live dashboard.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from typing import Any, Sequence

from autotrack._records import RunRecord
from autotrack._values import json_safe
from autotrack.ui._data import compare, run_detail, run_series

__all__ = ["write_report", "report_html"]

_STATIC = os.path.join(os.path.dirname(__file__), "static")
_ASSETS = {"css": ("vendor/uPlot.min.css", "app.css"), "js": ("vendor/uPlot.iife.min.js", "app.js")}


def _asset(name: str) -> str:
    with open(os.path.join(_STATIC, name), encoding="utf-8") as fh:
        text = fh.read()
    if "</script" in text.lower() or "</style" in text.lower():  # would end the inline block early
        raise ValueError(f"static file {name} cannot be inlined: it contains a closing tag")
    return text


def _embed(data: Any) -> str:
    text = json.dumps(json_safe(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an undecodable file name): written as its JSON escape
        text = json.dumps(json_safe(data), ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def report_html(records: Sequence[RunRecord], title: str | None = None) -> str:
    """The report page for ``records`` (one run: its page; several: the compare view first)."""
    if not records:
        raise ValueError("a report needs at least one run")
    from autotrack import __version__

    title = title or (records[0].name if len(records) == 1 else f"{len(records)} runs compared")
    title = title.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate has no UTF-8 form
    data = {
        "title": title,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "version": __version__,
        "order": [r.id for r in records],
        "runs": {r.id: run_detail(r) for r in records},
        "series": {r.id: run_series(r) for r in records},
        # made on the user's machine: the diff between two runs' commits comes from their checkout
        "compare": compare(records, repository=True) if len(records) > 1 else None,
    }
    css = "\n".join(_asset(name) for name in _ASSETS["css"])
    scripts = "\n".join(f"<script>\n{_asset(name)}\n</script>" for name in _ASSETS["js"])
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"autotrack {html.escape(__version__)}\">\n"
        f"<title>{html.escape(title)} · autotrack report</title>\n<style>\n{css}\n</style>\n</head>\n"
        "<body class=\"report\">\n<div id=\"app\"></div>\n"
        f"<script id=\"autotrack-data\" type=\"application/json\">{_embed(data)}</script>\n"
        f"{scripts}\n</body>\n</html>\n"
    )


def write_report(records: Sequence[RunRecord], path: str | os.PathLike[str], title: str | None = None) -> str:
    """Write the report for ``records`` to ``path`` and return the path written.

    ``path`` may be a folder (existing, or ending in ``/``): the file is ``report.html`` in it.
    The page is built first, then written whole or not at all (``autotrack._output``), so a
    failure leaves no temporary file behind and its error names ``path``, not a hidden name.
    """
    from autotrack._output import output_path, write_file

    target = output_path(path, "report.html")
    page = report_html(records, title).encode("utf-8")
    return write_file(target, [page])
