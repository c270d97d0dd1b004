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

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

# No pathlib, and tomllib only once a config file is found: both are imported at the first
# start_run, on the training thread (~10-20 ms together on the benchmark machine).

__all__ = ["DEFAULT_URI", "DEFAULT_EXPERIMENT", "resolve_uri", "resolve_experiment", "env_flag", "file_config"]

DEFAULT_URI = "./autotrack-runs"
DEFAULT_EXPERIMENT = "default"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _has_scheme(uri: str) -> bool:
    head, sep, _ = uri.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").replace(".", "").isalnum() and len(head) > 1


def _toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return tomllib.loads(text)  # its TOMLDecodeError is a ValueError


def file_config(cwd: str | None = None) -> tuple[dict[str, Any], str | None]:
    """The ``[autotrack]`` settings from a config file, and the directory they are relative to."""
    here = os.path.realpath(cwd or os.getcwd())
    own = os.path.join(here, "autotrack.toml")
    if os.path.isfile(own):
        data = _toml(own)
        return dict(data.get("autotrack", data)), here
    folder = here
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                data = _toml(candidate)
            except (OSError, ValueError):
                return {}, None
            section = data.get("tool", {}).get("autotrack")
            if isinstance(section, dict):
                return dict(section), folder
            return {}, None  # the nearest pyproject.toml decides, even without a section
        parent = os.path.dirname(folder)
        if parent == folder:
            return {}, None
        folder = parent


def _under(base: str, relative: str) -> str:
    """``base / relative`` as pathlib spells it: empty and ``.`` parts dropped, ``..`` kept."""
    if os.altsep:
        relative = relative.replace(os.altsep, os.sep)
    return os.path.join(base, *[part for part in relative.split(os.sep) if part not in ("", ".")])


def _setting(explicit: object, env_var: str, key: str) -> tuple[str | None, str | None]:
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
        return _under(base, value)  # relative to the config file that said it
    return value


def resolve_experiment(experiment: str | None = None) -> str:
    value, _ = _setting(experiment, "AUTOTRACK_EXPERIMENT", "experiment")
    return value or DEFAULT_EXPERIMENT
