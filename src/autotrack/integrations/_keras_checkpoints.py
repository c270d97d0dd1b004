"""Keras checkpoints as written, and the final model, for the Keras adapter.

A file counts as a checkpoint when ``Model.save``/``save_weights`` writes it during a recorded
fit (the adapter's wrapper reports it), whoever called: ``ModelCheckpoint`` -- before or after
our callback in the list -- or the user's own callback. It is logged at once; its monitored
value and ``best`` mark are added when the epoch's logs are complete (``describe``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import keras

from autotrack.integrations._common import CheckpointTracker

__all__ = ["Checkpoints", "log_model"]


class Checkpoints:
    def __init__(self, run: Any, keep_all: bool, callbacks: list[Any]) -> None:
        self.run = run
        self.tracker = CheckpointTracker(run, keep_all=keep_all)
        self.savers = [cb for cb in callbacks if isinstance(cb, keras.callbacks.ModelCheckpoint)]
        self.backups = [os.path.abspath(cb.backup_dir) + os.sep for cb in callbacks
                        if isinstance(cb, keras.callbacks.BackupAndRestore) and getattr(cb, "backup_dir", None)]
        self.pending: list[tuple[str, Any]] = []  # (artifact name, its ModelCheckpoint or None)
        self.best: dict[int, tuple[Any, str | None]] = {}  # id(ModelCheckpoint) -> (best value, its file)

    def saved(self, path: str, weights_only: bool, epoch: int) -> None:
        path = os.path.abspath(os.fspath(path))
        if any(path.startswith(folder) for folder in self.backups):
            return  # BackupAndRestore's own state, not a checkpoint
        mcs = [cb for cb in self.savers if bool(cb.save_weights_only) == weights_only]
        if len(mcs) > 1:
            mcs = [cb for cb in mcs if os.path.dirname(os.path.abspath(cb.filepath)) == os.path.dirname(path)]
        name = self.tracker.saved(path, {"epoch": epoch, "weights_only": weights_only})
        if name:
            self.pending.append((name, mcs[0] if len(mcs) == 1 else None))

    def describe(self, logs: dict[str, Any], step: int | None) -> None:
        """The monitored value, and ``best`` per ModelCheckpoint, said on every save explicitly:
        a file saved again under one name (``best.keras``) is a new version of that record."""
        pending, self.pending = self.pending, []
        for name, mc in pending:
            if mc is None or mc.save_freq != "epoch":
                continue
            value = logs.get(mc.monitor)
            meta: dict[str, Any] = {"monitor": mc.monitor, "save_best_only": bool(mc.save_best_only), "step": step}
            if isinstance(value, (int, float)):
                best_value, best_name = self.best.get(id(mc), (None, None))
                op = getattr(mc, "monitor_op", None)
                improved = bool(mc.save_best_only or best_value is None or (op is not None and op(value, best_value)))
                if improved and best_name not in (None, name):
                    self.run.update_artifact(best_name, {"best": False})
                if improved or best_name == name:  # an overwritten best file holds the best no more
                    self.best[id(mc)] = (value, name) if improved else (best_value, None)
                meta.update(value=value, best=improved)
            self.run.update_artifact(name, meta)


def log_model(run: Any, model: Any, epoch: int, step: int | None) -> None:
    """The trained model as a ``.keras`` file (kind ``model``)."""
    with tempfile.TemporaryDirectory(prefix="autotrack-keras-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        run.log_artifact(path, kind="model", metadata={"epoch": epoch, "step": step, "format": "keras"})  # pinned
