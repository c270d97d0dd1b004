"""A store that fails must never stop training; errors are warned once, counted, or raised in strict mode."""

from __future__ import annotations

import errno
import json
import os
import warnings

import pytest

import autotrack
from autotrack._safety import AutotrackWarning, error_counts
from autotrack.backends import register_backend
from autotrack.backends.file import FileStore


from tests.dead_store import DeadStore as BrokenStore


class FullDiskStore(FileStore):
    """A local store whose disk is full: every write fails with ENOSPC."""

    error = (errno.ENOSPC, "No space left on device")

    def _write(self, path, data):
        raise OSError(*self.error, path)

    def put_artifact(self, path):
        raise OSError(*self.error, path)


class ReadOnlyStore(FullDiskStore):
    """A store on a read-only mount (root ignores chmod, so the mount is simulated)."""

    error = (errno.EROFS, "Read-only file system")


def _train(run, steps=200):
    total = 0.0
    for step in range(steps):
        total += step
        run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    return total


def test_failing_backend_cannot_stop_training(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("broken", BrokenStore, clobber=True)
    before = sum(error_counts().values())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autotrack.start_run(uri="broken://x") as run:
            assert _train(run) == sum(range(200))
            run.log_artifact(__file__)
            run.flush(timeout=5)
    ours = [w for w in caught if issubclass(w.category, AutotrackWarning)]
    kinds = [str(w.message).split(" failed")[0] for w in ours]
    assert ours and len(kinds) == len(set(kinds)), "one warning per kind"
    assert sum(error_counts().values()) > before


def test_failing_backend_raises_in_strict_mode():
    register_backend("broken", BrokenStore, clobber=True)
    run = autotrack.start_run(uri="broken://x")
    _train(run, 5)
    with pytest.raises(OSError, match="store unreachable"):
        run.finish()


def test_users_exception_still_wins_over_a_broken_store(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("broken", BrokenStore, clobber=True)
    with pytest.warns(AutotrackWarning):
        with pytest.raises(ZeroDivisionError):
            with autotrack.start_run(uri="broken://y") as run:
                1 / 0
        run.flush()  # delivered in the background: the store's failure is reported by then


@pytest.mark.parametrize("store_cls", [FullDiskStore, ReadOnlyStore])
def test_full_disk_warns_training_continues_and_nothing_is_lost(monkeypatch, tmp_path, store_cls):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("fulldisk", lambda uri: store_cls(str(tmp_path / "store")), clobber=True)
    with pytest.warns(AutotrackWarning, match=store_cls.error[1]):
        with autotrack.start_run(uri="fulldisk://") as run:
            assert _train(run, 300) == sum(range(300))
        run.flush()  # the run is delivered in the background: the warning comes by then (docs/api.md)
    spooled = tmp_path / "spool" / run.id
    segments = sorted((spooled / "events").iterdir())
    points = []
    for seg in segments:
        # a segment may hold no metric at all (the environment, when its capture comes late)
        points += json.loads(seg.read_text()).get("metrics", {}).get("loss", {}).get("step", [])
    assert points == list(range(300)), "every point is kept in the local spool"
    assert json.loads((spooled / "run.json").read_text())["status"] == "finished"


def test_guard_swallows_only_our_errors(monkeypatch):
    from autotrack._safety import guard, guarded

    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    with pytest.warns(AutotrackWarning):
        with guard("a test step"):
            raise RuntimeError("inside autotrack")

    @guarded("a guarded helper", default=42)
    def helper():
        raise KeyError("x")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert helper() == 42
    with pytest.raises(KeyboardInterrupt):
        with guard("ctrl-c"):
            raise KeyboardInterrupt


def test_strict_mode_raises_from_guard():
    from autotrack._safety import guard

    assert os.environ["AUTOTRACK_STRICT"] == "1"
    with pytest.raises(RuntimeError):
        with guard("strict"):
            raise RuntimeError("surface me")
