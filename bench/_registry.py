"""Workload 7: the model registry. Resolving ``name@alias`` in a model with 10,000 versions and
100,000 events (1,000 versions / 10,000 events with ``--quick``).

The store is written by hand in the documented format (docs/format.md, "Model registry"): one
file per event, partitioned by thousands, and a snapshot every 1,000 events, except that the
newest is missing (its writer died), so a reader replays the last 1,000 events itself: the worst
case a reader meets. Building it is not what is measured.

* **warm**: ``autotrack.get_model("churn@production")`` in a process that resolved it before
  (the state it replayed is remembered; only events after it are looked for);
* **cold**: the same after ``_registry_store.forget()``, as in a fresh process (the newest
  snapshot and the events after it are read); the OS's file cache is warm in both;
* baseline, interleaved: what any reader must do at least, by hand: ``json.load`` of the alias's
  state (the snapshot) and of the version's register event.

``model_history`` (every event read) is timed once, to show what the snapshots save.
"""

from __future__ import annotations

import json
import os
import shutil

from _common import clock, interleave, median, record, section, table, tmpdir, verdict

GOAL_MS = 50.0
T0 = "2026-11-27T09:33:55+00:00"


def build_store(root: str, n_versions: int, n_events: int, model: str = "churn") -> str:
    """Events: a register every ``n_events // n_versions``, the rest alias moves among four aliases
    (production last pointing at version ``n_versions // 2``). Snapshots every 1,000 events but
    the newest. Returns the alias resolved."""
    from autotrack._registry_state import PARTITION, SNAPSHOT_EVERY, apply, event_file, new_state, state_doc

    every = n_events // n_versions
    sha = "ab" * 32
    state = new_state(model)
    folder = os.path.join(root, "models", model)
    made: set[str] = set()
    version = 0
    for seq in range(n_events):
        if seq % every == 0:
            version += 1
            event = {"format": 1, "model": model, "seq": seq, "action": "register", "version": version,
                     "run_id": f"{version:032x}", "artifact": "model.joblib", "sha256": sha, "size": 1000,
                     "metadata": {}, "time": T0, "by": "bench@host"}
        else:
            last = seq == n_events - 1
            alias = "production" if last else ("production", "staging", "canary", "shadow")[seq % 4]
            target = n_versions // 2 if last else max(1, version - seq % 3)
            event = {"format": 1, "model": model, "seq": seq, "action": "set_alias", "alias": alias,
                     "version": target, "previous": state["aliases"].get(alias), "time": T0, "by": "bench@host"}
        path = os.path.join(root, event_file(f"models/{model}", seq))
        part = os.path.dirname(path)
        if part not in made:
            os.makedirs(part, exist_ok=True)
            made.add(part)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(event))
        apply(state, event, path)
        upto = seq + 1
        if upto % SNAPSHOT_EVERY == 0 and upto + PARTITION <= n_events:  # the newest one is missing
            os.makedirs(os.path.join(folder, "snapshots"), exist_ok=True)
            with open(os.path.join(folder, "snapshots", f"{upto:09d}.json"), "w", encoding="utf-8") as fh:
                fh.write(json.dumps(state_doc(state)))
    assert state["versions"] and state["aliases"]["production"] == n_versions // 2 and not state["problems"]
    return "production"


def run(quick: bool) -> None:
    import autotrack
    from autotrack import _registry_store
    from autotrack._registry_state import event_file

    n_versions, n_events = (1_000, 10_000) if quick else (10_000, 100_000)
    section(f"7. registry: resolving name@alias with {n_versions:,} versions and {n_events:,} events")
    root = tmpdir("registry")
    t0 = clock()
    alias = build_store(root, n_versions, n_events)
    print(f"  store written by hand in {clock() - t0:.1f} s: {n_events:,} event files, "
          f"{n_events // 1000 - 1} snapshots (the newest missing: 1,000 events to replay cold)", flush=True)
    ref = f"churn@{alias}"
    expected = autotrack.get_model(ref, uri=root).version  # warms the process's state (and the OS cache)
    snapshots = sorted(os.listdir(os.path.join(root, "models", "churn", "snapshots")))

    def warm() -> float:
        t = clock()
        assert autotrack.get_model(ref, uri=root).version == expected
        return clock() - t

    def cold() -> float:
        _registry_store.forget()
        t = clock()
        assert autotrack.get_model(ref, uri=root).version == expected
        return clock() - t

    def by_hand() -> float:
        t = clock()
        with open(os.path.join(root, "models", "churn", "snapshots", snapshots[-1]), encoding="utf-8") as fh:
            state = json.load(fh)
        seq = state["versions"][str(state["aliases"][alias])]
        with open(os.path.join(root, event_file("models/churn", seq)), encoding="utf-8") as fh:
            json.load(fh)
        return clock() - t

    repeats = 20 if quick else 50
    times = interleave({"json.load snapshot + event by hand (baseline)": by_hand,
                        "get_model warm (state remembered)": warm,
                        "get_model cold (forget(): snapshot + 1,000 events)": cold}, repeats, warmup=3)
    base = median(times["json.load snapshot + event by hand (baseline)"])
    rows = [[k, median(v) * 1e3, sorted(v)[int(len(v) * 0.95) - 1] * 1e3, median(v) / base] for k, v in times.items()]
    table(rows, ["case", "median ms", "p95 ms", "x baseline"])
    t = clock()
    history = autotrack.model_history("churn", uri=root)
    full = clock() - t
    print(f"  model_history (all {len(history):,} events read and replayed, no snapshot): {full:.2f} s", flush=True)
    warm_ms = median(times["get_model warm (state remembered)"]) * 1e3
    cold_ms = median(times["get_model cold (forget(): snapshot + 1,000 events)"]) * 1e3
    record("registry", versions=n_versions, events=n_events, median_ms={k: median(v) * 1e3 for k, v in times.items()},
           history_s=full)
    verdict("registry", f"resolve name@alias, {n_versions:,} versions / {n_events:,} events, warm", warm_ms, GOAL_MS,
            " ms")
    verdict("registry", "the same, cold (a fresh process's first resolution)", cold_ms, GOAL_MS, " ms")
    shutil.rmtree(root, ignore_errors=True)
