"""Keras's final model: read on the training thread, written as ``model.keras`` by the run's writer
(``integrations/_keras_save``, issue 20). Real tiny fits, read back through ``autotrack``."""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile

import numpy as np
import pytest

import autotrack
from autotrack._autolog import register_integration
from autotrack._safety import AutotrackWarning
from tests.core.helpers import python

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":  # pragma: no cover - another test module chose first
    pytest.skip("these tests run with the TensorFlow backend (torch runs in a subprocess)", allow_module_level=True)

from autotrack.integrations import _keras_save  # noqa: E402

register_integration("keras", ["keras"], "autotrack.integrations.keras")


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The process's temporary folder for this test: what autotrack and Keras leave there shows."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")


def model(cls=None):
    keras.utils.set_random_seed(3)
    layers = [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.BatchNormalization(),
              keras.layers.Dense(1)]
    m = (cls or keras.Sequential)(layers)
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    return m


def members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def recorded_model(store, tmp_path):
    (run,) = autotrack.runs(uri=store)
    art = run.artifact("model.keras")
    art.download(tmp_path / "recorded.keras")
    return run, art, tmp_path / "recorded.keras"


def fit_under_autolog(store, epochs, cls=None):
    autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    m = model(cls)
    m.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return m, x


def spy_writes(monkeypatch, gate=None):
    """Where ``snapshot`` and its ``write`` run; ``gate``: the write waits for it."""
    seen = {}
    real = _keras_save.snapshot

    def snapshot(m):
        seen["snapshot"] = threading.current_thread().name
        write = real(m)
        if write is None:
            return None

        def spied(path):
            seen["write"] = threading.current_thread().name
            if gate is not None:
                assert gate.wait(30)
            write(path)

        return spied

    monkeypatch.setattr(_keras_save, "snapshot", snapshot)
    return seen


def test_the_final_model_is_written_by_the_writer_and_is_what_model_save_writes(store, tmp_path, own_tmp,
                                                                                   monkeypatch):
    seen = spy_writes(monkeypatch)
    m, x = fit_under_autolog(store, 3)
    run, art, path = recorded_model(store, tmp_path)
    assert seen == {"snapshot": threading.current_thread().name, "write": seen["write"]}
    assert seen["write"].startswith("autotrack-writer")
    assert art.kind == "model" and art.metadata["format"] == "keras" and art.metadata["epoch"] == 2
    assert art.source is None, "no file of the user's: made by the writer"
    m.save(tmp_path / "by-keras.keras")
    ours, theirs = members(path), members(tmp_path / "by-keras.keras")
    assert list(ours) == list(theirs) == ["metadata.json", "config.json", "model.weights.h5"]
    assert ours["config.json"] == theirs["config.json"] and ours["model.weights.h5"] == theirs["model.weights.h5"]
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert int(back.optimizer.iterations.numpy()) == int(m.optimizer.iterations.numpy()) == 12
    for ours_var, theirs_var in zip(back.optimizer.variables, m.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(ours_var), np.asarray(theirs_var))
    assert os.listdir(own_tmp) == [], "Keras's asset folder and our staged file are gone"


def test_the_model_is_recorded_as_fit_returned_it_though_changed_before_the_write(store, tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOTRACK_STRICT", raising=False)  # strict: finish() waits for the writer
    gate = threading.Event()
    spy_writes(monkeypatch, gate)
    m, x = fit_under_autolog(store, 2)
    expected = m.predict(x, verbose=0)
    m.set_weights([np.zeros_like(w) for w in m.get_weights()])  # the next fit, a user's change: in place
    m.optimizer.iterations.assign(999)
    gate.set()
    _, _, path = recorded_model(store, tmp_path)
    back = keras.models.load_model(path)
    np.testing.assert_array_equal(back.predict(x, verbose=0), expected)
    assert int(back.optimizer.iterations.numpy()) == 8


def test_a_model_too_large_to_hold_twice_is_written_by_model_save(store, tmp_path, own_tmp, monkeypatch):
    monkeypatch.setattr(_keras_save, "MAX_SNAPSHOT_BYTES", 64)
    seen = spy_writes(monkeypatch)
    m, x = fit_under_autolog(store, 2)
    _, art, path = recorded_model(store, tmp_path)
    assert "write" not in seen and art.metadata["format"] == "keras"
    assert art.source is not None, "saved by model.save into a folder of ours, on the training thread"
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), m.predict(x, verbose=0))
    assert os.listdir(own_tmp) == [], "the snapshot's asset folder went with it"


class OwnSave(keras.Sequential):
    saved: list[str] = []

    def save(self, filepath, *args, **kwargs):
        OwnSave.saved.append(str(filepath))
        return super().save(filepath, *args, **kwargs)


def test_a_model_class_with_its_own_save_is_saved_by_it(store, tmp_path):
    OwnSave.saved.clear()
    m, x = fit_under_autolog(store, 1, OwnSave)
    _, art, path = recorded_model(store, tmp_path)
    assert len(OwnSave.saved) == 1 and OwnSave.saved[0].endswith("model.keras")
    np.testing.assert_array_equal(keras.models.load_model(path, custom_objects={"OwnSave": OwnSave})
                                  .predict(x, verbose=0), m.predict(x, verbose=0))


def test_a_write_that_fails_is_reported_and_the_run_still_ends(store, monkeypatch):
    monkeypatch.delenv("AUTOTRACK_STRICT", raising=False)

    def snapshot(m):
        def write(path):
            raise OSError(28, "No space left on device")
        return write

    monkeypatch.setattr(_keras_save, "snapshot", snapshot)
    autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    with pytest.warns(AutotrackWarning, match="writing an artifact"):
        model().fit(x, y, epochs=2, batch_size=16, verbose=0)
        (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and len(run.metrics["loss"]) == 2
    assert [a.name for a in run.artifacts] == [], "nothing recorded for a file that was never made"


@pytest.mark.slow
def test_a_program_that_ends_right_after_fit_still_has_its_model(store, tmp_path):
    proc = python(f"""
import numpy as np, keras, autotrack
autotrack.autolog(uri={store!r})
x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
m.compile(optimizer="adam", loss="mse")
m.fit(x, x.sum(1), epochs=1, verbose=0)
np.save({str(tmp_path / "pred.npy")!r}, m.predict(x, verbose=0))
""", env={"KERAS_BACKEND": "tensorflow"}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, path = recorded_model(store, tmp_path)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0),
                                  np.load(tmp_path / "pred.npy"))
