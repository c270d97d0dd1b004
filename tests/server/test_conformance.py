"""The backend conformance suite against a live server process (HTTP client backend)."""

from __future__ import annotations

import uuid

import pytest

from tests.store_conformance import StoreConformance


class TestHttpStore(StoreConformance):
    @pytest.fixture
    def store_uri(self, multi_server, token_env):
        name = "t" + uuid.uuid4().hex[:12]
        self._root = multi_server.root / name
        return f"{multi_server.url}/s/{name}"

    def _path(self, uri):
        return self._root

    def corrupt_artifact(self, uri, sha256):
        path = self._path(uri) / "artifacts" / sha256[:2] / sha256
        data = path.read_bytes()
        path.write_bytes(bytes(b ^ 0xFF for b in data[:16]) + data[16:])

    def stored_artifacts(self, uri):
        root = self._path(uri) / "artifacts"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def write_raw(self, uri, relpath, data):
        path = self._path(uri) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def make_dir(self, uri, relpath):
        (self._path(uri) / relpath).mkdir(parents=True, exist_ok=True)

    def make_symlink(self, uri, relpath, target):
        path = self._path(uri) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
