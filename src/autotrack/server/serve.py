"""Run the server on uvicorn (``autotrack serve``)."""

from __future__ import annotations

import os

from autotrack.server import app as _app

__all__ = ["serve"]


def serve(store_uri: str, host: str = "127.0.0.1", port: int = 8080, token: str | None = None, workers: int = 1,
          max_json_bytes: int | None = None, max_artifact_bytes: int | None = None, log_level: str = "info",
          protected_aliases: tuple[str, ...] | None = None) -> None:
    """Serve ``store_uri`` until interrupted. Settings travel through the environment so that
    each of ``workers`` processes builds the same app. ``protected_aliases``: model aliases only
    an admin token may move or delete (None: ``production``)."""
    import uvicorn

    protected = _app.DEFAULT_PROTECTED_ALIASES if protected_aliases is None else tuple(protected_aliases)
    _app.create_app(store_uri, token, protected_aliases=protected)  # fail here, in one line, on a bad setting
    os.environ[_app.ENV_PROTECTED] = ",".join(protected)
    os.environ[_app.ENV_STORE] = store_uri
    os.environ[_app.ENV_TOKEN] = token or ""
    os.environ[_app.ENV_HOSTS] = host  # without a token, only requests for this name are answered
    if max_json_bytes:
        os.environ[_app.ENV_MAX_JSON] = str(max_json_bytes)
    if max_artifact_bytes:
        os.environ[_app.ENV_MAX_ARTIFACT] = str(max_artifact_bytes)
    uvicorn.run("autotrack.server.app:create_app_from_env", factory=True, host=host, port=port,
                workers=workers if workers > 1 else None, log_level=log_level, server_header=False,
                proxy_headers=True, timeout_graceful_shutdown=10)
