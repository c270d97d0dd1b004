"""XGBoost trainings recorded by autotrack: ``xgb.train`` with early stopping, then an estimator.

Needs the xgboost extra: pip install 'autotrack-ml[xgboost]'

    python examples/xgboost_train.py        # records into ./autotrack-runs
    autotrack show last                     # the XGBClassifier run

``xgb.train`` is recorded by an explicit ``AutotrackCallback``, which on its own sees what
XGBoost's hooks show: the booster's full configuration, metrics per iteration under XGBoost's
names (``train-logloss``, ``val-auc``), best iteration and score, the seed, feature importance and
``model.ubj``. ``XGBClassifier.fit`` is recorded by ``autotrack.autolog()``, whose wrappers add
the call's arguments and estimator params and the data fingerprints.
"""

from __future__ import annotations

import sys

try:
    import numpy as np
    import xgboost as xgb
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "xgboost").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[xgboost]'")

import autotrack
from autotrack.integrations.xgboost import AutotrackCallback


def make_data(n: int = 1000, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] * x[:, 1] + x[:, 2] + 0.5 * rng.normal(size=n) > 0).astype("int32")
    return x, y


def main() -> None:
    x, y = make_data()
    x_train, y_train, x_val, y_val = x[:800], y[:800], x[800:], y[800:]
    dtrain, dval = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_val, label=y_val)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 3, "eta": 0.2, "seed": 42}
    booster = xgb.train(params, dtrain, num_boost_round=300, evals=[(dtrain, "train"), (dval, "val")],
                        early_stopping_rounds=15, verbose_eval=False,
                        callbacks=[AutotrackCallback(experiment="xgboost-example")])
    print(f"xgb.train stopped after {booster.num_boosted_rounds()} rounds, best {booster.best_iteration}")

    autotrack.autolog(experiment="xgboost-example")
    clf = xgb.XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.2, random_state=7, eval_metric="logloss")
    clf.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    print(f"XGBClassifier validation accuracy {clf.score(x_val, y_val):.3f}")


if __name__ == "__main__":
    main()
