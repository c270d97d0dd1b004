"""``autolog(disable=True)`` puts back every function autolog or a run patched (the same object),
and disabling a framework before it is imported keeps it off when it is (issue 13)."""

from __future__ import annotations

import random

import autotrack
from autotrack import _autolog

from .helpers import python


def test_seed_functions_are_restored_by_disable(store):
    autotrack.autolog(disable=True)  # runs of earlier tests installed the seed hooks: start clean
    original = random.seed
    autotrack.autolog(frameworks=[])
    try:
        with autotrack.start_run(uri=store):
            assert random.seed is not original
            random.seed(3)
    finally:
        autotrack.autolog(disable=True)
    assert random.seed is original
    assert autotrack.last_run(store).seeds.get("random.seed") == 3


def test_disable_before_import_keeps_the_framework_off():
    proc = python("""
        import sys, autotrack
        from autotrack import _autolog
        autotrack.autolog()
        autotrack.autolog(disable=True, frameworks=["sklearn"])
        import sklearn.linear_model
        assert not _autolog.is_on("sklearn"), "disabled before import, enabled at import"
        assert "autotrack.integrations.sklearn" not in sys.modules
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_is_on_is_the_registry_answer():
    assert not _autolog.is_on("sklearn")


def test_autolog_refuses_bad_settings_at_the_call():
    import pytest

    for bad in ({"log_every_n_steps": 0}, {"log_every_n_steps": True}, {"log_checkpoints": "some"}):
        with pytest.raises(ValueError):
            autotrack.autolog(frameworks=[], **bad)
    assert not _autolog.is_on("sklearn")
