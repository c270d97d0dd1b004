"""A plain PyTorch training loop recorded by ``autotrack.autolog()``, with one line of logging.

Needs the torch extra: pip install 'autotrack-ml[torch]'

    python examples/torch_loop.py           # records into ./autotrack-runs
    autotrack show last                     # the run of this loop

No callback and no ``start_run``: the run starts at the first ``optimizer.step()`` and ends with
the process. autotrack reads the optimizer (AdamW, its hyperparameters), the model (class,
parameter count, dtype), the OneCycleLR schedule (``lr`` as it changes), both DataLoaders (batch
size, shuffle, workers, a fingerprint of the data), the seed, the determinism flags, the step and
epoch counts, and the checkpoint ``torch.save`` writes. The loss is the one line the loop adds
(``log_metrics``); tensors are read on autotrack's thread, so it never waits for the device.
"""

from __future__ import annotations

import os
import sys
import tempfile

try:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "torch").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[torch]'")

import autotrack
from autotrack.integrations.torch import log_metrics


def make_data(n: int = 1024, d: int = 8, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, :1] * x[:, 1:2] + x[:, 2:3] + 0.3 * torch.randn(n, 1, generator=g) > 0).float()
    return TensorDataset(x[:896], y[:896]), TensorDataset(x[896:], y[896:])


def main(epochs: int = 5) -> None:
    autotrack.autolog(experiment="torch-example")
    torch.manual_seed(42)
    train_set, val_set = make_data()
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=128)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * len(train_loader))
    loss_fn = nn.BCEWithLogitsLoss()
    folder = tempfile.mkdtemp()
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            log_metrics({"loss": loss})  # the one line: at the current step and epoch
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x) for x, _ in val_loader])
            labels = torch.cat([y for _, y in val_loader])
        log_metrics({"val_loss": loss_fn(logits, labels), "val_acc": ((logits > 0).float() == labels).float().mean()})
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                   os.path.join(folder, "last.pt"))  # recorded as a checkpoint
    print(f"recorded run {autotrack.active_run().id[:8]}: val_acc {((logits > 0).float() == labels).float().mean():.3f}")


if __name__ == "__main__":
    main()
