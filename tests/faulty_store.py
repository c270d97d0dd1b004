"""Fault injection for any store: wrap a backend so its calls refuse, hang, fill up or corrupt.

``faulty(inner_uri)`` returns ``(uri, faults)``: runs recorded to ``uri`` go to the backend of
``inner_uri`` (memory, local, S3, HTTP: any) through a ``FaultyStore``, and ``faults`` says what
goes wrong, changeable while a run records::

    uri, faults = faulty(store_uri)
    faults.fill |= WRITES          # every write: OSError(ENOSPC)
    faults.refuse.add("append")    # segments: OSError(EIO)
    faults.hang.add("append")      # segments: block until faults.release()
    faults.corrupt.add(1)          # segment 1 is stored damaged
    faults.clear()                 # the store works again (and hung calls return)

Reads go straight through, so what was stored is read back through the public API with
``inner_uri``.
"""

from __future__ import annotations

import errno
import threading
import uuid
from collections import Counter
from typing import Any

from autotrack.backends import backend_for, register_backend

__all__ = ["faulty", "Faults", "FaultyStore", "WRITES"]

WRITES = frozenset({"create_run", "update_run", "append", "put_artifact", "release_artifact"})
_registry: dict[str, tuple[str, "Faults"]] = {}


class Faults:
    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.fill: set[str] = set()
        self.hang: set[str] = set()
        self.corrupt: set[int] = set()  # segment numbers stored damaged
        self.calls: Counter[str] = Counter()
        self.hanging = threading.Event()  # set once a call is held by ``hang``
        self._go = threading.Event()

    def release(self) -> None:
        """Let hung calls return (and later ones pass)."""
        self.hang.clear()
        self._go.set()

    def clear(self) -> None:
        self.refuse.clear()
        self.fill.clear()
        self.corrupt.clear()
        self.release()

    def gate(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.hang:
            self.hanging.set()
            self._go.wait(120)
        if name in self.refuse:
            raise OSError(errno.EIO, f"injected fault: the store refused {name}")
        if name in self.fill:
            raise OSError(errno.ENOSPC, "No space left on device (injected fault)")


class FaultyStore:
    def __init__(self, uri: str) -> None:
        inner_uri, self.faults = _registry[uri.split("://", 1)[1]]
        self.inner = backend_for(inner_uri)
        self.uri = uri

    def create_run(self, doc: dict[str, Any]) -> None:
        self.faults.gate("create_run")
        self.inner.create_run(doc)

    def update_run(self, run_id: str, doc: dict[str, Any]) -> None:
        self.faults.gate("update_run")
        self.inner.update_run(run_id, doc)

    def append(self, run_id: str, seq: int, segment: dict[str, Any]) -> None:
        self.faults.gate("append")
        if seq in self.faults.corrupt:
            segment = {"format": 1, "run_id": run_id, "seq": seq, "metrics": "damaged", "params": [["x"]]}
        self.inner.append(run_id, seq, segment)

    def put_artifact(self, path: str, run_id: str | None = None) -> tuple[str, int]:
        self.faults.gate("put_artifact")
        return self.inner.put_artifact(path, run_id)

    def release_artifact(self, run_id: str, sha256: str) -> bool:
        self.faults.gate("release_artifact")
        return self.inner.release_artifact(run_id, sha256)

    def list_runs(self) -> list[dict[str, Any]]:
        return self.inner.list_runs()

    def read_segments(self, run_id: str) -> list[dict[str, Any]]:
        return self.inner.read_segments(run_id)

    def open_artifact(self, sha256: str) -> Any:
        return self.inner.open_artifact(sha256)


register_backend("faulty", FaultyStore, clobber=True)


def faulty(inner_uri: str) -> tuple[str, Faults]:
    key = uuid.uuid4().hex
    faults = Faults()
    _registry[key] = (inner_uri, faults)
    return f"faulty://{key}", faults
