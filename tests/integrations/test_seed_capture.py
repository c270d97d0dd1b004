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


def test_seeds_set_before_autotrack_are_read_from_keras_and_tensorflow(store):
    """No wrapper sees a call made before autotrack is imported; Keras and TF keep the seed."""
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    proc = python(f"""
        import time
        import numpy as np, keras, tensorflow as tf
        keras.utils.set_random_seed(77)
        tf.random.set_seed(6)              # after Keras' call, which set the TF seed to 77 too
        import autotrack
        from autotrack._capture.seeds import seeds_snapshot
        from autotrack.integrations.keras import AutotrackCallback
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0, callbacks=[AutotrackCallback(uri={store!r})])
        start = time.perf_counter()
        for _ in range(1000):
            seeds_snapshot()
        print((time.perf_counter() - start) / 1000)
    """, env={"KERAS_BACKEND": "tensorflow"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = autotrack.last_run(store).seeds
    assert seeds["keras.global_seed"] == 77 and seeds["tf.global_seed"] == 6
    assert "keras.utils.set_random_seed" not in seeds and "tf.random.set_seed" not in seeds
    assert float(proc.stdout.split()[-1]) < 100e-6, "seeds are read at every run start: microseconds"


def test_keras_torch_backend_seed_before_autotrack(store):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    proc = python(f"""
        import keras
        keras.utils.set_random_seed(21)
        import autotrack
        with autotrack.start_run(uri={store!r}):
            pass
    """, env={"KERAS_BACKEND": "torch"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = autotrack.last_run(store).seeds
    assert seeds["keras.global_seed"] == 21 and seeds["torch.initial_seed"] == 21


def test_unseeded_torch_records_the_seed_it_drew_and_it_replays(store):
    torch = pytest.importorskip("torch")
    proc = python(f"""
        import torch, autotrack
        with autotrack.start_run(uri={store!r}):
            print(torch.rand(3).tolist())
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seed = autotrack.last_run(store).seeds["torch.initial_seed"]
    torch.manual_seed(seed)
    assert torch.rand(3).tolist() == json.loads(proc.stdout.strip().splitlines()[-1])


def test_lightning_seed_before_autotrack_is_read_from_env(store):
    pytest.importorskip("lightning")
    proc = python(f"""
        import lightning as L
        L.seed_everything(8)
        import autotrack
        with autotrack.start_run(uri={store!r}):
            pass
    """, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = autotrack.last_run(store).seeds
    assert seeds["PL_GLOBAL_SEED"] == 8 and seeds["torch.initial_seed"] == 8
