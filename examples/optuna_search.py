"""An Optuna study recorded by autotrack: the study is a run, each trial a child run.

Needs the optuna extra: pip install 'autotrack-ml[optuna]'

    python examples/optuna_search.py        # records into ./autotrack-runs
    autotrack runs                          # the study's run and one run per trial
    autotrack show last                     # the last trial: its params, intermediate values, value

``autotrack.autolog()`` wraps ``study.optimize``: each trial's run is the active run while the
objective runs, so the line that logs the training loss lands in the trial's run (as would a
Lightning, Keras or XGBoost fit made inside the objective). Pruned trials end ``killed``.
"""

from __future__ import annotations

import sys

try:
    import numpy as np
    import optuna
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "optuna").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[optuna]'")

import autotrack


def objective(trial: optuna.Trial) -> float:
    """Fit y = a*x + b by gradient descent; the learning rate and step count are searched."""
    lr = trial.suggest_float("lr", 1e-3, 0.5, log=True)
    steps = trial.suggest_int("steps", 10, 60)
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = 3.0 * x + 0.5 + 0.1 * rng.normal(size=200)
    a = b = 0.0
    run = autotrack.active_run()  # the trial's run
    for step in range(steps):
        err = a * x + b - y
        a, b = a - lr * 2 * float(np.mean(err * x)), b - lr * 2 * float(np.mean(err))
        loss = float(np.mean(err ** 2))
        run.log_metrics({"train_loss": loss}, step=step)
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    autotrack.autolog(experiment="optuna-example")
    study = optuna.create_study(study_name="line-fit", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    study.optimize(objective, n_trials=12)
    print(f"best value {study.best_value:.4f} with {study.best_params}")
    parent = next(r for r in autotrack.runs(experiment="optuna-example") if r.parent_id is None)
    trials = [r for r in autotrack.runs(experiment="optuna-example") if r.parent_id == parent.id]
    print(f"recorded study run {parent.id[:8]} ({parent.status}) with {len(trials)} trial runs: "
          + ", ".join(sorted({r.status for r in trials})))


if __name__ == "__main__":
    main()
