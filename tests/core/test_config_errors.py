"""A configuration mistake is the user's, like a bad argument: one clear ``ConfigError`` line,
naming the file and line (or the URI) and what was probably meant, before training starts,
the same from ``start_run``, ``autolog()``, a callback's constructor and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import autotrack
from autotrack import ConfigError
from autotrack._config import resolve_experiment, resolve_uri

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["AUTOTRACK_SPOOL_DIR"] = str(cwd / "spool")  # never the user's real one
    return subprocess.run([sys.executable, "-m", "autotrack", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def _one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    return message


# -- the config file ---------------------------------------------------------------------------
def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "autotrack.toml").write_text('experiment = "churn"\nuri = runs\n')
    with pytest.raises(ConfigError) as info:
        autotrack.start_run()
    message = _one_line(str(info.value))
    assert str(tmp_path / "autotrack.toml") in message and "line 2" in message and 'uri = "runs"' in message
    assert autotrack.active_run() is None
    proc = _cli(tmp_path, "runs")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("autotrack: error: ") and "autotrack.toml" in line and "line 2" in line


def test_wrong_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "autotrack.toml").write_text('uri = 5\n')
    with pytest.raises(ConfigError, match=r"autotrack.toml, line 1: uri must be a string, not 5"):
        resolve_uri()
    (tmp_path / "autotrack.toml").write_text('[autotrack]\nuri = "runs"\nexperiment = ["a"]\n')
    with pytest.raises(ConfigError, match=r"line 3: experiment must be a string"):
        resolve_experiment()
    (tmp_path / "autotrack.toml").write_text('uri = ""\n')
    with pytest.raises(ConfigError, match=r"uri must not be empty"):
        resolve_uri()


def test_unknown_keys_get_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "autotrack.toml").write_text('# where runs go\nurl = "runs"\n')
    with pytest.raises(ConfigError) as info:
        resolve_uri()
    message = _one_line(str(info.value))
    assert "line 2" in message and "unknown key 'url'" in message and "did you mean 'uri'" in message
    (tmp_path / "autotrack.toml").write_text('[autotrack]\nexperimnet = "x"\n')
    with pytest.raises(ConfigError, match=r"did you mean 'experiment'"):
        resolve_experiment()


def test_pyproject_section_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.autotrack]\nuri = 5\n')
    sub = tmp_path / "src"
    sub.mkdir()
    monkeypatch.chdir(sub)
    with pytest.raises(ConfigError, match=r"pyproject.toml, line 5: uri must be a string"):
        resolve_uri()
    (tmp_path / "pyproject.toml").write_text('[tool.autotrack]\nuri = "runs"\nexperment = "x"\n')
    with pytest.raises(ConfigError, match=r"\[tool.autotrack\].*did you mean 'experiment'"):
        resolve_uri()
    (tmp_path / "pyproject.toml").write_text('[tool.autotrack\nuri = "runs"\n')  # broken, and about us
    with pytest.raises(ConfigError, match=r"pyproject.toml.*line 1"):
        resolve_uri()
    (tmp_path / "pyproject.toml").write_text('[project\nname = "x"\n')  # broken, but says nothing of us
    assert resolve_uri() == "./autotrack-runs"


def test_a_good_config_still_works(tmp_path: Path) -> None:
    (tmp_path / "autotrack.toml").write_text('[autotrack]\nuri = "runs"\nexperiment = "churn"\n')
    assert resolve_uri() == str(tmp_path.resolve() / "runs") and resolve_experiment() == "churn"


def test_autolog_raises_a_config_error_at_once(tmp_path: Path, lenient: None) -> None:
    (tmp_path / "autotrack.toml").write_text('uri = \n')
    with pytest.raises(ConfigError, match=r"autotrack.toml, line 1"):
        autotrack.autolog()


# -- the URI scheme ----------------------------------------------------------------------------
@pytest.mark.parametrize("uri, meant", [("htp://tracking:8080", "http"), ("htps://x", "https"),
                                         ("s4://bucket/runs", "s3"), ("memroy://x", "memory")])
def test_start_run_with_a_mistyped_scheme_says_what_was_meant(uri: str, meant: str) -> None:
    with pytest.raises(ConfigError) as info:
        autotrack.start_run(uri=uri)
    message = _one_line(str(info.value))
    assert f"did you mean {meant}://" in message and uri.split("://")[0] + "://" in message
    assert autotrack.active_run() is None


def test_autolog_refuses_a_mistyped_scheme_itself(lenient: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"did you mean http://"):
        autotrack.autolog(uri="htp://tracking:8080")
    from autotrack import _autolog

    assert _autolog._settings is None, "a refused autolog() switches nothing on"
    monkeypatch.setenv("AUTOTRACK_URI", "htp://tracking:8080")
    with pytest.raises(ConfigError, match=r"did you mean http://"):
        autotrack.autolog()


def test_callback_options_refuse_a_mistyped_scheme() -> None:
    from autotrack.integrations._common import explicit_options

    with pytest.raises(ConfigError, match=r"did you mean http://"):
        explicit_options(uri="htp://tracking:8080")
    assert explicit_options(uri="memory://fine") == {"uri": "memory://fine"}


def test_an_unknown_scheme_without_a_near_one_says_so() -> None:
    with pytest.raises(ConfigError) as info:
        autotrack.start_run(uri="zzqqxx://x")
    assert "unknown URI scheme zzqqxx://" in str(info.value) and "did you mean" not in str(info.value)
