"""LightGBM trainings recorded by autotrack: ``lgb.train`` with early stopping, then an estimator.

Needs the lightgbm extra: pip install 'autotrack-ml[lightgbm]'

    python examples/lightgbm_fit.py         # records into ./autotrack-runs
    autotrack show last                     # the LGBMClassifier run

``lgb.train`` is recorded by an explicit ``AutotrackCallback``, which on its own sees what
LightGBM shows a callback: the params, metrics per iteration under LightGBM's names
(``train-binary_logloss``, ``val-auc``), and at the end (LightGBM reloads the finished booster)
best iteration and scores, the resolved configuration and seeds, feature importance and
``model.txt``. ``LGBMClassifier.fit`` is recorded by ``autotrack.autolog()``, whose wrappers add
the estimator's params and the data fingerprints.
"""

from __future__ import annotations

import sys

try:
    import lightgbm as lgb
    import numpy as np
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "lightgbm").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[lightgbm]'")

import autotrack
from autotrack.integrations.lightgbm import AutotrackCallback


def make_data(n: int = 1000, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] * x[:, 1] + x[:, 2] + 0.5 * rng.normal(size=n) > 0).astype("int32")
    return x, y


def main() -> None:
    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:800], y[:800], x[800:], y[800:]
    train_set = lgb.Dataset(x_train, y_train)
    val_set = lgb.Dataset(x_val, y_val, reference=train_set)
    params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 15, "learning_rate": 0.1,
              "seed": 42, "verbose": -1}
    booster = lgb.train(params, train_set, num_boost_round=300, valid_sets=[train_set, val_set],
                        valid_names=["train", "val"],
                        callbacks=[lgb.early_stopping(15, verbose=False), AutotrackCallback(experiment="lightgbm-example")])
    print(f"lgb.train stopped early, best iteration {booster.best_iteration}")

    autotrack.autolog(experiment="lightgbm-example")
    clf = lgb.LGBMClassifier(n_estimators=100, num_leaves=15, learning_rate=0.1, random_state=7, verbose=-1)
    clf.fit(x_train, y_train, eval_set=[(x_val, y_val)], eval_metric="auc")
    print(f"LGBMClassifier validation accuracy {clf.score(x_val, y_val):.3f}")


if __name__ == "__main__":
    main()
