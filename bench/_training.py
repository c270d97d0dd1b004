"""Workload 3: training overhead of recording, wall time with a tracker / without.

Every measurement is a fresh child process (``python _training.py WORKLOAD MODE QUICK DIR``) that
imports the framework, builds the data and the model, then times only the training call,
together with whatever the tracker needs around it (``autotrack.autolog()``, ``mlflow.autolog()``,
a logger or callback), until the run is fully written. Modes are interleaved (A B A B ...) and the
figure is the ratio of medians to the untracked ``none`` mode of the same run.
"""

from __future__ import annotations

import os
import sys

from _common import (BENCH, child_result, clean_env, emit, installed, median, peers, record, run_child,
                     section, table, tmpdir, verdict)

GOAL_RATIO = 1.02

# workload -> peer modes that apply (a peer without an integration for it has no column)
PEER_MODES = {
    "lightning": ["mlflow-autolog", "mlflow-logger", "wandb", "dvclive"],
    "keras": ["mlflow-autolog", "wandb", "dvclive"],
    "xgboost": ["mlflow-autolog", "wandb", "dvclive"],
    "lightgbm": ["mlflow-autolog", "wandb", "dvclive"],
    "catboost": ["wandb"],  # MLflow has no CatBoost autolog, DVCLive no CatBoost callback
    # a plain loop: no peer records one by itself; each peer's one line per step (the loss) instead
    "torch-loop": ["mlflow-manual", "wandb", "dvclive"],
    "sklearn-logreg": ["mlflow-autolog"],
    "sklearn-grid": ["mlflow-autolog"],
}
FRAMEWORK_MODULE = {"lightning": "lightning", "keras": "keras", "xgboost": "xgboost", "sklearn-logreg": "sklearn",
                    "sklearn-grid": "sklearn", "lightgbm": "lightgbm", "catboost": "catboost", "torch-loop": "torch"}


def _peer_of(mode: str) -> str:
    return mode.split("-")[0]


def _mlflow(folder: str):  # noqa: ANN202 - the module, with its file store in the run's folder
    import mlflow

    mlflow.set_tracking_uri("file://" + os.path.join(folder, "mlruns"))
    return mlflow


def _end(mode: str) -> None:
    """W&B writes its offline run on finish: part of what is timed, like autotrack's last write."""
    if mode == "wandb":
        import wandb

        wandb.finish()


# -- the workloads, run in the child ---------------------------------------------------------
def lightning_job(mode: str, quick: bool, folder: str) -> float:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    epochs, steps = (4, 50) if quick else (20, 100)
    torch.manual_seed(0)
    x = torch.randn(steps * 16, 32)
    y = x.sum(1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(32, 1)

        def training_step(self, batch, _idx):  # noqa: ANN001
            xb, yb = batch
            loss = torch.nn.functional.mse_loss(self.layer(xb), yb)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):  # noqa: ANN202
            return torch.optim.SGD(self.parameters(), lr=0.01)

    model = Tiny()
    t0 = _clock()
    logger: object = False
    # The loss is logged per step only (self.log's default in training_step) and the Trainer's
    # loggers get every step (log_every_n_steps=1): autotrack, with its default settings, records
    # the same points (it follows the Trainer's log_every_n_steps).
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "autotrack-env":  # the URI from AUTOTRACK_URI (workload 6)
        import autotrack

        autotrack.autolog()
    elif mode == "mlflow-autolog":
        mlflow = _mlflow(folder)
        mlflow.pytorch.autolog()
    elif mode == "mlflow-logger":
        from lightning.pytorch.loggers import MLFlowLogger

        logger = MLFlowLogger(tracking_uri="file://" + os.path.join(folder, "mlruns"))
    elif mode == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        logger = WandbLogger(offline=True, save_dir=folder, project="bench")
    elif mode == "dvclive":
        from dvclive.lightning import DVCLiveLogger

        logger = DVCLiveLogger(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False)
    trainer = L.Trainer(max_epochs=epochs, logger=logger, log_every_n_steps=1, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu", devices=1)
    trainer.fit(model, loader)
    _end(mode)
    return _clock() - t0


def keras_job(mode: str, quick: bool, folder: str) -> float:
    import numpy as np
    import keras

    epochs = 3 if quick else 10
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20)).astype("float32")
    y = (x.sum(1) > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    callbacks = []
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "mlflow-autolog":
        mlflow = _mlflow(folder)
        mlflow.keras.autolog() if hasattr(mlflow, "keras") else mlflow.tensorflow.autolog()
    elif mode == "wandb":
        import wandb
        from wandb.integration.keras import WandbMetricsLogger

        wandb.init(mode="offline", dir=folder, project="bench")
        callbacks.append(WandbMetricsLogger())
    elif mode == "dvclive":
        from dvclive import Live
        from dvclive.keras import DVCLiveCallback

        callbacks.append(DVCLiveCallback(live=Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False)))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    _end(mode)
    return _clock() - t0


def xgboost_job(mode: str, quick: bool, folder: str) -> float:
    import numpy as np
    import xgboost as xgb

    rounds = 50 if quick else 200
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 20))
    y = (x[:, 0] + rng.normal(size=5000) > 0).astype(int)
    dtrain = xgb.DMatrix(x, label=y)
    # one thread: with OpenMP threads = cores, any other runnable thread (a tracker's, another
    # process's) stalls every round's barrier, and on a shared 2-core box the untracked run was
    # sometimes the slowest (docs/benchmarks.md); one thread measures the tracker, not the scheduler
    params = {"objective": "binary:logistic", "max_depth": 4, "nthread": 1}
    callbacks = []
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "mlflow-autolog":
        mlflow = _mlflow(folder)
        mlflow.xgboost.autolog()
    elif mode == "wandb":
        import wandb
        from wandb.integration.xgboost import WandbCallback

        wandb.init(mode="offline", dir=folder, project="bench")
        callbacks.append(WandbCallback())
    elif mode == "dvclive":
        from dvclive import Live
        from dvclive.xgb import DVCLiveCallback

        callbacks.append(DVCLiveCallback(live=Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False)))
    xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dtrain, "train")], verbose_eval=False,
              callbacks=callbacks)
    _end(mode)
    return _clock() - t0


def lightgbm_job(mode: str, quick: bool, folder: str) -> float:
    import lightgbm as lgb
    import numpy as np

    rounds = 50 if quick else 200
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 20))
    y = (x[:, 0] + rng.normal(size=5000) > 0).astype(int)
    dtrain = lgb.Dataset(x, label=y)
    params = {"objective": "binary", "num_leaves": 15, "num_threads": 1, "verbose": -1}  # one thread: see xgboost_job
    callbacks = []
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "mlflow-autolog":
        mlflow = _mlflow(folder)
        mlflow.lightgbm.autolog()
    elif mode == "wandb":
        import wandb
        from wandb.integration.lightgbm import log_summary, wandb_callback

        wandb.init(mode="offline", dir=folder, project="bench")
        callbacks.append(wandb_callback())
    elif mode == "dvclive":
        from dvclive import Live
        from dvclive.lgbm import DVCLiveCallback

        callbacks.append(DVCLiveCallback(live=Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False)))
    booster = lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dtrain], callbacks=callbacks)
    if mode == "wandb":
        log_summary(booster, save_model_checkpoint=True)  # W&B's model and importance: a separate call
    if mode == "mlflow-autolog":
        mlflow.end_run()
    _end(mode)
    return _clock() - t0


def catboost_job(mode: str, quick: bool, folder: str) -> float:
    import catboost
    import numpy as np

    rounds = 100 if quick else 500
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 20))
    y = (x[:, 0] + rng.normal(size=5000) > 0).astype(int)
    model = catboost.CatBoostClassifier(iterations=rounds, depth=4, thread_count=1, verbose=False,
                                        allow_writing_files=False)
    callbacks = []
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "wandb":
        import wandb
        from wandb.integration.catboost import WandbCallback

        wandb.init(mode="offline", dir=folder, project="bench")
        callbacks.append(WandbCallback())
    model.fit(x[:4000], y[:4000], eval_set=(x[4000:], y[4000:]), callbacks=callbacks or None)
    _end(mode)
    return _clock() - t0


def torch_loop_job(mode: str, quick: bool, folder: str) -> float:
    """The Lightning workload's model and data in a plain loop, the loss recorded at every step:
    autotrack's ``log_metrics`` (with everything autolog reads by itself), the peers' own call."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    epochs, steps = (4, 50) if quick else (20, 100)
    torch.manual_seed(0)
    x = torch.randn(steps * 16, 32)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    model = torch.nn.Linear(32, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    t0 = _clock()
    if mode == "autotrack":
        import autotrack
        from autotrack.integrations.torch import log_metrics

        autotrack.autolog(uri=os.path.join(folder, "runs"))
        log = lambda loss, step: log_metrics({"loss": loss})  # noqa: E731 - a tensor: read off the loop
    elif mode == "mlflow-manual":
        mlflow = _mlflow(folder)
        mlflow.start_run()
        log = lambda loss, step: mlflow.log_metric("loss", loss.item(), step=step)  # noqa: E731
    elif mode == "wandb":
        import wandb

        wandb.init(mode="offline", dir=folder, project="bench")
        log = lambda loss, step: wandb.log({"loss": loss.item()}, step=step)  # noqa: E731
    elif mode == "dvclive":
        from dvclive import Live

        live = Live(dir=os.path.join(folder, "dvclive"), save_dvc_exp=False)
        log = lambda loss, step: (live.log_metric("loss", loss.item()), live.next_step())  # noqa: E731
    else:
        log = lambda loss, step: None  # noqa: E731
    step = 0
    for _ in range(epochs):
        for xb, yb in loader:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            log(loss, step)
    if mode == "autotrack":
        autotrack.active_run().finish()  # what the end of the process does
    elif mode == "mlflow-manual":
        mlflow.end_run()
    elif mode == "dvclive":
        live.end()
    _end(mode)
    return _clock() - t0


def sklearn_job(kind: str, mode: str, quick: bool, folder: str) -> float:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    rows = 2000 if quick else 5000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 20))
    y = (x[:, 0] + rng.normal(size=rows) > 0).astype(int)
    t0 = _clock()
    if mode == "autotrack":
        import autotrack

        autotrack.autolog(uri=os.path.join(folder, "runs"))
    elif mode == "mlflow-autolog":
        mlflow = _mlflow(folder)
        mlflow.sklearn.autolog()
    if kind == "logreg":
        LogisticRegression(max_iter=500).fit(x, y)
    else:
        GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.001, 0.01, 0.1, 1, 10, 100]}, cv=3).fit(x, y)
    if mode == "mlflow-autolog":
        import mlflow

        mlflow.end_run()
    return _clock() - t0


def _clock() -> float:
    import time

    return time.perf_counter()


def child(workload: str, mode: str, quick: bool, folder: str) -> float:
    os.chdir(folder)
    if workload == "lightning":
        seconds = lightning_job(mode, quick, folder)
    elif workload == "keras":
        seconds = keras_job(mode, quick, folder)
    elif workload == "xgboost":
        seconds = xgboost_job(mode, quick, folder)
    elif workload == "lightgbm":
        seconds = lightgbm_job(mode, quick, folder)
    elif workload == "catboost":
        seconds = catboost_job(mode, quick, folder)
    elif workload == "torch-loop":
        seconds = torch_loop_job(mode, quick, folder)
    else:
        seconds = sklearn_job(workload.split("-")[1], mode, quick, folder)
    if mode == "autotrack":  # the run must be complete on disk: the timing covered it
        import autotrack

        found = autotrack.runs(uri=os.path.join(folder, "runs"))
        assert found and all(r.status == "finished" for r in found), [(r.id, r.status) for r in found]
        if workload in ("lightning", "torch-loop"):  # every step's loss, as the Trainer's loggers would get it
            assert len(found[0].metrics["loss"]) == (200 if quick else 2000), len(found[0].metrics["loss"])
    return seconds


# -- the parent -------------------------------------------------------------------------------
def run(quick: bool, only: list[str] | None = None, repeats: int | None = None) -> None:
    repeats = repeats or (2 if quick else 5)
    workloads = [w for w in PEER_MODES if only is None or w in only]
    section(f"3. training overhead: wall time with a tracker / without ({repeats} interleaved repeats, "
            f"{'quick sizes' if quick else 'full sizes'})")
    have = set(peers())
    for workload in workloads:
        if not installed(FRAMEWORK_MODULE[workload]):
            from _common import skip

            skip(f"training/{workload}", f"{FRAMEWORK_MODULE[workload]} is not installed")
            continue
        modes = ["none", "autotrack"] + [m for m in PEER_MODES[workload] if _peer_of(m) in have]

        def case(mode: str):
            def once() -> float:
                proc = run_child([os.path.join(BENCH, "_training.py"), workload, mode, "1" if quick else "0",
                                  tmpdir(f"train-{workload}")], env=clean_env())
                return child_result(proc)["seconds"]
            return once

        cases = {m: case(m) for m in modes}
        failed: dict[str, str] = {}
        times: dict[str, list[float]] = {m: [] for m in modes}
        # interleave by hand so that one broken peer does not take the others down
        for i in range(repeats):
            k = i % len(modes)
            for m in modes[k:] + modes[:k]:
                if m in failed:
                    continue
                try:
                    times[m].append(cases[m]())
                except Exception as exc:  # noqa: BLE001
                    if m in ("none", "autotrack"):
                        raise
                    failed[m] = str(exc).strip().splitlines()[-1][:160]
        base = median(times["none"])
        print(f"  -- {workload}")
        rows = [[m, median(ts), median(ts) / base] for m, ts in times.items() if ts]
        table(rows, ["mode", "median s", "x none"])
        for m, why in failed.items():
            print(f"  {m}: failed ({why})")
        ratio = median(times["autotrack"]) / base
        peer_ratios = {m: median(ts) / base for m, ts in times.items() if ts and m not in ("none", "autotrack")}
        record(f"training/{workload}", repeats=repeats, median_s={m: median(ts) for m, ts in times.items() if ts},
               ratios={m: median(ts) / base for m, ts in times.items() if ts}, failed=failed)
        verdict(f"training/{workload}", "wall time with autotrack / without", ratio, GOAL_RATIO, "x")
        if peer_ratios:
            best_peer = min(peer_ratios, key=peer_ratios.get)
            verdict(f"training/{workload}", "autotrack / lightest installed peer", ratio / peer_ratios[best_peer],
                    1.0, "x", detail=f"lightest peer: {best_peer} {peer_ratios[best_peer]:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, BENCH)
    workload, mode, quick_flag, where = sys.argv[1:5]
    if mode.split("-")[0] in ("mlflow", "wandb", "dvclive"):
        import _common  # noqa: F401 - appends the peers' folder to sys.path
    emit({"seconds": child(workload, mode, quick_flag == "1", where)})
