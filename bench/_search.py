"""Workload 9: hyperparameter searches, wall time with a tracker / without.

A search makes one run per trial, so what it costs is autotrack's *per-run* fixed cost (start,
environment capture, last write) times the trials, not a per-step cost. Two searches, each a
fresh child process per measurement (``python _search.py WORKLOAD MODE QUICK DIR``), timing only
the search (plus the tracker's own setup) until every run is written; modes interleaved, ratios
of medians to the untracked ``none`` mode of the same run:

* ``optuna``: ``study.optimize`` of N small trials (a ridge regression fitted with numpy, ~10 ms),
  with ``autotrack.autolog()``; peers: Optuna's own ``MLflowCallback`` and
  ``WeightsAndBiasesCallback`` (package ``optuna-integration``) when it and the peer are installed;
* ``ray``: a Ray Tune experiment of a few trials (each reports a few times) on a local
  ``ray.init(num_cpus=2)`` started before the timing, with ``autotrack.autolog()`` (each trial's
  run is recorded in its Ray worker).
"""

from __future__ import annotations

import os
import sys

from _common import (BENCH, child_result, clean_env, emit, installed, median, peers, record, run_child, section,
                     skip, table, tmpdir, verdict)

GOAL_RATIO = 1.02
PEER_MODES = {"optuna": ["mlflow-callback", "wandb-callback"], "ray": []}
SIZES = {"optuna": (10, 50), "ray": ((2, 3), (4, 10))}  # quick, full: trials; (trials, reports)


def _clock() -> float:
    import time

    return time.perf_counter()


def optuna_job(mode: str, quick: bool, folder: str) -> tuple[float, int]:
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = SIZES["optuna"][0 if quick else 1]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20))
    y = x @ rng.normal(size=20) + rng.normal(size=2000)

    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 1e-4, 10.0, log=True)
        fit = x[:1500]
        w = np.linalg.solve(fit.T @ fit + alpha * np.eye(20), fit.T @ y[:1500])
        return float(np.mean((x[1500:] @ w - y[1500:]) ** 2))

    callbacks = []
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "mlflow-callback":
        from optuna_integration.mlflow import MLflowCallback

        callbacks.append(MLflowCallback(tracking_uri="file://" + os.path.join(folder, "mlruns"), metric_name="mse"))
    elif mode == "wandb-callback":
        from optuna_integration.wandb import WeightsAndBiasesCallback

        callbacks.append(WeightsAndBiasesCallback(metric_name="mse", wandb_kwargs={
            "mode": "offline", "dir": folder, "project": "bench"}))
    study = optuna.create_study(study_name="bench", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=trials, callbacks=callbacks)
    if mode == "wandb-callback":
        import wandb

        wandb.finish()
    return _clock() - t0, trials + 1


def _trainable(config: dict) -> None:
    """A Tune function trainable: a few reports of a cheap computation (runs in a Ray worker)."""
    import numpy as np
    from ray import tune

    rng = np.random.default_rng(0)
    w = np.zeros(20)
    x = rng.normal(size=(500, 20))
    y = x.sum(1)
    for _ in range(config["reports"]):
        w -= config["lr"] * x.T @ (x @ w - y) / len(y)
        tune.report({"loss": float(np.mean((x @ w - y) ** 2))})


def ray_job(mode: str, quick: bool, folder: str) -> tuple[float, int]:
    import ray
    from ray import tune

    trials, reports = SIZES["ray"][0 if quick else 1]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)  # not timed
    try:
        t0 = _clock()
        if mode == "autotrack":
            import autotrack

            autotrack.autolog(uri=os.path.join(folder, "runs"))
        lrs = [0.001 * (i + 1) for i in range(trials)]
        tune.Tuner(_trainable, param_space={"lr": tune.grid_search(lrs), "reports": reports},
                   run_config=tune.RunConfig(name="bench", storage_path=os.path.join(folder, "ray_results"),
                                             verbose=0)).fit()
        seconds = _clock() - t0
    finally:
        ray.shutdown()
    return seconds, trials + 1


def child(workload: str, mode: str, quick: bool, folder: str) -> float:
    os.chdir(folder)
    seconds, runs = (optuna_job if workload == "optuna" else ray_job)(mode, quick, folder)
    if mode == "autotrack":  # every run complete on disk: the timing covered it
        import autotrack

        found = autotrack.runs(uri=os.path.join(folder, "runs"))
        assert len(found) == runs and all(r.status == "finished" for r in found), \
            (runs, [(r.name, r.status) for r in found])
    return seconds


def _modes(workload: str) -> list[str]:
    have = set(peers())
    ok = [m for m in PEER_MODES[workload] if m.split("-")[0] in have and installed("optuna_integration")]
    missing = [m for m in PEER_MODES[workload] if m not in ok]
    if missing:
        print(f"  {workload}: peer modes {', '.join(missing)} not run: they need optuna-integration and the peer "
              f"installed (optuna-integration {'is' if installed('optuna_integration') else 'is not'}; peers "
              f"installed: {', '.join(sorted(have)) or 'none'})")
    return ["none", "autotrack"] + ok


def run(quick: bool, repeats: int | None = None) -> None:
    repeats = repeats or (2 if quick else 5)
    section(f"9. searches: wall time with a tracker / without ({repeats} interleaved repeats, "
            f"{'quick sizes' if quick else 'full sizes'})")
    for workload in ("optuna", "ray"):
        if not installed(workload):
            skip(f"search/{workload}", f"{workload} is not installed")
            continue
        modes = _modes(workload)
        times: dict[str, list[float]] = {m: [] for m in modes}
        failed: dict[str, str] = {}
        for i in range(repeats):
            k = i % len(modes)
            for m in modes[k:] + modes[:k]:
                if m in failed:
                    continue
                try:
                    proc = run_child([os.path.join(BENCH, "_search.py"), workload, m, "1" if quick else "0",
                                      tmpdir(f"search-{workload}")], env=clean_env())
                    times[m].append(child_result(proc)["seconds"])
                except Exception as exc:  # noqa: BLE001 - a broken peer does not take the others down
                    if m in ("none", "autotrack"):
                        raise
                    failed[m] = str(exc).strip().splitlines()[-1][:160]
        base = median(times["none"])
        size = SIZES[workload][0 if quick else 1]
        trials = size if isinstance(size, int) else size[0]
        print(f"  -- {workload} ({trials} trials)")
        table([[m, median(ts), median(ts) / base, (median(ts) - base) / (trials + 1) * 1000]
               for m, ts in times.items() if ts], ["mode", "median s", "x none", "ms over none per run"])
        for m, why in failed.items():
            print(f"  {m}: failed ({why})")
        ratio = median(times["autotrack"]) / base
        record(f"search/{workload}", repeats=repeats, trials=trials, failed=failed,
               median_s={m: median(ts) for m, ts in times.items() if ts},
               ratios={m: median(ts) / base for m, ts in times.items() if ts})
        verdict(f"search/{workload}", "wall time with autotrack / without", ratio, GOAL_RATIO, "x")
        peer_ratios = {m: median(ts) / base for m, ts in times.items() if ts and m not in ("none", "autotrack")}
        if peer_ratios:
            best = min(peer_ratios, key=peer_ratios.get)
            verdict(f"search/{workload}", "autotrack / lightest installed peer", ratio / peer_ratios[best], 1.0, "x",
                    detail=f"lightest peer: {best} {peer_ratios[best]:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, BENCH)
    workload, mode, quick_flag, where = sys.argv[1:5]
    if mode.split("-")[0] in ("mlflow", "wandb"):
        import _common  # noqa: F401 - appends the peers' folder to sys.path
    emit({"seconds": child(workload, mode, quick_flag == "1", where)})
