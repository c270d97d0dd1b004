"""What changed between two runs, as plain data.

The answer to "why did run B do worse than run A?" is almost always in a few places: a param, a
seed, a package version, the code (git), the data, or the environment. ``diff_runs`` compares
exactly those and returns only what differs, so the command line and a future web UI can show
it without either of them knowing how a run is stored. It is pure: no printing, no I/O beyond
reading the two records.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Mapping

from autotrack._records import RunRecord

__all__ = ["diff_runs", "same_value", "SECTIONS", "DATA_FIELDS"]

# Display order: the sections that most often explain a difference in results come first.
SECTIONS = ("run", "params", "metrics", "seeds", "data", "git", "packages")

# Fingerprint fields compared per dataset; ``type`` is left out on purpose: the same values
# hash alike from numpy, torch or tensorflow, and that should not count as a data change.
DATA_FIELDS = ("sha256", "shape", "rows", "dtype")

_GIT_FIELDS = ("commit", "branch", "remote", "dirty")


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


def _compare(a: Mapping[str, Any], b: Mapping[str, Any], keys: Iterable[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ; a key missing on one side shows ``None`` there."""
    if keys is None:
        keys = sorted(set(a) | set(b), key=str)
    out: dict[str, tuple[Any, Any]] = {}
    for key in keys:
        va, vb = a.get(key), b.get(key)
        if not same_value(va, vb):
            out[key] = (va, vb)
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


def _git(a: RunRecord, b: RunRecord) -> dict[str, tuple[Any, Any]]:
    ga, gb = _dict((a.environment or {}).get("git")), _dict((b.environment or {}).get("git"))
    out = _compare(ga, gb, _GIT_FIELDS)
    if not same_value(ga.get("diff"), gb.get("diff")):
        out["diff"] = (_diff_summary(ga), _diff_summary(gb))
    return out


def _data(a: RunRecord, b: RunRecord) -> dict[str, tuple[Any, Any]]:
    da, db = _dict(a.data), _dict(b.data)
    out: dict[str, tuple[Any, Any]] = {}
    for name in sorted(set(da) | set(db), key=str):
        fa, fb = _dict(da.get(name)), _dict(db.get(name))
        fields = [f for f in DATA_FIELDS if f in fa or f in fb]
        if (name in da) != (name in db) and not fields:
            fields = ["type"]  # a dataset only one run has must show up even without a hash
        for field, pair in _compare(fa, fb, fields).items():
            out[f"{name}/{field}"] = pair
    return out


def diff_runs(a: RunRecord, b: RunRecord) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Everything that differs between runs ``a`` and ``b``, by section (see ``SECTIONS``).

    Each section maps a key to ``(value in a, value in b)``; ``None`` stands for "absent".
    Sections without a difference are left out, so an empty dict means "nothing to explain".
    Metrics compare final values; data compares fingerprints flattened as ``"<name>/<field>"``;
    git's ``diff`` entry is a short size/hash summary of each side's uncommitted changes.
    """
    env_a, env_b = a.environment or {}, b.environment or {}
    sections = {
        "run": _compare(_run_facts(a), _run_facts(b), ("framework", "experiment", "status", "python", "platform")),
        "params": _compare(a.params, b.params),
        "metrics": _compare(a.final_metrics, b.final_metrics),
        "seeds": _compare(a.seeds, b.seeds),
        "data": _data(a, b),
        "git": _git(a, b),
        "packages": _compare(_dict(env_a.get("packages")), _dict(env_b.get("packages"))),
    }
    return {name: found for name, found in sections.items() if found}
