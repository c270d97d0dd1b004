"""Tiny Lightning modules for the adapter tests (a few hundred parameters, made-up data)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset


def make_data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def loaders(batch_size: int = 16):
    return DataLoader(make_data(), batch_size=batch_size), DataLoader(make_data(32, seed=1), batch_size=16)


def module_class(ns):
    """The same tiny regression model for ``lightning.pytorch`` or ``pytorch_lightning``."""

    class Regressor(ns.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 8, arch: dict | None = None, fail_at_epoch: int = -1,
                     interrupt_at_epoch: int = -1):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def training_step(self, batch, batch_idx):
            if self.current_epoch == self.hparams.fail_at_epoch:
                raise ValueError("loss exploded")
            if self.current_epoch == self.hparams.interrupt_at_epoch:
                raise KeyboardInterrupt
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def test_step(self, batch, batch_idx):
            x, y = batch
            self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=0.01)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}

    return Regressor


def csv_received(csv_logger) -> dict[str, list[tuple[int, float]]]:
    """What a ``CSVLogger`` received in a fit: name -> [(Lightning's step, value)], in order."""
    import csv
    import os

    out: dict[str, list[tuple[int, float]]] = {}
    with open(os.path.join(csv_logger.log_dir, "metrics.csv")) as f:
        for row in csv.DictReader(f):
            for name, value in row.items():
                if name not in ("step", "epoch") and value != "":
                    out.setdefault(name, []).append((int(row["step"]), float(value)))
    return out
