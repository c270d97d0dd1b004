"""What a ``Run`` call accepts is decided at the call: anything the store could not encode is
refused there (a warning naming key and type, or a TypeError in strict mode), the rest of the call
is kept, and nothing a user passes can cost the run its other records (issue 12)."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

import autotrack
from autotrack._safety import AutotrackWarning


class Index:
    """Any object with ``__index__`` is an integer."""

    def __init__(self, n):
        self.n = n

    def __index__(self):
        return self.n




def _steps(rec, name):
    return [(p.step, p.epoch, p.value) for p in rec.metrics[name]]


def test_integer_steps_and_epochs_of_any_kind(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 0.5}, step=np.int64(3), epoch=np.int64(1))
        run.log_metrics({"loss": 0.4}, step=Index(4), epoch=np.int32(2))
        run.log_metrics({"loss": 0.3}, step=np.uint8(5), epoch=np.float64(2.5))  # transformers' fractional epochs
        run.log_metrics({"loss": 0.2}, step=6.0, epoch=Fraction(3))
        run.log_metric("acc", 1, step=np.int16(7))
        run.log_params({"p": 1})
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert _steps(rec, "loss") == [(3, 1, 0.5), (4, 2, 0.4), (5, 2.5, 0.3), (6, 3, 0.2)]
    assert all(type(p.step) is int for p in rec.metrics["loss"])
    assert [type(p.epoch) for p in rec.metrics["loss"]] == [int, int, float, float]
    assert rec.params == {"p": 1}
    assert _steps(rec, "acc") == [(7, None, 1)]


@pytest.mark.parametrize("step", [3.5, "3", None.__class__, float("nan"), True, [1], object()])
def test_bad_steps_are_refused_at_the_call_in_strict_mode(store, step):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(TypeError, match="step"):
            run.log_metrics({"loss": 0.5}, step=step)
        run.log_metrics({"loss": 0.25}, step=1)
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert _steps(rec, "loss") == [(1, None, 0.25)]


@pytest.mark.parametrize("epoch", [float("nan"), float("inf"), "1", object(), [0]])
def test_bad_epochs_are_refused_at_the_call_in_strict_mode(store, epoch):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(TypeError, match="epoch"):
            run.log_metrics({"loss": 0.5}, step=0, epoch=epoch)
    assert autotrack.get_run(run.id, uri=store).status == "finished"


@pytest.mark.parametrize("key", [("a", "b"), object(), 3, None, b"x"])
def test_keys_that_are_not_strings_are_refused_and_the_rest_kept(store, key):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(TypeError, match="key"):
            run.log_metrics({key: 1.0, "kept": 2.0}, step=0)
        run.log_params({"after": 1})
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished" and rec.params == {"after": 1}
    assert list(rec.metrics) == ["kept"] and _steps(rec, "kept") == [(0, None, 2.0)]


@pytest.mark.parametrize("value", [None, "abc", [1, 2], {"a": 1}, 1j, np.array([1.0, 2.0]), object()])
def test_values_that_are_not_numbers_are_refused_and_the_rest_kept(store, value):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(TypeError, match="val_loss"):
            run.log_metrics({"val_loss": value, "loss": 0.5}, step=0)
        run.log_metric("loss", 0.25, step=1)
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert "val_loss" not in rec.metrics
    assert _steps(rec, "loss") == [(0, None, 0.5), (1, None, 0.25)]


def test_numpy_string_keys_are_strings(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({np.str_("loss"): np.float32(0.5)}, step=np.int64(0))
        run.log_params({np.str_("lr"): np.float64(0.1), "nested": {np.str_("k"): np.str_("v")}})
        run.set_tags({np.str_("team"): np.str_("a")})
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert _steps(rec, "loss") == [(0, None, 0.5)]
    assert rec.params == {"lr": 0.1, "nested/k": "v"} and rec.tags == {"team": "a"}


def test_lenient_mode_warns_naming_key_and_type_and_never_raises(store, lenient):
    with autotrack.start_run(uri=store) as run:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log_metrics({"val_loss": None, "acc": "abc", "loss": 0.5}, step=np.int64(2))
            run.log_metrics({("a", "b"): 1.0}, step=3)
            run.log_metrics({"x": 1.0}, step="four")
        run.log_params({"lr": 0.1})
    texts = [str(w.message) for w in caught if issubclass(w.category, AutotrackWarning)]
    assert any("val_loss" in t and "NoneType" in t for t in texts), texts
    assert any("acc" in t and "str" in t for t in texts), texts
    assert any("('a', 'b')" in t and "tuple" in t for t in texts), texts
    assert any("step" in t and "str" in t for t in texts), texts
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished" and rec.params == {"lr": 0.1}
    assert _steps(rec, "loss") == [(2, None, 0.5)]
    assert set(rec.metrics) == {"loss"}
    assert autotrack.error_counts()


def test_unencodable_text_is_recorded_not_fatal(store):
    """Lone surrogates (from a file name decoded with surrogateescape, say) cannot be UTF-8."""
    bad = "caf\udce9"
    with autotrack.start_run(uri=store, name=bad) as run:
        run.log_params({bad: bad, "ok": 1})
        run.set_tags({"t": bad})
        run.log_metrics({bad: 1.0}, step=0)
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert rec.params["ok"] == 1 and rec.params[bad] == bad and rec.tags["t"] == bad
    assert _steps(rec, bad) == [(0, None, 1.0)]


def test_start_run_refuses_names_that_are_not_strings(store):
    with pytest.raises(TypeError, match="name"):
        autotrack.start_run(uri=store, name=5)
    with pytest.raises(TypeError, match="experiment"):
        autotrack.start_run(uri=store, experiment=("a",))
    with autotrack.start_run(uri=store, name=np.str_("n"), experiment=np.str_("e")) as run:
        pass
    rec = autotrack.get_run(run.id, uri=store)
    assert (rec.name, rec.experiment, rec.status) == ("n", "e", "finished")


def test_huge_and_odd_numbers_round_trip(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"big": 2**70, "neg": -(2**64), "f": np.float16(0.5), "nan": np.float32("nan")}, step=2**40)
        run.log_params({"big": 2**80, "bigs": [2**65, -(2**65)]})
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert rec.metrics["big"][0].value == 2**70 and rec.metrics["neg"][0].value == -(2**64)
    assert rec.metrics["big"][0].step == 2**40
    assert math.isnan(rec.metrics["nan"][0].value)
    assert rec.params == {"big": 2**80, "bigs": [2**65, -(2**65)]}
