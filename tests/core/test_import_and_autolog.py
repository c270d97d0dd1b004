"""``import autotrack`` stays light; ``autolog()`` hooks adapters in whatever the import order."""

from __future__ import annotations

import sys
import textwrap

import pytest

import autotrack
from autotrack import _autolog

from .helpers import python

HEAVY = ("torch", "tensorflow", "keras", "sklearn", "xgboost", "transformers", "lightning",
         "pytorch_lightning", "optuna", "ray", "lightgbm", "catboost", "pandas", "numpy", "fsspec")


def test_import_autotrack_loads_no_framework():
    proc = python(f"""
        import sys, autotrack
        autotrack.__version__, autotrack.__all__
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_autolog_with_no_framework_imports_none():
    proc = python(f"""
        import sys, autotrack
        autotrack.autolog()
        print(",".join(m for m in {HEAVY[:-2]!r} if m in sys.modules))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_public_names_match_all():
    assert sorted(autotrack.__all__) == sorted(set(autotrack.__all__))
    for name in autotrack.__all__:
        assert getattr(autotrack, name) is not None
    assert {"autolog", "start_run", "active_run", "seed_everything", "runs", "get_run", "last_run"} <= set(
        autotrack.__all__)


@pytest.fixture
def demo_framework(tmp_path, monkeypatch):
    """A plain module standing for 'a framework' to exercise the hook machinery itself."""
    (tmp_path / "demo_fw.py").write_text("VERSION = 1\n")
    (tmp_path / "demo_fw_integration.py").write_text(textwrap.dedent("""
        calls = []
        def enable(config):
            calls.append(("enable", config))
        def disable():
            calls.append(("disable", None))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    _autolog.register_integration("demo", ["demo_fw"], "demo_fw_integration")
    yield
    autotrack.autolog(disable=True)
    _autolog._INTEGRATIONS.pop("demo", None)
    for mod in ("demo_fw", "demo_fw_integration"):
        sys.modules.pop(mod, None)


def test_autolog_enables_when_framework_imported_later(demo_framework):
    autotrack.autolog(experiment="e1", log_every_n_steps=5)
    assert "demo_fw_integration" not in sys.modules
    import demo_fw  # noqa: F401
    import demo_fw_integration

    assert [c[0] for c in demo_fw_integration.calls] == ["enable"]
    config = demo_fw_integration.calls[0][1]
    assert config.experiment == "e1" and config.log_every_n_steps == 5
    autotrack.autolog(experiment="e1", log_every_n_steps=5)  # idempotent
    assert len(demo_fw_integration.calls) == 1
    autotrack.autolog(disable=True)
    assert [c[0] for c in demo_fw_integration.calls] == ["enable", "disable"]
    assert _autolog.current_config() is None


def test_autolog_enables_when_framework_already_imported(demo_framework):
    import demo_fw  # noqa: F401

    autotrack.autolog(frameworks=["demo"])
    import demo_fw_integration

    assert [c[0] for c in demo_fw_integration.calls] == ["enable"]
    autotrack.autolog(frameworks=["demo"], log_models=False)  # new settings: re-enabled with them
    assert [c[0] for c in demo_fw_integration.calls] == ["enable", "disable", "enable"]
    assert demo_fw_integration.calls[-1][1].log_models is False


def test_new_settings_for_some_frameworks_keep_the_others_on(demo_framework, tmp_path):
    (tmp_path / "demo_fw2.py").write_text("")
    (tmp_path / "demo_fw2_integration.py").write_text("on = []\ndef enable(c):\n    on.append(c)\ndef disable():\n    on.clear()\n")
    _autolog.register_integration("demo2", ["demo_fw2"], "demo_fw2_integration")
    try:
        import demo_fw  # noqa: F401
        import demo_fw2  # noqa: F401
        import demo_fw2_integration

        autotrack.autolog(frameworks=["demo", "demo2"])
        autotrack.autolog(frameworks=["demo"], experiment="b")
        assert demo_fw2_integration.on and demo_fw2_integration.on[-1].experiment == "b"
    finally:
        autotrack.autolog(disable=True)
        _autolog._INTEGRATIONS.pop("demo2", None)
        for mod in ("demo_fw2", "demo_fw2_integration"):
            sys.modules.pop(mod, None)


def test_autolog_unknown_framework_is_an_error():
    with pytest.raises(ValueError, match="unknown framework"):
        autotrack.autolog(frameworks=["caffe"])
