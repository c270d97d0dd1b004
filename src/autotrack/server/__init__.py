"""The autotrack tracking server: an ASGI app (Starlette) over any autotrack file store.

``create_app(store_uri, token=None)`` builds the application; ``autotrack serve`` runs it on
uvicorn. Needs ``pip install 'autotrack-ml[server]'``. See docs/server.md.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):  # imported lazily: starlette is an optional dependency
    if name == "create_app":
        from autotrack.server.app import create_app

        return create_app
    raise AttributeError(name)
