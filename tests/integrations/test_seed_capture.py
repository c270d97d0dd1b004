"""Framework seeding calls are recorded whichever comes first: the import or ``autolog()``.

One subprocess per import order seeds through every framework (framework imports are slow:
one interpreter for all of them keeps this test at a few seconds per order).
"""

from __future__ import annotations

import json

import pytest

import autotrack
from tests.core.helpers import python

CASES = {
    "torch": ("import torch", "torch.manual_seed(5)", {"torch.manual_seed": 5}),
    "tensorflow": ("import tensorflow as tf", "tf.random.set_seed(6)", {"tf.random.set_seed": 6}),
    "keras": ("import keras", "keras.utils.set_random_seed(7)",
              {"keras.utils.set_random_seed": 7, "random.seed": 7, "numpy.random.seed": 7}),
    "lightning": ("import lightning as L", "L.seed_everything(8)",
                  {"lightning.seed_everything": 8, "torch.manual_seed": 8, "PL_GLOBAL_SEED": 8}),
    "pytorch_lightning": ("import pytorch_lightning as pl", "pl.seed_everything(9)",
                          {"lightning.seed_everything": 9, "torch.manual_seed": 9}),
}


@pytest.mark.parametrize("order", ["import-first", "autolog-first"])
def test_framework_seeds_recorded(order, store):
    for framework in CASES:
        pytest.importorskip(framework)
    imports = [case[0] for case in CASES.values()]
    lines = ["import autotrack", "from autotrack._capture import seeds as S"]
    lines += [*imports, "autotrack.autolog()"] if order == "import-first" else ["autotrack.autolog()", *imports]
    lines.append("out = {}")
    for name, (_imp, call, _expected) in CASES.items():
        lines += ["S._seeds.clear()", call, f"with autotrack.start_run(uri={store!r}) as run: pass",
                  f"out[{name!r}] = run.id"]
    lines.append("import json; print(json.dumps(out))")
    proc = python("\n".join(lines), env={"KERAS_BACKEND": "tensorflow"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (_imp, _call, expected) in CASES.items():
        seeds = autotrack.get_run(ids[name], uri=store).seeds
        for key, value in expected.items():
            assert seeds.get(key) == value, (name, key, seeds)


def test_torch_initial_seed_recorded_when_torch_imported(store):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1234)
    with autotrack.start_run(uri=store):
        pass
    assert autotrack.last_run(store).seeds["torch.initial_seed"] == 1234


def test_seed_everything_seeds_torch(store):
    torch = pytest.importorskip("torch")
    autotrack.seed_everything(3)
    a = torch.rand(2)
    autotrack.seed_everything(3)
    assert torch.equal(a, torch.rand(2))
