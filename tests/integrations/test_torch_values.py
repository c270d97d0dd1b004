"""Tensors handed to a custom loop's ``Run`` become plain numbers and readable params."""

from __future__ import annotations

import math

import pytest

import autotrack

torch = pytest.importorskip("torch")


def test_tensor_metrics_and_params(store):
    with autotrack.start_run(uri=store) as run:
        loss = torch.tensor(0.25, requires_grad=True) * 2
        run.log_metrics({"loss": loss, "acc": torch.tensor([0.75]), "nan": torch.tensor(float("nan")),
                         "half": torch.tensor(1.5, dtype=torch.bfloat16)}, step=1)
        run.log_params({"weights": torch.arange(3), "big": torch.zeros(50, 50), "dtype": torch.float32,
                        "device": torch.device("cpu")})
    rec = autotrack.last_run(store)
    m = rec.final_metrics
    assert m["loss"] == 0.5 and m["acc"] == 0.75 and math.isnan(m["nan"]) and m["half"] == 1.5
    p = rec.params
    assert p["weights"] == [0, 1, 2]
    assert p["big"] == {"type": "torch.Tensor", "shape": [50, 50], "dtype": "torch.float32"}
    assert p["dtype"] == "torch.float32" and p["device"] == "device(type='cpu')"
