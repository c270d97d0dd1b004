"""Seeds set through random/numpy (and autotrack.seed_everything) land in the runs that follow."""

from __future__ import annotations

import random
import sys

import numpy as np

import autotrack

from .helpers import python


def test_seeds_before_and_during_a_run(store):
    autotrack.autolog()
    random.seed(11)
    np.random.seed(12)
    with autotrack.start_run(uri=store) as run:
        random.seed(13)
    seeds = autotrack.get_run(run.id, uri=store).seeds
    assert seeds["random.seed"] == 13 and seeds["numpy.random.seed"] == 12


def test_seed_everything_seeds_and_records(store):
    autotrack.seed_everything(7)
    a = (random.random(), np.random.rand())
    autotrack.seed_everything(7)
    assert (random.random(), np.random.rand()) == a
    with autotrack.start_run(uri=store):
        pass
    seeds = autotrack.last_run(store).seeds
    assert seeds["autotrack.seed_everything"] == 7
    assert seeds["random.seed"] == 7 and seeds["numpy.random.seed"] == 7


def test_env_seeds_read_and_nothing_changed_by_autotrack(store):
    proc = python(f"""
        import random, autotrack
        state = random.getstate()
        with autotrack.start_run(uri={store!r}):
            pass
        assert random.getstate() == state, "autotrack must never touch a seed"
        print(sorted(autotrack.last_run({store!r}).seeds.items()))
    """, env={"PYTHONHASHSEED": "123", "PL_GLOBAL_SEED": "5"})
    assert proc.returncode == 0, proc.stderr
    assert "('PL_GLOBAL_SEED', 5)" in proc.stdout and "('PYTHONHASHSEED', 123)" in proc.stdout


def test_random_seed_none_is_not_recorded(store):
    proc = python(f"""
        import random, autotrack
        autotrack.autolog()
        with autotrack.start_run(uri={store!r}):
            random.seed()
        print(autotrack.last_run({store!r}).seeds)
    """)
    assert "random.seed" not in proc.stdout


def _fake_module(monkeypatch, name, **attrs):
    import types

    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def test_seeds_frameworks_remember_are_read_at_run_start(store, monkeypatch):
    from types import SimpleNamespace

    from autotrack._capture import seeds as seeds_module

    monkeypatch.setattr(seeds_module, "_seeds", {})  # calls recorded by earlier tests of this process
    _fake_module(monkeypatch, "keras.src.utils.rng_utils", get_random_seed=lambda: 77)
    context = SimpleNamespace(_seed=np.int64(6))
    _fake_module(monkeypatch, "tensorflow.python.eager.context", context_safe=lambda: context)
    with autotrack.start_run(uri=store) as run:
        pass
    seeds = autotrack.get_run(run.id, uri=store).seeds
    assert seeds["keras.global_seed"] == 77 and seeds["tf.global_seed"] == 6
    # distinct from the names of captured calls: nothing was called through a wrapper here
    assert "keras.utils.set_random_seed" not in seeds and "tf.random.set_seed" not in seeds


def test_unset_framework_seeds_are_not_recorded(monkeypatch):
    from types import SimpleNamespace

    from autotrack._capture.seeds import seeds_snapshot

    _fake_module(monkeypatch, "keras.src.utils.rng_utils", get_random_seed=lambda: None)
    _fake_module(monkeypatch, "tensorflow.python.eager.context", context_safe=lambda: None)
    snap = seeds_snapshot()
    assert "keras.global_seed" not in snap and "tf.global_seed" not in snap
    monkeypatch.setitem(sys.modules, "tensorflow.python.eager.context",
                        SimpleNamespace(context_safe=lambda: SimpleNamespace(_seed=None)))
    assert "tf.global_seed" not in seeds_snapshot()


def test_older_keras_without_get_random_seed_reads_its_state(monkeypatch):
    from types import SimpleNamespace

    from autotrack._capture.seeds import seeds_snapshot

    _fake_module(monkeypatch, "keras.src.utils.rng_utils")
    _fake_module(monkeypatch, "keras.src.backend.common.global_state",
                 GLOBAL_STATE_TRACKER=SimpleNamespace(global_random_seed=5))
    assert seeds_snapshot()["keras.global_seed"] == 5


def test_reading_framework_seeds_imports_nothing(store):
    proc = python(f"""
        import sys, autotrack
        from autotrack._capture.seeds import seeds_snapshot
        before = set(sys.modules)
        snap = seeds_snapshot()
        with autotrack.start_run(uri={store!r}):
            pass
        heavy = ('torch', 'keras', 'tensorflow', 'numpy', 'lightning', 'transformers')
        print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy), sorted(snap))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] []"


def test_a_failing_seed_read_never_stops_the_run(store, monkeypatch):
    import warnings

    def broken():
        raise RuntimeError("context gone")

    _fake_module(monkeypatch, "tensorflow.python.eager.context", context_safe=broken)
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with autotrack.start_run(uri=store) as run:
            pass
    assert "tf.global_seed" not in autotrack.get_run(run.id, uri=store).seeds


def test_reading_seeds_is_cheap(monkeypatch):
    import time
    from types import SimpleNamespace

    from autotrack._capture.seeds import seeds_snapshot

    _fake_module(monkeypatch, "keras.src.utils.rng_utils", get_random_seed=lambda: 77)
    _fake_module(monkeypatch, "tensorflow.python.eager.context", context_safe=lambda: SimpleNamespace(_seed=6))
    seeds_snapshot()
    start = time.perf_counter()
    for _ in range(1000):
        seeds_snapshot()
    assert (time.perf_counter() - start) / 1000 < 100e-6
