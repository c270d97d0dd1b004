"""The dashboard's Models page, as plain JSON-ready data: registered models, a model's versions
with the run behind each, what changed between two versions, and the badges on runs that
produced a version.

Everything is read through the registry's public API (``models``, ``get_model``,
``model_history``) over the store the dashboard serves, so the page shows what a notebook would.
The runs table asks for badges on every refresh (every 5 s while a run is running), so the list
of models is kept for ``ttl`` seconds, like the table's rows; a page about one model reads it
afresh. What changed between two versions is the run compare's own ``diff_many`` over the two
runs, plus what differs between the versions themselves (artifact, sha256).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Mapping

from autotrack._cli_model_view import event_dict, model_section, version_dict
from autotrack._diff import SECTIONS, diff_many
from autotrack._values import json_safe

__all__ = ["ModelIndex", "badges_for", "models_list", "model_detail", "model_diff"]

# what a user asks first when two versions differ: the code, the data, the params, then results
_DIFF_ORDER = ("model", "git", "data", "params", "metrics", *(s for s in SECTIONS if s not in
                                                                ("git", "data", "params", "metrics")))


class ModelIndex:
    """The registered models of one store, cached for ``ttl`` seconds, and the badge of every
    run that produced a version (``run id -> [{"name", "version", "aliases"}]``).

    A version never changes once registered, so which run made it is read once per version and
    kept: a refresh reads each model's state (aliases, version numbers) and only the versions
    registered since the last one."""

    def __init__(self, backend: Any, ttl: float = 2.0) -> None:
        self.uri: str = backend.uri
        self.ttl = ttl
        self._lock = threading.Lock()
        self._models: list[Any] = []
        self._runs: dict[tuple[str, int], str] = {}  # (model, version) -> run id: immutable
        self._badges: dict[str, list[dict[str, Any]]] = {}
        self._at = -math.inf

    def refresh(self, force: bool = False) -> list[Any]:
        with self._lock:
            if force or time.monotonic() - self._at > self.ttl:
                from autotrack._registry import models

                self._models = sorted(models(uri=self.uri), key=lambda m: m.name)
                self._badges = self._badges_of(self._models)
                self._at = time.monotonic()
            return self._models

    def badges(self) -> dict[str, list[dict[str, Any]]]:
        self.refresh()
        return self._badges

    def _badges_of(self, models: list[Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for model in models:
            numbers = model.version_numbers
            missing = [n for n in numbers if (model.name, n) not in self._runs]
            if len(missing) > 20:  # read once (all at once); later refreshes know them
                found = model.versions
            else:
                from autotrack._registry import get_model

                found = [get_model(f"{model.name}/{n}", uri=self.uri) for n in missing]
            for version in found:
                self._runs[(model.name, version.version)] = version.run_id
            aliases = _aliases_of(model)
            for number in numbers:
                run_id = self._runs.get((model.name, number))
                if run_id is not None:
                    out.setdefault(run_id, []).append(
                        {"name": model.name, "version": number, "aliases": aliases.get(number, [])})
        for found in out.values():
            found.sort(key=lambda b: (b["name"], -b["version"]))
        return out


def _aliases_of(model: Any) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, number in sorted(model.aliases.items()):
        out.setdefault(number, []).append(alias)
    return out


def badges_for(index: ModelIndex, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The badges of ``run_ids`` (only those that produced a version)."""
    every = index.badges()
    return {run_id: every[run_id] for run_id in run_ids if run_id in every}


def models_list(index: ModelIndex, fresh: bool = False) -> dict[str, Any]:
    """``/ui/api/models``: each model's name, number of versions, latest version and aliases."""
    rows = []
    for model in index.refresh(force=fresh):
        latest = model.latest
        rows.append({"name": model.name, "versions": len(model.version_numbers),
                     "latest": latest.version if latest else None, "aliases": dict(model.aliases),
                     "latest_run": latest.run_id if latest else None,
                     "updated": version_dict(latest)["created"] if latest else None})
    return json_safe({"models": rows})


def _run_header(rows: Mapping[str, Mapping[str, Any]], run_id: str) -> dict[str, Any] | None:
    row = rows.get(run_id)
    if row is None:
        return None  # the run was deleted; the version's bytes are pinned and stay
    return {k: row.get(k) for k in ("id", "name", "status", "experiment", "framework", "start_time")}


def model_detail(index: ModelIndex, run_rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """``/ui/api/models/NAME``: every version (newest first) with its aliases and the run behind
    it (``null`` once deleted), where each alias points, and the model's history."""
    from autotrack._errors import ModelNotFoundError
    from autotrack._registry import model_history

    model = next((m for m in index.refresh(force=True) if m.name == name), None)
    if model is None:
        raise ModelNotFoundError(f"no registered model named {name!r}")
    rows = {r["id"]: r for r in run_rows}
    aliases = _aliases_of(model)
    versions = []
    for version in reversed(model.versions):
        versions.append({**version_dict(version), "aliases": aliases.get(version.version, []),
                         "run": _run_header(rows, version.run_id)})
    history = [event_dict(e) for e in model_history(name, uri=index.uri)]
    numbers = model.version_numbers
    return json_safe({"name": model.name, "latest": numbers[-1] if numbers else None, "aliases": dict(model.aliases),
                      "versions": versions, "history": history})


def model_diff(index: ModelIndex, record: Any, name: str, a: str, b: str) -> dict[str, Any]:
    """``/ui/api/models/NAME/diff?a=&b=``: what changed from version ``a`` to ``b`` (a number or
    an alias each): the versions, then by section what differs (the version's artifact and
    sha256, git, data fingerprints, params, final metrics...), as the run compare does.
    ``record(run_id)`` reads a run (a deleted one raises RunNotFoundError: a 404)."""
    from autotrack._registry import get_model

    versions = [get_model(_ref(name, ref), uri=index.uri) for ref in (a, b)]
    runs = [record(v.run_id) for v in versions]
    found = diff_many(runs)
    model = model_section(*versions)
    if model:
        found = {"model": model, **found}
    sides = []
    for version, run in zip(versions, runs):
        git = (run.environment or {}).get("git") or {}
        sides.append({**version_dict(version), "run": {"id": run.id, "name": run.name, "status": run.status,
                                                        "commit": git.get("commit") if isinstance(git, dict) else None}})
    return json_safe({"name": name, "versions": sides, "sections": [s for s in _DIFF_ORDER if s in found],
                      "differences": found})


def _ref(name: str, ref: str) -> str:
    """``3`` or ``v3``: version 3; anything else: an alias (``production``, ``latest``)."""
    ref = ref.strip()
    digits = ref[1:] if ref[:1] in ("v", "V") else ref
    if digits.isascii() and digits.isdigit():
        return f"{name}/{int(digits)}"
    if not ref:
        raise ValueError("a version to compare is missing: ?a=VERSION&b=VERSION (a number or an alias)")
    return f"{name}@{ref}"
