"""The conformance suite on fsspec's in-process ``memory://`` filesystem."""

from __future__ import annotations

import uuid

import fsspec
import pytest

from tests.store_conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_uri(self):
        uri = f"memory://autotrack-test-{uuid.uuid4().hex}/store"
        yield uri
        fs, root = fsspec.core.url_to_fs(uri)
        if fs.exists(root):
            fs.rm(root, recursive=True)

    def corrupt_artifact(self, uri, sha256):
        fs, root = fsspec.core.url_to_fs(uri)
        path = f"{root}/artifacts/{sha256[:2]}/{sha256}"
        data = fs.cat_file(path)
        fs.pipe_file(path, bytes(b ^ 0xFF for b in data[:16]) + data[16:])

    def stored_artifacts(self, uri):
        fs, root = fsspec.core.url_to_fs(uri)
        base = f"{root}/artifacts"
        return sorted(fs.find(base)) if fs.exists(base) else []

    def write_raw(self, uri, relpath, data):
        fs, root = fsspec.core.url_to_fs(uri)
        fs.pipe_file(f"{root}/{relpath}", data)

    def make_dir(self, uri, relpath):
        fs, root = fsspec.core.url_to_fs(uri)
        fs.pipe_file(f"{root}/{relpath}/.keep", b"")  # a folder exists by what is in it, as on S3
