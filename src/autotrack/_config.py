"""Where runs go: resolution of the store URI and experiment name.

Order (first hit wins): explicit argument > ``AUTOTRACK_URI`` / ``AUTOTRACK_EXPERIMENT`` >
``autotrack.toml`` in the working directory, or ``[tool.autotrack]`` in the nearest
``pyproject.toml`` (searching upward) > defaults (``./autotrack-runs``, ``"default"``).
A relative path in a config file is taken relative to that file, so a project's runs land in
one place whichever sub-directory a script is started from.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULT_URI", "DEFAULT_EXPERIMENT", "resolve_uri", "resolve_experiment", "env_flag", "file_config"]

DEFAULT_URI = "./autotrack-runs"
DEFAULT_EXPERIMENT = "default"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _has_scheme(uri: str) -> bool:
    head, sep, _ = uri.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").replace(".", "").isalnum() and len(head) > 1


def file_config(cwd: str | None = None) -> tuple[dict[str, Any], Path | None]:
    """The ``[autotrack]`` settings from a config file, and the directory they are relative to."""
    here = Path(cwd or os.getcwd()).resolve()
    own = here / "autotrack.toml"
    if own.is_file():
        data = tomllib.loads(own.read_text(encoding="utf-8"))
        return dict(data.get("autotrack", data)), here
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                return {}, None
            section = data.get("tool", {}).get("autotrack")
            if isinstance(section, dict):
                return dict(section), folder
            return {}, None  # the nearest pyproject.toml decides, even without a section
    return {}, None


def _setting(explicit: object, env_var: str, key: str) -> tuple[str | None, Path | None]:
    """The first of: explicit value, environment variable, config file entry (with its folder)."""
    if explicit is not None and str(explicit) != "":
        return str(explicit), None
    env = os.environ.get(env_var)
    if env:
        return env, None
    config, base = file_config()
    value = config.get(key)
    return (value, base) if isinstance(value, str) and value else (None, None)


def resolve_uri(uri: str | os.PathLike[str] | None = None) -> str:
    value, base = _setting(uri, "AUTOTRACK_URI", "uri")
    if value is None:
        return DEFAULT_URI
    if base is not None and not _has_scheme(value) and not os.path.isabs(value):
        return str(base / value)  # relative to the config file that said it
    return value


def resolve_experiment(experiment: str | None = None) -> str:
    value, _ = _setting(experiment, "AUTOTRACK_EXPERIMENT", "experiment")
    return value or DEFAULT_EXPERIMENT
