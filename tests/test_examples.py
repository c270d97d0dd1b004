"""The examples as a new user meets them: each says which extra it needs in its first lines, and
without that extra it stops with one line naming it (exit 1), not a ModuleNotFoundError traceback.

A framework is hidden from a child process by ``sys.modules[name] = None`` (its import then fails
as a missing package does) before the example runs through ``runpy``, as ``python example.py``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# example -> (the module hidden, the extra its line names; None: a plain package, no extra)
NEEDS = {
    "custom_loop.py": ("numpy", None),
    "keras_fit.py": ("keras", "keras"),
    "lightning_fit.py": ("lightning", "lightning"),
    "sklearn_fit.py": ("sklearn", "sklearn"),
    "transformers_train.py": ("transformers", "transformers"),
    "xgboost_train.py": ("xgboost", "xgboost"),
    "torch_loop.py": ("torch", "torch"),
    "lightgbm_fit.py": ("lightgbm", "lightgbm"),
    "catboost_fit.py": ("catboost", "catboost"),
    "optuna_search.py": ("optuna", "optuna"),
    "ray_tune.py": ("ray", "ray"),
}

_HIDE_AND_RUN = """
import runpy, sys
sys.modules[sys.argv[1]] = None          # import <name> now fails as for a package not installed
path = sys.argv[2]
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(NEEDS)


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_docstring_names_the_extra_first(name: str) -> None:
    doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text(encoding="utf-8"))) or ""
    head = "\n".join(doc.splitlines()[:3])
    module, extra = NEEDS[name]
    if extra is None:
        assert "pip install autotrack-ml numpy" in head, head
        return
    assert f"pip install 'autotrack-ml[{extra}]'" in head, head
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert extra in extras


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_missing_framework_is_one_line(name: str, tmp_path: Path) -> None:
    module, extra = NEEDS[name]
    proc = subprocess.run([sys.executable, "-c", _HIDE_AND_RUN, module, str(EXAMPLES / name)], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    hint = "pip install numpy" if extra is None else f"pip install 'autotrack-ml[{extra}]'"
    assert proc.stderr == f"autotrack: this example needs {module}: {hint}\n"
    assert not (tmp_path / "autotrack-runs").exists()  # stopped before anything was recorded


def test_custom_loop_runs_as_the_readme_says(tmp_path: Path) -> None:
    """README, set-up command 1: the example records a run into ./autotrack-runs, `show last` shows it."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / "custom_loop.py")], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("recorded run ")
    show = subprocess.run([sys.executable, "-m", "autotrack", "show", "last"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    assert "numpy-logreg" in show.stdout and "val_acc" in show.stdout
