"""The test suite's own set-up (tests/conftest.py): the quick subset's table stays true, and no
test, fixture or child process writes into the user's real spool folder."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import conftest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Every framework integration and every backend keeps at least one test in `-m "not slow"`.
MUST_STAY_QUICK = [
    "integrations/test_keras.py", "integrations/test_lightning.py", "integrations/test_sklearn.py",
    "integrations/test_transformers.py", "integrations/test_xgboost.py", "integrations/test_torch_loop.py",
    "core/test_store_memory.py",
    "core/test_store_local.py", "core/test_store_s3.py", "server/test_conformance.py", "server/test_api.py",
    "core/test_cli.py", "ui/test_ui_api.py",
]


def _test_names(module: str) -> set[str]:
    """The test functions a module defines, or imports from a shared suite (``from tests.x import``:
    the store conformance suite and its mixins)."""
    tree = ast.parse((TESTS / module).read_text(encoding="utf-8"))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
             and n.name.startswith("test_")}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
            shared = node.module.split(".", 1)[1].replace(".", "/") + ".py"
            if shared != module and (TESTS / shared).is_file():
                names |= _test_names(shared)
    return names


def test_every_slow_entry_names_a_test_that_exists() -> None:
    for module, listed in conftest.SLOW.items():
        assert (TESTS / module).is_file(), module
        if listed.strip() != "*":
            assert set(listed.split()) <= _test_names(module), (module, set(listed.split()) - _test_names(module))
    for module, kept in conftest.QUICK.items():
        assert kept <= _test_names(module), (module, kept - _test_names(module))
    assert conftest.SLOW_EVERYWHERE <= _test_names("store_conformance.py")


@pytest.mark.parametrize("module", MUST_STAY_QUICK)
def test_each_integration_and_backend_keeps_a_quick_test(module: str) -> None:
    quick = {name for name in _test_names(module) if not conftest.is_slow(module, name)}
    assert quick, f"{module}: every test is slow; keep one in conftest.QUICK"


def test_slow_rule() -> None:
    assert conftest.is_slow("ui/test_browser.py", "test_anything")
    assert conftest.is_slow("core/test_store_local.py", "test_store_hanging_at_exit_loses_nothing")
    assert not conftest.is_slow("integrations/test_keras.py", "test_callback_alone_records_a_complete_run")
    assert not conftest.is_slow("core/test_cli.py", "test_python_dash_m_end_to_end")


@pytest.fixture(scope="module")
def spool_at_module_setup() -> str | None:
    """What a module fixture (a server, the browser tests' live run) and its child processes see:
    module fixtures start before the per-test ``_isolated_store``."""
    return os.environ.get("AUTOTRACK_SPOOL_DIR")


def _outside_real_spools(path: str) -> bool:
    real = [os.path.realpath(p) for p in conftest.REAL_SPOOLS]
    return not any(os.path.realpath(path) == r or os.path.realpath(path).startswith(r + os.sep) for r in real)


def test_module_fixtures_and_their_children_never_see_the_real_spool(spool_at_module_setup: str | None) -> None:
    assert spool_at_module_setup, "AUTOTRACK_SPOOL_DIR unset before the per-test fixture: the real spool folder"
    assert _outside_real_spools(spool_at_module_setup)


def test_a_child_process_spools_into_the_tests_folder(tmp_path: Path) -> None:
    """A child that inherits the test's environment and cannot reach its store spools privately."""
    code = ("import autotrack\n"
            "from autotrack._spool import spool_dir\n"
            "print(spool_dir())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "spool")
    assert _outside_real_spools(out.stdout.strip())


_DEAD_STORE_CHILD = """
import sys
import autotrack
from autotrack._spool import spool_dir
with autotrack.start_run(uri=sys.argv[1]) as run:
    run.log_metrics({"loss": 1.0}, step=0)
print(run.id)
print(spool_dir())
"""


@pytest.fixture(scope="module")
def child_of_a_module_fixture() -> tuple[str, str]:
    """A process started as a module fixture starts one (a server, a live run): its store is dead,
    so what it recorded is spooled at exit (the run id and the spool folder it used)."""
    from tests.server.helpers import free_port

    env = {k: v for k, v in os.environ.items() if k != "AUTOTRACK_STRICT"}
    env.update(PYTHONPATH=str(ROOT / "src"), AUTOTRACK_EXIT_TIMEOUT="2")
    proc = subprocess.run([sys.executable, "-c", _DEAD_STORE_CHILD, f"http://127.0.0.1:{free_port()}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id, folder = proc.stdout.split()
    return run_id, folder


def test_a_child_of_a_module_fixture_spools_privately(child_of_a_module_fixture: tuple[str, str]) -> None:
    run_id, folder = child_of_a_module_fixture
    assert os.path.isdir(os.path.join(folder, run_id))  # it did spool...
    assert _outside_real_spools(folder)                  # ...but not into the user's folder
    assert not any(os.path.exists(os.path.join(real, run_id)) for real in conftest.REAL_SPOOLS)
