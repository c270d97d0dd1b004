"""A custom training loop recorded with autotrack: logistic regression in plain numpy.

Needs numpy only (no extra): pip install autotrack-ml numpy

    python examples/custom_loop.py          # records into ./autotrack-runs
    autotrack show last                      # see what was recorded

No framework integration is involved: ``start_run`` records params, per-epoch metrics, the
seed, the data fingerprint, the environment and the final weights as an artifact.
"""

from __future__ import annotations

import os
import sys
import tempfile

try:
    import numpy as np
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "numpy").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install numpy")

import autotrack


def make_data(n: int = 512, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.normal(size=d)
    y = (x @ w + 0.3 * rng.normal(size=n) > 0).astype(np.float32)
    return x, y


def main(epochs: int = 20, lr: float = 0.5, batch_size: int = 64) -> str:
    autotrack.seed_everything(42)
    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:400], y[:400], x[400:], y[400:]
    params = {"model": "logistic_regression", "optimizer": {"name": "sgd", "lr": lr},
              "epochs": epochs, "batch_size": batch_size}
    with autotrack.start_run(name="numpy-logreg", experiment="quickstart", params=params) as run:
        run.log_data("train", (x_train, y_train))
        run.log_data("val", (x_val, y_val))
        w = np.zeros(x.shape[1], dtype=np.float32)
        step = 0
        for epoch in range(epochs):
            order = np.random.permutation(len(x_train))
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                p = 1 / (1 + np.exp(-x_train[idx] @ w))
                w -= lr * x_train[idx].T @ (p - y_train[idx]) / len(idx)
                step += 1
            p_train = 1 / (1 + np.exp(-x_train @ w))
            p_val = 1 / (1 + np.exp(-x_val @ w))
            eps = 1e-7
            run.log_metrics({
                "train_loss": float(-np.mean(y_train * np.log(p_train + eps) + (1 - y_train) * np.log(1 - p_train + eps))),
                "val_loss": float(-np.mean(y_val * np.log(p_val + eps) + (1 - y_val) * np.log(1 - p_val + eps))),
                "val_acc": float(np.mean((p_val > 0.5) == y_val)),
            }, step=step, epoch=epoch)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "weights.npy")
            np.save(path, w)
            run.log_artifact(path, kind="model", metadata={"epoch": epochs - 1})
    print(f"recorded run {run.id[:8]} into {run.uri}")
    return run.id


if __name__ == "__main__":
    main()
