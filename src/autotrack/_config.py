"""Where runs go: resolution of the store URI and experiment name.

Order (first hit wins): explicit argument > ``AUTOTRACK_URI`` / ``AUTOTRACK_EXPERIMENT`` >
``autotrack.toml`` in the working directory, or ``[tool.autotrack]`` in the nearest
``pyproject.toml`` (searching upward) > defaults (``./autotrack-runs``, ``"default"``).
A relative path in a config file is taken relative to that file, so a project's runs land in
one place whichever sub-directory a script is started from.
"""

from __future__ import annotations

import os
import stat
import sys

from autotrack._errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

# No pathlib, and tomllib only once a config file is found: both are imported at the first
# start_run, on the training thread (~10-20 ms together on the benchmark machine).

__all__ = ["DEFAULT_URI", "DEFAULT_EXPERIMENT", "KNOWN_KEYS", "resolve_uri", "resolve_experiment", "resolve_destination",
           "check_destination", "env_flag", "file_config"]

DEFAULT_URI = "./autotrack-runs"
DEFAULT_EXPERIMENT = "default"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _has_scheme(uri: str) -> bool:
    head, sep, _ = uri.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").replace(".", "").isalnum() and len(head) > 1


KNOWN_KEYS = ("uri", "experiment")


def _header_line(text: str, header: str) -> int:
    """The line (1-based) of the table header ``[header]``; 0 when there is none."""
    import re

    pattern = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, header.split("."))) + r"\s*\]")
    return next((n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)), 0)


def _line_of(text: str, key: str, header: str) -> int | None:
    """Where ``key`` is set in the table ``header`` ("" for the top level): its ``key = ...``
    line, or its own ``[header.key]`` table; None when written some other way (inline)."""
    import re

    start = _header_line(text, header) if header else 0
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*[=.]""")
    for number, line in enumerate(text.splitlines()[start:], start=start + 1):
        if line.lstrip().startswith("["):
            break  # the next table: not set in ours by a plain line
        if pattern.match(line):
            return number
    return _header_line(text, f"{header}.{key}" if header else key) or None


def _where(path: str, line: int | None) -> str:
    return f"{path}, line {line}" if line else path


_parsed: dict[tuple[str, bool], tuple[tuple[int, int], tuple[dict[str, Any], str] | None]] = {}


def _toml(path: str, about_us: bool = True, st: os.stat_result | None = None) -> tuple[dict[str, Any], str] | None:
    """The parsed file and its text. A file that is not TOML is a ``ConfigError`` naming the file
    and line; for a ``pyproject.toml`` (``about_us=False``) only if a ``[tool.autotrack]`` header
    is in it (else it is none of autotrack's business, and None).

    Every ``start_run`` asks (twice: the store and the experiment), and a project's
    ``pyproject.toml`` takes ~2 ms to parse: the answer is kept while the file's modification
    time and size stay the same, and a ``pyproject.toml`` that does not mention autotrack is not
    parsed at all. ``st``: the file's ``os.stat``, when the caller has it."""
    try:
        st = st or os.stat(path)
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    known = _parsed.get((path, about_us))
    if stamp is not None and known is not None and known[0] == stamp:
        return known[1]
    found = _parse(path, about_us)
    if stamp is not None:
        _parsed[(path, about_us)] = (stamp, found)
    return found


def _parse(path: str, about_us: bool) -> tuple[dict[str, Any], str] | None:
    if not about_us:
        try:
            with open(path, encoding="utf-8") as fh:
                if "autotrack" not in fh.read():
                    return None
        except (OSError, UnicodeDecodeError):
            return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    text = ""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        return tomllib.loads(text), text
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        import re

        if not about_us and not re.search(r"^\s*\[\s*tool\s*\.\s*autotrack\b", text, re.MULTILINE):
            return None
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(exc), re.DOTALL)
        if found is None:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        reason, line, column = found.groups()
        source = text.splitlines()[int(line) - 1] if 0 < int(line) <= len(text.splitlines()) else ""
        bare = re.match(r"""\s*([\w.-]+)\s*=\s*([^\s"'\[{].*?)\s*$""", source)
        hint = ""
        if bare and reason == "Invalid value":  # uri = runs
            hint = f' (text goes in quotes: {bare.group(1)} = "{bare.group(2)}")'
        raise ConfigError(f"{path}, line {line}: not valid TOML (column {column}): {reason}{hint}") from None


def _checked(section: Any, path: str, text: str, header: str) -> dict[str, Any]:
    """The settings of one table: every key known, every value a non-empty string."""
    label = f"[{header}]" if header else "autotrack.toml"
    if not isinstance(section, dict):
        raise ConfigError(f"{_where(path, _line_of(text, header, '') if header else None)}: "
                          f"{header} must be a table of settings")
    for key, value in section.items():
        if key not in KNOWN_KEYS:
            import difflib

            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
            if not close and header == "" and difflib.get_close_matches(key, ["autotrack"], cutoff=0.7):
                close = ["[autotrack]"]  # a misspelt table name
            raise ConfigError(f"{_where(path, _line_of(text, key, header))}: unknown key {key!r} in {label} "
                              f"(known: {', '.join(KNOWN_KEYS)})" + (f"; did you mean {close[0]!r}?" if close else ""))
        if not isinstance(value, str):
            raise ConfigError(f"{_where(path, _line_of(text, key, header))}: {key} must be a string, "
                              f"not {value!r} ({type(value).__name__})")
        if not value.strip():
            raise ConfigError(f"{_where(path, _line_of(text, key, header))}: {key} must not be empty")
    return dict(section)


def file_config(cwd: str | None = None) -> tuple[dict[str, Any], str | None]:
    """The ``[autotrack]`` settings from a config file, and the directory they are relative to.

    A mistake in them (not TOML, an unknown key, a number where a string goes) raises
    ``ConfigError`` naming the file and line: it is the user's, like a bad argument, and a
    setting silently ignored sends runs where nobody will look for them.
    """
    # POSIX's getcwd is already the physical path: no realpath (a syscall per part) every run
    here = os.getcwd() if cwd is None and os.name == "posix" else os.path.realpath(cwd or os.getcwd())
    own = os.path.join(here, "autotrack.toml")
    st = _regular(own)
    if st is not None:
        data, text = _toml(own, st=st)  # type: ignore[misc]
        if "autotrack" in data:  # an [autotrack] table: then nothing else belongs in the file
            for key in data:
                if key != "autotrack":
                    raise ConfigError(f"{_where(own, _line_of(text, key, ''))}: unknown key {key!r} beside the "
                                      "[autotrack] table (the settings go in it)")
            return _checked(data["autotrack"], own, text, "autotrack"), here
        return _checked(data, own, text, ""), here
    folder = here
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        st = _regular(candidate)
        if st is not None:
            parsed = _toml(candidate, about_us=False, st=st)
            if parsed is None:
                return {}, None
            data, text = parsed
            tool = data.get("tool")
            section = tool.get("autotrack") if isinstance(tool, dict) else None
            if section is not None:
                return _checked(section, candidate, text, "tool.autotrack"), folder
            return {}, None  # the nearest pyproject.toml decides, even without a section
        parent = os.path.dirname(folder)
        if parent == folder:
            return {}, None
        folder = parent


def _regular(path: str) -> os.stat_result | None:
    """``os.stat`` of a regular file, else None (``os.path.isfile``, keeping the stat)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _under(base: str, relative: str) -> str:
    """``base / relative`` as pathlib spells it: empty and ``.`` parts dropped, ``..`` kept."""
    if os.altsep:
        relative = relative.replace(os.altsep, os.sep)
    return os.path.join(base, *[part for part in relative.split(os.sep) if part not in ("", ".")])


def _setting(explicit: object, env_var: str, key: str,
             config: Callable[[], tuple[dict[str, Any], str | None]] | None = None) -> tuple[str | None, str | None]:
    """The first of: explicit value, environment variable, config file entry (with its folder)."""
    if explicit is not None and str(explicit) != "":
        return str(explicit), None
    env = os.environ.get(env_var)
    if env:
        return env, None
    settings, base = (config or file_config)()
    value = settings.get(key)
    return (value, base) if value else (None, None)


def resolve_uri(uri: str | os.PathLike[str] | None = None,
                config: Callable[[], tuple[dict[str, Any], str | None]] | None = None) -> str:
    value, base = _setting(uri, "AUTOTRACK_URI", "uri", config)
    if value is None:
        return DEFAULT_URI
    if base is not None and not _has_scheme(value) and not os.path.isabs(value):
        return _under(base, value)  # relative to the config file that said it
    return value


def resolve_experiment(experiment: str | None = None,
                       config: Callable[[], tuple[dict[str, Any], str | None]] | None = None) -> str:
    value, _ = _setting(experiment, "AUTOTRACK_EXPERIMENT", "experiment", config)
    return value or DEFAULT_EXPERIMENT


def resolve_destination(uri: str | os.PathLike[str] | None = None, experiment: str | None = None) -> tuple[str, str]:
    """``(resolve_uri(uri), resolve_experiment(experiment))``, looking for the config file once:
    every ``start_run`` asks both, and each look is a few system calls (each a moment for other
    threads to take the GIL from the training thread)."""
    found: list[tuple[dict[str, Any], str | None]] = []

    def config() -> tuple[dict[str, Any], str | None]:
        if not found:
            found.append(file_config())
        return found[0]

    return resolve_uri(uri, config), resolve_experiment(experiment, config)


def check_destination(uri: str | os.PathLike[str] | None = None, experiment: str | None = None) -> None:
    """Resolve where runs would go now and raise ``ConfigError`` if they cannot: a mistake in the
    config file, an unknown or mistyped URI scheme (with what was probably meant), a missing
    optional package. ``autolog()`` and the callbacks call it so that a bad setting stops the
    script before training starts, as ``start_run`` does; nothing is opened or created."""
    if env_flag("AUTOTRACK_DISABLE"):
        return  # every call is a no-op: nothing would be written anywhere
    resolved, _ = resolve_destination(uri, experiment)
    head, sep, _ = resolved.partition("://")
    if sep and len(head) > 1 and head.lower() != "file":  # a local path needs no backend lookup (~20 ms)
        from autotrack.backends.base import check_uri

        check_uri(resolved)
