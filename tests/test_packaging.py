"""Packaging as a new user meets it: the distribution name, the extras, and every install hint.

"autotrack" on PyPI is an unrelated project (a demo library with no ``autotrack`` package), so
``pip install autotrack`` installs something else and ``import autotrack`` fails. Ours is
``autotrack-ml``; the import name and the command stay ``autotrack``.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = "autotrack-ml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# The extras a user installs for a feature; `all` is all of them (dev and bench are tools, not features).
FEATURE_EXTRAS = ("lightning", "keras", "tensorflow", "sklearn", "transformers", "xgboost", "s3", "pandas", "server")

# An install hint that names the bare name: 'autotrack[server]', `pip install autotrack`, ...
_BARE = re.compile(r"(?<![\w.-])autotrack\[|pip install +['\"]?autotrack(?![\w-])")


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_distribution_name_is_ours_and_import_name_and_command_stay() -> None:
    assert PYPROJECT["name"] == DIST
    assert PYPROJECT["scripts"] == {"autotrack": "autotrack.cli:main"}
    assert (ROOT / "src" / "autotrack" / "__init__.py").is_file()


def test_all_extra_has_every_feature() -> None:
    extras = PYPROJECT["optional-dependencies"]
    everything = {_name(r) for r in extras["all"]}
    for extra in FEATURE_EXTRAS:
        missing = {_name(r) for r in extras[extra]} - everything
        assert not missing, f"[all] lacks {sorted(missing)} of [{extra}]"
    assert {"starlette", "uvicorn", "httpx", "s3fs"} <= everything


def _hint_files() -> list[Path]:
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "src").rglob("*.py"),
             *(ROOT / "examples").glob("*.py"), *(ROOT / "bench").glob("*.py")]
    return [p for p in files if "egg-info" not in p.parts]


def test_no_install_hint_names_the_bare_name() -> None:
    found = []
    for path in _hint_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _BARE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "install hints must name autotrack-ml:\n" + "\n".join(found)


@pytest.mark.parametrize("line, bare", [
    ("pip install 'autotrack[server]'", True), ("needs `autotrack[s3]`", True), ("pip install autotrack", True),
    ("pip install 'autotrack-ml[server]'", False), ("pip install autotrack-ml", False),
    ("needs `autotrack-ml[s3]`", False), ("import autotrack", False), ("autotrack serve", False),
])
def test_bare_hint_pattern(line: str, bare: bool) -> None:
    assert bool(_BARE.search(line)) is bare


def test_installed_distribution_provides_the_command() -> None:
    """The environment the suite runs in was installed from this tree under the new name."""
    dist = metadata.distribution(DIST)
    scripts = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    assert [(ep.name, ep.value) for ep in scripts] == [("autotrack", "autotrack.cli:main")]
    assert dist.version == __import__("autotrack").__version__


def test_recorded_version_is_ours_not_the_unrelated_autotrack() -> None:
    """environment.frameworks["autotrack"] reads our distribution, never PyPI's unrelated one."""
    import autotrack
    from autotrack._capture.environment import _frameworks

    assert _frameworks({"autotrack": "9.9", DIST: "0.1.0"})["autotrack"] == "0.1.0"
    assert _frameworks({"autotrack": "9.9"})["autotrack"] == autotrack.__version__
