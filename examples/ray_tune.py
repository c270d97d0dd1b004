"""A Ray Tune experiment recorded by autotrack: a run, and a child run per trial from its worker.

Needs the ray extra: pip install 'autotrack-ml[ray]'

    python examples/ray_tune.py             # starts a local Ray cluster, records into ./autotrack-runs
    autotrack runs                          # the experiment's run and one run per trial
    autotrack show last                     # a trial: its config, reported metrics, checkpoint, worker

The explicit ``AutotrackLoggerCallback`` goes in ``tune.RunConfig(callbacks=[...])``; with
``autotrack.autolog()`` instead, it is added for you.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

try:
    import ray
    from ray import tune
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "ray").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[ray]'")

import autotrack
from autotrack.integrations.ray import AutotrackLoggerCallback


def train_fn(config: dict) -> None:
    """A toy training: the loss falls faster with a better learning rate; a checkpoint at the end."""
    loss = 1.0
    for epoch in range(5):
        loss *= 1 - min(config["lr"] * 5, 0.9)
        checkpoint = None
        with tempfile.TemporaryDirectory() as folder:
            if epoch == 4:
                with open(os.path.join(folder, "weights.json"), "w") as f:
                    json.dump({"epoch": epoch, "loss": loss}, f)
                checkpoint = tune.Checkpoint.from_directory(folder)
            tune.report({"loss": loss, "epoch": epoch}, checkpoint=checkpoint)


def main() -> None:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    tuner = tune.Tuner(train_fn, param_space={"lr": tune.grid_search([0.01, 0.05, 0.1])},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=tune.RunConfig(name="ray-example", verbose=0,
                                                 storage_path=os.path.abspath("ray_results"),
                                                 callbacks=[AutotrackLoggerCallback(experiment="ray-example")]))
    best = tuner.fit().get_best_result()
    print(f"best config {best.config} loss {best.metrics['loss']:.4f}")
    ray.shutdown()
    runs = autotrack.runs(experiment="ray-example")
    parent = next(r for r in runs if r.parent_id is None)
    trials = [r for r in runs if r.parent_id == parent.id]
    print(f"recorded experiment run {parent.id[:8]} ({parent.status}) with {len(trials)} trial runs, "
          f"{sum(len(r.artifacts) for r in trials)} checkpoint file(s)")


if __name__ == "__main__":
    main()
