"""A backend that fails on every call (a dead server, a revoked credential), for the
'autotrack can never stop training' tests of the core and of every integration."""

from __future__ import annotations

import errno


class DeadStore:
    def __init__(self, uri):
        self.uri = uri

    def _fail(self, *args, **kwargs):
        raise OSError(errno.EIO, "store unreachable")

    create_run = update_run = append = put_artifact = list_runs = read_segments = open_artifact = _fail
