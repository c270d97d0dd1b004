"""The local spool: what a store did not take in time waits here for ``autotrack sync``.

One folder per run under :func:`spool_dir`, in the file store's own shapes, so ``sync`` (or a
person) can deliver it with nothing but the Backend protocol::

    <spool>/<run_id>/run.json                 the latest run document (status, end time)
    <spool>/<run_id>/.uri                     the store it was meant for
    <spool>/<run_id>/events/<seq:08d>.json    segments not confirmed stored
    <spool>/<run_id>/artifacts/<sha256>       artifact bytes not confirmed stored

A segment or artifact already delivered may be spooled again (a call still in flight when the
process exits): delivering it twice stores it once, since a segment's number and an artifact's
sha256 are their identities.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from typing import Any

__all__ = ["spool_dir", "write_atomic", "RunSpool"]


def spool_dir() -> str:
    return os.environ.get("AUTOTRACK_SPOOL_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autotrack", "unsent")


def write_atomic(path: str, text: str | bytes) -> None:
    """Spool files may be written while the process exits: never leave half a file."""
    tmp = f"{os.path.dirname(path)}/.tmp-{os.getpid()}-{threading.get_ident()}-{os.path.basename(path)}"
    with open(tmp, "wb" if isinstance(text, bytes) else "w", **({} if isinstance(text, bytes) else {"encoding": "utf-8"})) as fh:
        fh.write(text)
    os.replace(tmp, path)


def _json(doc: Any) -> str:
    # ensure_ascii: text that is not valid Unicode (lone surrogates) still round-trips
    return json.dumps(doc, allow_nan=False, separators=(",", ":"))


class RunSpool:
    """The spool folder of one run (created on first use)."""

    def __init__(self, run_id: str, uri: str) -> None:
        self.folder = os.path.join(spool_dir(), run_id)
        self.uri = uri

    def _ensure(self, sub: str = "") -> str:
        path = os.path.join(self.folder, sub) if sub else self.folder
        os.makedirs(path, exist_ok=True)
        return path

    def segment(self, seq: int, doc: dict[str, Any]) -> str:
        path = os.path.join(self._ensure("events"), f"{seq:08d}.json")
        write_atomic(path, _json(doc))
        return path

    def artifact(self, sha256: str, source: str, owned: bool) -> str:
        """Keep the bytes of ``source`` (moved when it is a staged file of ours, else copied)."""
        dest = os.path.join(self._ensure("artifacts"), sha256)
        if os.path.exists(dest):
            return dest
        if owned:
            try:
                os.replace(source, dest)
                return dest
            except OSError:  # another device
                pass
        tmp = os.path.join(os.path.dirname(dest), f".tmp-{os.getpid()}-{sha256}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
        return dest

    def document(self, doc: dict[str, Any]) -> None:
        self._ensure()
        write_atomic(os.path.join(self.folder, "run.json"), _json(doc))
        write_atomic(os.path.join(self.folder, ".uri"), str(self.uri))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
