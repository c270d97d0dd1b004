"""A tiny Lightning fit recorded by ``autotrack.autolog()``.

Needs the lightning extra: pip install 'autotrack-ml[lightning]' (Lightning and PyTorch)

    python examples/lightning_fit.py && autotrack show last
"""

from __future__ import annotations

import sys
import tempfile

try:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "lightning").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[lightning]'")

import autotrack


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)}


def data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]))


def main() -> None:
    autotrack.autolog(experiment="lightning-example")
    L.seed_everything(42)
    with tempfile.TemporaryDirectory() as ckpt_dir:
        trainer = L.Trainer(max_epochs=15, logger=False, enable_progress_bar=False, callbacks=[
            ModelCheckpoint(dirpath=ckpt_dir, monitor="val_loss", save_top_k=2),
            EarlyStopping(monitor="val_loss", patience=3),
        ])
        model = Regressor()
        trainer.fit(model, DataLoader(data(256, 0), batch_size=32), DataLoader(data(64, 1), batch_size=64))
        trainer.test(model, DataLoader(data(64, 2), batch_size=64), ckpt_path="best")
    run = autotrack.last_run()
    print(f"recorded run {run.id[:8]}: {run.status}, best val_loss {min(p.value for p in run.metrics['val_loss']):.4f}")


if __name__ == "__main__":
    main()
