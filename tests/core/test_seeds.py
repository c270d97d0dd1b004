"""Seeds set through random/numpy (and autotrack.seed_everything) land in the runs that follow."""

from __future__ import annotations

import random

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
