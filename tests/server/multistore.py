"""A test server that serves many fresh stores at once: ``/s/<name>/api/v1/...`` is
``create_app(<root>/<name>)``, so each conformance test gets an empty store from one process.

Run as ``python -m tests.server.multistore ROOT PORT`` (token from AUTOTRACK_TOKEN).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from autotrack.server import create_app


class MultiStore:
    def __init__(self, root: str, token: str | None) -> None:
        self.root, self.token = root, token
        self.apps: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            return
        path = scope["path"]
        if path == "/api/v1/health":
            name, rest = "_health", path
        else:
            _, s, name, rest = (path.split("/", 3) + ["", "", ""])[:4]
            if s != "s" or not name.isidentifier():
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            rest = "/" + rest
        app = self.apps.get(name)
        if app is None:
            app = self.apps[name] = create_app(os.path.join(self.root, name), self.token)
        await app(dict(scope, path=rest, raw_path=rest.encode()), receive, send)


if __name__ == "__main__":
    import uvicorn

    root, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(MultiStore(root, os.environ.get("AUTOTRACK_TOKEN")), host="127.0.0.1", port=port, log_level="warning")
