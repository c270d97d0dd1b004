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


def _record_item_threads(monkeypatch) -> list[str]:
    import threading

    reads: list[str] = []
    original = torch.Tensor.item

    def item(self):
        reads.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "item", item)
    return reads


def test_accelerator_tensors_are_read_off_the_training_thread(store, monkeypatch):
    """A one-element tensor on an accelerator is only detached at the call; ``.item()`` (a GPU
    sync) happens on the writer thread. Anything but one element is refused at the call, as any
    non-number is. (The tensors here say they are on ``cuda``: the same path without a GPU.)"""
    reads = _record_item_threads(monkeypatch)
    monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda", 0)))
    with autotrack.start_run(uri=store) as run:
        loss = (torch.ones(3, requires_grad=True) * 2).sum()
        run.log_metrics({"loss": loss, "acc": torch.tensor([0.5])}, step=torch.tensor(3))
        assert all(not name.startswith("autotrack-writer") for name in reads)  # the step only
        with pytest.raises(TypeError, match="pair"):
            run.log_metrics({"pair": torch.zeros(2), "kept": torch.tensor(1.0)}, step=4)
    assert any(name.startswith("autotrack-writer") for name in reads)
    rec = autotrack.last_run(store)
    assert [(p.step, p.value) for p in rec.metrics["loss"]] == [(3, 6.0)]
    assert rec.final_metrics == {"loss": 6.0, "acc": 0.5, "kept": 1.0}


def test_cpu_tensors_are_read_at_the_call(store, monkeypatch):
    """On the CPU there is nothing to wait for: ``.item()`` at the call (~1 µs) costs the training
    thread less than the writer thread holding the GIL to do it later (issue 20)."""
    import threading

    reads = _record_item_threads(monkeypatch)
    with autotrack.start_run(uri=store) as run:
        loss = (torch.ones(3, requires_grad=True) * 2).sum()
        run.log_metrics({"loss": loss, "n": torch.tensor(7), "flag": torch.tensor(True)}, step=3)
        assert reads.count(threading.current_thread().name) == 3
    assert not any(name.startswith("autotrack-writer") for name in reads)
    rec = autotrack.last_run(store)
    assert rec.final_metrics == {"loss": 6.0, "n": 7, "flag": 1}
