"""What the model commands print, apart from the commands themselves (``_cli_models``): each
version, event and model as plain data for ``--json`` and the dashboard (``ui/_models``), the
``model show`` page, a history line, and the lines ``autotrack diff`` adds when a side is a model
version. Kept apart so the dashboard reuses the very same JSON without the argument parser.
"""

from __future__ import annotations

from typing import Any

__all__ = ["version_dict", "event_dict", "model_dict", "run_facts", "model_section", "print_versions",
           "print_version", "event_text", "aliases_text", "label", "when"]

_PARAMS_SHOWN = 20  # ``model show``: the run's params beyond this are in ``autotrack show RUN``


def label(version: Any) -> str:
    return f"{version.name} v{version.version}"


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def when(value: Any) -> str:
    """A registry time (a datetime, or seconds since the epoch) as ``show`` prints times."""
    import datetime as dt

    from autotrack._cli_format import fmt_time

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    elif isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return fmt_time(value, seconds=True)


def version_dict(version: Any) -> dict[str, Any]:
    return {"name": version.name, "version": version.version, "aliases": sorted(version.aliases or ()),
            "run_id": version.run_id, "artifact": version.artifact, "sha256": version.sha256, "size": version.size,
            "created": _iso(version.created), "by": version.by, "metadata": dict(version.metadata or {})}


def event_dict(event: Any) -> dict[str, Any]:
    return {"seq": event.seq, "action": event.action, "version": event.version, "alias": event.alias,
            "previous": event.previous, "run_id": event.run_id, "sha256": event.sha256, "by": event.by,
            "time": _iso(event.time)}


def model_dict(model: Any) -> dict[str, Any]:
    latest = model.latest
    return {"name": model.name, "versions": len(model.version_numbers),
            "latest": version_dict(latest) if latest is not None else None,
            "aliases": dict(sorted(model.aliases.items()))}


def run_facts(run: Any) -> dict[str, Any]:
    git = (run.environment or {}).get("git") or {}
    return {"id": run.id, "name": run.name, "status": run.status, "experiment": run.experiment,
            "framework": run.framework, "start_time": _iso(run.start_time), "end_time": _iso(run.end_time),
            "params": dict(run.params), "final_metrics": dict(run.final_metrics), "data": dict(run.data or {}),
            "git": {k: git.get(k) for k in ("commit", "branch", "dirty")} if isinstance(git, dict) else {}}


def model_section(a: Any, b: Any) -> dict[str, list[Any]]:
    """For ``diff``: what differs between the versions behind two references (either may be a
    plain run, ``None``): ``{key: [A, B]}`` for the version, artifact and sha256."""
    out: dict[str, list[Any]] = {}
    for key in ("model", "version", "artifact", "sha256"):
        values = [None if v is None else (v.name if key == "model" else getattr(v, key)) for v in (a, b)]
        if values[0] != values[1]:
            out[key] = values
    return out


def print_versions(con: Any, *sides: tuple[str, Any], model: dict[str, list[Any]] | None = None) -> None:
    """``diff``'s first lines when a side is a model version: which version each reference is,
    then a ``model`` table of what differs between the versions themselves (artifact, sha256)."""
    from autotrack._cli_format import table, text

    if all(version is None for _ref, version in sides):
        return
    for side, (ref, version) in zip("AB", sides):
        if version is not None:
            con.print(text(f"{side}: {ref} is {label(version)}, from run {version.run_id[:8]}"))
    if model:
        tab = table("key", "A", "B", title="model", fold=("A", "B"))
        for key, (va, vb) in model.items():
            tab.add_row(text(key), text(va), text(vb))
        con.print(tab)


def aliases_text(aliases: dict[str, Any]) -> str:
    return ", ".join(f"{alias} → v{version}" for alias, version in sorted(aliases.items())) or "—"


def print_version(version: Any, run: Any) -> None:
    from rich.table import Table

    from autotrack._cli_format import (STATUS_STYLES, console, data_rows, fmt_metadata, fmt_number, fmt_size, fmt_time,
                                       pick_metrics, table, text)

    con = console()
    aliases = sorted(version.aliases or ())
    con.print(text(f"model {version.name} v{version.version}" + (f"  ({', '.join(aliases)})" if aliases else ""),
                   "bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    rows = [("artifact", version.artifact), ("sha256", version.sha256), ("size", fmt_size(version.size)),
            ("registered", when(version.created)), ("by", version.by or "—")]
    if version.metadata:
        rows.append(("metadata", fmt_metadata(version.metadata, 200)))
    for key, value in rows:
        grid.add_row(key, text(value))
    con.print(grid)
    con.print()
    if run is None:
        con.print(text(f"run {version.run_id}: no longer in the store (the version's bytes are kept)", "yellow"))
        return
    con.print(text(f"run {run.id}  {run.name}", "bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    git = (run.environment or {}).get("git") or {}
    commit = git.get("commit") if isinstance(git, dict) else None
    facts = [("status", text(run.status, STATUS_STYLES.get(run.status, ""))), ("experiment", text(run.experiment)),
             ("framework", text(run.framework or "manual")), ("start", text(fmt_time(run.start_time, seconds=True))),
             ("code", text(f"{commit}{' (uncommitted changes)' if git.get('dirty') else ''}"
                           f"{' on ' + str(git['branch']) if git.get('branch') else ''}" if commit else "not recorded"))]
    for key, value in facts:
        grid.add_row(key, value)
    con.print(grid)
    finals = run.final_metrics
    if finals:
        names = pick_metrics([finals], limit=len(finals))
        tab = table("metric", "final", title="metrics")
        for name in names:
            tab.add_row(text(name), text(fmt_number(finals[name])))
        con.print(tab)
    if run.params:
        keys = sorted(run.params)
        tab = table("param", "value", title="params", fold=("value",))
        for key in keys[:_PARAMS_SHOWN]:
            tab.add_row(text(key), text(run.params[key]))
        con.print(tab)
        if len(keys) > _PARAMS_SHOWN:
            con.print(text(f"… and {len(keys) - _PARAMS_SHOWN} more params: autotrack show {run.id[:8]}", "dim"))
    if run.data:
        tab = table("name", "type", "shape", "rows", "dtype", "sha256", title="data")
        for name, info in run.data.items():
            for row in data_rows(name, info):
                tab.add_row(*row)
        con.print(tab)
    con.print(text(f"everything about the run: autotrack show {run.id[:8]}", "dim"))


def event_text(event: Any) -> str:
    if event.action == "register":
        return f"registered v{event.version}"
    if event.action == "set_alias":
        if event.previous is not None and event.previous != event.version:
            return f"{event.alias}: v{event.previous} → v{event.version}"
        return f"{event.alias} → v{event.version}"
    if event.action == "delete_alias":
        return f"{event.alias} removed" + (f" (was v{event.previous})" if event.previous is not None else "")
    return f"{event.action} v{event.version}"
