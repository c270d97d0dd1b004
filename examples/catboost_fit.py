"""CatBoost fits recorded by autotrack: one under ``autotrack.autolog()``, one with live metrics.

Needs the catboost extra: pip install 'autotrack-ml[catboost]'

    python examples/catboost_fit.py         # records into ./autotrack-runs
    autotrack show last                     # the second CatBoostClassifier run

``autotrack.autolog()`` records each ``fit``: the params, the data, metrics per iteration under
CatBoost's names (``learn-Logloss``, ``validation-AUC``, read from the model when ``fit``
returns), best iteration and scores, the resolved configuration and seed, feature importance
and ``model.cbm``. An ``AutotrackCallback`` in ``callbacks`` makes the metrics arrive live, at
every iteration (CatBoost then pays for building its metric history at each one).
"""

from __future__ import annotations

import sys

try:
    import catboost
    import numpy as np
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "catboost").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[catboost]'")

import autotrack
from autotrack.integrations.catboost import AutotrackCallback


def make_data(n: int = 1000, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] * x[:, 1] + x[:, 2] + 0.5 * rng.normal(size=n) > 0).astype("int32")
    return x, y


def main() -> None:
    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:800], y[:800], x[800:], y[800:]
    autotrack.autolog(experiment="catboost-example")
    model = catboost.CatBoostClassifier(iterations=300, depth=4, learning_rate=0.1, eval_metric="AUC",
                                        random_seed=42, verbose=False, allow_writing_files=False)
    model.fit(x_train, y_train, eval_set=(x_val, y_val), early_stopping_rounds=20)
    print(f"CatBoostClassifier stopped early, best iteration {model.get_best_iteration()}")

    live = catboost.CatBoostClassifier(iterations=100, depth=4, eval_metric="AUC", random_seed=42, verbose=False,
                                       allow_writing_files=False)
    live.fit(x_train, y_train, eval_set=(x_val, y_val), callbacks=[AutotrackCallback()])
    print(f"with live metrics: validation accuracy {live.score(x_val, y_val):.3f}")


if __name__ == "__main__":
    main()
