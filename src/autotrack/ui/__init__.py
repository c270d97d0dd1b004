"""The dashboard (``autotrack ui``, and ``/`` of ``autotrack serve``) and self-contained reports.

The pages are static files shipped in this package (no front-end build step): one script that
renders every view with DOM calls (user text is only ever set as text, never parsed as HTML),
and uPlot, vendored with its license, for the charts. The server side is ``_data`` (what a page
shows, as JSON) and ``_routes`` (where it is served); ``_report`` writes the same views into one
HTML file with their data inside.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report", "ui_routes"]


def __getattr__(name: str) -> Any:  # starlette is only needed to serve, not to write a report
    if name == "write_report":
        from autotrack.ui._report import write_report

        return write_report
    if name == "ui_routes":
        from autotrack.ui._routes import ui_routes

        return ui_routes
    raise AttributeError(f"module 'autotrack.ui' has no attribute {name!r}")
