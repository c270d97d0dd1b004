"""scikit-learn fits recorded by autotrack: a pipeline, then a grid search over it.

Needs the sklearn extra: pip install 'autotrack-ml[sklearn]' (scikit-learn and joblib)

    python examples/sklearn_fit.py          # records into ./autotrack-runs
    autotrack runs                          # the pipeline, the search and its candidates
    autotrack show last                     # the best candidate (its parent is the search)

The pipeline is one run (params of every step, the random_state seed, data fingerprints,
training accuracy/F1/log loss/ROC AUC, the model as joblib). The search is a parent run with the
best params and score and the whole ``cv_results_`` as a CSV, plus one child run for each of the
3 best candidates.
"""

from __future__ import annotations

import sys

try:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "scikit-learn").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[sklearn]'")

import autotrack
from autotrack.integrations import sklearn as at_sklearn


def make_data(n: int = 400, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 20, size=d)
    y = (x[:, 0] / 10 + x[:, 1] - 0.2 * x[:, 2] + rng.normal(size=n) > 0).astype(int)
    return x, y


def main() -> None:
    at_sklearn.autolog(experiment="sklearn-example", max_tuning_runs=3)
    x, y = make_data()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(random_state=0))
    pipe.fit(x, y)
    search = GridSearchCV(pipe, {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=4)
    search.fit(x, y)
    best = autotrack.last_run(experiment="sklearn-example")  # children are made best last
    parent = autotrack.get_run(best.parent_id)
    print(f"pipeline accuracy {pipe.score(x, y):.3f}; search best {search.best_params_}: "
          f"run {parent.id[:8]} ({parent.name}), best candidate {best.id[:8]} {best.params}")


if __name__ == "__main__":
    main()
