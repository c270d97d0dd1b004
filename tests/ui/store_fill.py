"""Fill a store with real runs for the dashboard's tests (and for a look by hand).

``python tests/ui/store_fill.py DIR`` records, into the store at DIR: a manual run with params,
seeds, a dataset fingerprint and a checkpoint; a second one that differs in a few params; a
failed run with a traceback; a run whose name and a param value are HTML/script text; and a
scikit-learn fit through ``autolog()``. Every run goes through autotrack's public API.
"""

from __future__ import annotations

import math
import os
import random
import sys

import autotrack

XSS = "<script>alert(1)</script>"
XSS_NAME = '<img src=x onerror="alert(2)">run'


def _curve(run: "autotrack.Run", lr: float, epochs: int = 12, steps: int = 25) -> None:
    rng = random.Random(int(lr * 1e6))
    for epoch in range(epochs):
        for s in range(steps):
            step = epoch * steps + s
            loss = 2.0 * math.exp(-lr * 40 * step / (epochs * steps)) + rng.random() * 0.05
            run.log_metrics({"train_loss": loss}, step=step, epoch=epoch)
        run.log_metrics({"val_loss": loss * 1.1, "val_acc": 1 - loss / 2.5}, step=step, epoch=epoch)


def fill(uri: str, checkpoint_dir: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    os.makedirs(checkpoint_dir, exist_ok=True)
    for name, lr, layers in (("baseline", 0.01, [64, 64]), ("bigger-lr", 0.05, [128, 64])):
        with autotrack.start_run(name=name, uri=uri, experiment="mnist", params={"lr": lr, "layers": layers,
                                                                           "optimizer": "adam", "batch_size": 32},
                                 tags={"team": "vision"}) as run:
            autotrack.seed_everything(7 if name == "baseline" else 8)
            run.log_data("train", [[1.0, 2.0], [3.0, 4.0]] if name == "baseline" else [[1.0, 2.0], [3.0, 5.0]])
            _curve(run, lr)
            ckpt = os.path.join(checkpoint_dir, f"{name}.ckpt")
            with open(ckpt, "wb") as fh:
                fh.write(os.urandom(50_000))
            run.log_artifact(ckpt, kind="checkpoint", metadata={"epoch": 11})
            run.update_artifact(os.path.basename(ckpt), {"best": True})
            ids[name] = run.id
    with autotrack.start_run(name=XSS_NAME, uri=uri, experiment="mnist", params={"note": XSS, "lr": 0.02}) as run:
        run.set_tags({"comment": XSS})
        run.log_metrics({"val_loss": 0.5}, step=0)
        ids["xss"] = run.id
    try:
        with autotrack.start_run(name="diverged", uri=uri, experiment="mnist", params={"lr": 10.0}) as run:
            ids["failed"] = run.id
            run.log_metrics({"val_loss": float("nan")}, step=0)
            raise FloatingPointError("loss is NaN at step 0")
    except FloatingPointError:
        pass
    from sklearn.linear_model import LogisticRegression

    autotrack.autolog(uri=uri, experiment="tabular", frameworks=["sklearn"])
    try:
        rng = random.Random(0)
        x = [[rng.random(), rng.random()] for _ in range(60)]
        y = [int(a + b > 1) for a, b in x]
        LogisticRegression(C=0.5).fit(x, y)
        ids["sklearn"] = autotrack.last_run(uri).id
    finally:
        autotrack.autolog(disable=True)
    return ids


if __name__ == "__main__":
    found = fill(sys.argv[1], os.path.join(sys.argv[1], "..", "checkpoints"))
    print(found)
