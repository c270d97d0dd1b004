"""What changed between two runs, as plain data.

The answer to "why did run B do worse than run A?" is almost always in a few places: a param, a
seed, a package version, the code (git), the data, or the environment. ``diff_runs`` compares
exactly those and returns only what differs, so the command line and a future web UI can show
it without either of them knowing how a run is stored. It is pure: no printing, no I/O beyond
reading the two records.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from typing import Any, Iterable, Mapping

from autotrack._records import RunRecord
from autotrack._system_view import differences as system_differences
from autotrack._system_view import is_system

__all__ = ["diff_runs", "diff_many", "same_value", "code_diff", "package_changes", "SECTIONS", "DATA_FIELDS"]

# Display order: the sections that most often explain a difference in results come first.
SECTIONS = ("run", "params", "metrics", "system", "seeds", "data", "git", "packages")

# Fingerprint fields compared per dataset; ``type`` is left out on purpose: the same values
# hash alike from numpy, torch or tensorflow, and that should not count as a data change.
DATA_FIELDS = ("sha256", "shape", "rows", "dtype")

_GIT_FIELDS = ("commit", "branch", "remote", "dirty")
_INDEX_LINE = re.compile(r"index [0-9a-f]+\.\.[0-9a-f]+( [0-7]+)?\r?\n?$")


def same_value(a: Any, b: Any) -> bool:
    """Equality as a user means it when comparing runs.

    NaN equals NaN (a metric that diverged in both runs is not a difference), ``True`` differs
    from ``1`` (JSON keeps them apart, and so does a config file), ``1`` equals ``1.0``, and lists
    and dicts compare element by element with the same rules.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # exotic values whose == raises or is ambiguous: compare their text
        return repr(a) == repr(b)


def _differing(sides: list[Mapping[str, Any]], keys: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """Keys whose values are not all the same; a key missing on a side shows ``None`` there."""
    if keys is None:
        keys = sorted(set().union(*sides), key=str)
    out: dict[str, list[Any]] = {}
    for key in keys:
        values = [side.get(key) for side in sides]
        if not all(same_value(values[0], v) for v in values[1:]):
            out[key] = values
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _run_facts(run: RunRecord) -> dict[str, Any]:
    env = run.environment or {}
    python = _dict(env.get("python")).get("version")
    platform = env.get("platform")
    if isinstance(platform, dict):
        platform = platform.get("platform") or platform.get("system")
    return {"framework": run.framework, "experiment": run.experiment, "status": run.status,
            "python": python, "platform": platform}


def _diff_summary(git: dict[str, Any]) -> str | None:
    """A diff text can be 512 KiB: show its size and hash, not the text."""
    text = git.get("diff")
    if text is None:
        return None
    data = str(text).encode("utf-8")
    if not data:
        return "<empty>"
    size = git.get("diff_bytes") if isinstance(git.get("diff_bytes"), int) else len(data)
    cut = ", truncated" if git.get("diff_truncated") else ""
    return f"<{size} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}…{cut}>"


def _git(runs: list[RunRecord]) -> dict[str, list[Any]]:
    gits = [_dict((r.environment or {}).get("git")) for r in runs]
    out = _differing(gits, _GIT_FIELDS)
    if _differing(gits, ("diff",)):
        out["diff"] = [_diff_summary(g) for g in gits]
    return out


def _data(runs: list[RunRecord]) -> dict[str, list[Any]]:
    sets = [_dict(r.data) for r in runs]
    out: dict[str, list[Any]] = {}
    for name in sorted(set().union(*sets), key=str):
        prints = [_dict(s.get(name)) for s in sets]
        fields = [f for f in DATA_FIELDS if any(f in p for p in prints)]
        if not fields and not all(name in s for s in sets):
            fields = ["type"]  # a dataset only some runs have must show up even without a hash
        for field, values in _differing(prints, fields).items():
            out[f"{name}/{field}"] = values
    return out


def diff_many(runs: list[RunRecord]) -> dict[str, dict[str, list[Any]]]:
    """What is not the same across ``runs`` (two or more), by section (see ``SECTIONS``).

    Each section maps a key to the list of its values, one per run in order (``None`` for
    "absent"); a key appears only when the values are not all equal (``same_value``), and a
    section only when it has such a key. The web UI's compare view shows exactly this.
    """
    envs = [r.environment or {} for r in runs]
    sections = {
        "run": _differing([_run_facts(r) for r in runs], ("framework", "experiment", "status", "python", "platform")),
        "params": _differing([r.params for r in runs]),
        # the hardware's figures always differ a little: only large differences, said in words
        "metrics": _differing([{k: v for k, v in r.final_metrics.items() if not is_system(k)} for r in runs]),
        "system": system_differences(runs),
        "seeds": _differing([r.seeds for r in runs]),
        "data": _data(runs),
        "git": _git(runs),
        "packages": _differing([_dict(e.get("packages")) for e in envs]),
    }
    return {name: found for name, found in sections.items() if found}


def diff_runs(a: RunRecord, b: RunRecord) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Everything that differs between runs ``a`` and ``b``, by section (see ``SECTIONS``).

    Each section maps a key to ``(value in a, value in b)``; ``None`` stands for "absent".
    Sections without a difference are left out, so an empty dict means "nothing to explain".
    Metrics compare final values; data compares fingerprints flattened as ``"<name>/<field>"``;
    git's ``diff`` entry is a short size/hash summary of each side's uncommitted changes.
    """
    return {section: {key: (va, vb) for key, (va, vb) in found.items()}
            for section, found in diff_many([a, b]).items()}


def _git_diff_text(run: RunRecord) -> str | None:
    diff = _dict((run.environment or {}).get("git")).get("diff")
    return diff if isinstance(diff, str) else None


def code_diff(a: RunRecord, b: RunRecord, context: int = 3) -> dict[str, Any] | None:
    """How the uncommitted code changes recorded for ``a`` and ``b`` differ, or None when
    neither run recorded any (no git, or clean trees).

    ``{"same": bool, "lines": [len_a, len_b], "truncated": [bool, bool], "unified": text}``:
    ``unified`` is a unified diff from ``a``'s ``git diff`` text to ``b``'s (a diff of the two
    diffs: ``-+x = 1`` is a line ``a`` added that ``b`` does not), "" when they are the same.
    """
    texts = [_git_diff_text(a) or "", _git_diff_text(b) or ""]
    if not any(texts):
        return None
    truncated = [bool(_dict((r.environment or {}).get("git")).get("diff_truncated")) for r in (a, b)]
    # a blob hash line ("index 3f2a..9c1e 100644") differs whenever the lines under it do, or
    # only in how many digits git abbreviates to: noise either way
    lines = [[line for line in t.splitlines(keepends=True) if not _INDEX_LINE.match(line)] for t in texts]
    same = lines[0] == lines[1]
    unified = "" if same else "".join(
        line if line.endswith("\n") else line + "\n"  # a last line without a newline still ends one
        for line in difflib.unified_diff(lines[0], lines[1], f"A {a.id[:8]} (git diff)", f"B {b.id[:8]} (git diff)",
                                         n=context))
    return {"same": same, "lines": [len(t.splitlines()) for t in texts], "truncated": truncated, "unified": unified}


def package_changes(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """Installed packages that differ, by kind: ``changed`` (name -> [version a, version b]),
    ``only_a`` and ``only_b`` (name -> version), and ``recorded`` ([bool, bool]: a run without a
    package list, a manual run from a bare interpreter say, is not "every package removed")."""
    sides = [_dict((r.environment or {}).get("packages")) for r in (a, b)]
    out: dict[str, Any] = {"recorded": [bool(side) for side in sides], "changed": {}, "only_a": {}, "only_b": {}}
    if not all(sides):
        return out
    for name in sorted(set(sides[0]) | set(sides[1]), key=str.lower):
        va, vb = sides[0].get(name), sides[1].get(name)
        if name not in sides[1]:
            out["only_a"][name] = va
        elif name not in sides[0]:
            out["only_b"][name] = vb
        elif not same_value(va, vb):
            out["changed"][name] = [va, vb]
    return out
