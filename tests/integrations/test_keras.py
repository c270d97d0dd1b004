"""Keras adapter: real tiny fits (TensorFlow backend in-process, torch in a subprocess, tf.keras),
asserted through what ``autotrack`` reads back."""

from __future__ import annotations

import json
import os
import threading
import warnings

import numpy as np
import pytest
import wrapt

import autotrack
from autotrack._autolog import register_integration
from autotrack.backends import register_backend
from autotrack.backends.file import FileStore
from tests.core.helpers import python

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":  # pragma: no cover - another test module chose first
    pytest.skip("these tests run with the TensorFlow backend (torch runs in a subprocess)", allow_module_level=True)
tf = pytest.importorskip("tensorflow")

from keras.src.utils.python_utils import is_default  # noqa: E402  - Keras's own async-dispatch test

from autotrack.integrations import _keras_wrappers as wrappers  # noqa: E402
from autotrack.integrations.keras import AutotrackCallback  # noqa: E402

register_integration("keras", ["keras"], "autotrack.integrations.keras")  # as _autolog._INTEGRATIONS will


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert not wrappers.recording, "a fit left its callback registered"


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.1).astype("float32")


def model(lr=0.05, metrics=("mae",)):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=list(metrics))
    return m


def test_fit_records_params_metrics_seeds_data_and_model(store, tmp_path):
    keras.utils.set_random_seed(11)
    tf.random.set_seed(12)
    x, y = data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.5), loss=keras.losses.Huber(delta=2.0),
              metrics=["mae", keras.metrics.RootMeanSquaredError()])
    m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, class_weight=None, verbose=0,
          callbacks=[AutotrackCallback(uri=store, experiment="tiny")])
    (run,) = autotrack.runs(uri=store)
    assert run.framework == "keras" and run.status == "finished" and run.experiment == "tiny"
    p = run.params
    assert (p["epochs"], p["batch_size"], p["validation_split"], p["initial_epoch"]) == (3, 16, 0.25, 0)
    assert p["steps_per_epoch"] is None and p["shuffle"] is True and p["class_weight"] is False
    assert p["optimizer/name"] == "SGD" and p["optimizer/momentum"] == 0.5
    assert p["optimizer/learning_rate/name"] == "ExponentialDecay"
    assert p["optimizer/learning_rate/initial_learning_rate"] == 0.1 and p["optimizer/learning_rate/decay_steps"] == 4
    assert p["loss"] == "huber_loss" and p["loss_config/reduction"] == "sum_over_batch_size"
    assert p["metrics"] == ["mae", "root_mean_squared_error"]
    assert p["model/params_total"] == 3 * 4 + 4 + 4 + 1 == p["model/params_trainable"] and p["model/layers"] == 2
    assert p["backend"] == "tensorflow" and p["model/class"] == "Sequential" and p["stop_training"] is False
    mt = run.metrics
    for name in ("loss", "val_loss", "mae", "val_mae", "root_mean_squared_error", "val_root_mean_squared_error"):
        assert [pt.epoch for pt in mt[name]] == [0, 1, 2], name
        assert [pt.step for pt in mt[name]] == [3, 6, 9], name  # 48 training rows / 16 = 3 steps an epoch
    assert mt["loss"][-1].value == pytest.approx(m.history.history["loss"][-1])
    assert [pt.value for pt in mt["learning_rate"]] == pytest.approx([0.1 * 0.5 ** (s / 4) for s in (3, 6, 9)])
    assert not any(name.startswith("batch_") or name.startswith("test_") for name in mt)
    assert run.seeds["keras.utils.set_random_seed"] == 11 and run.seeds["tf.random.set_seed"] == 12
    train = run.data["train"]
    assert [part["shape"] for part in train["parts"]] == [[64, 3], [64, 1]]
    assert [part["dtype"] for part in train["parts"]] == ["float32", "float32"] and len(train["sha256"]) == 64
    (final,) = [a for a in run.artifacts if a.kind == "model"]
    assert final.name == "model.keras" and final.metadata["epoch"] == 2 and final.metadata["step"] == 9
    final.download(tmp_path / "restored.keras")
    restored = keras.models.load_model(tmp_path / "restored.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


def test_autolog_one_run_per_fit_and_the_users_list_untouched(store):
    autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    m = model()
    history = keras.callbacks.History()
    users = [history]
    m.fit(x, y, epochs=2, verbose=0, callbacks=users)
    assert users == [history] and len(users) == 1, "autolog adds its callback to a new list"
    mine = AutotrackCallback()
    both = [mine, keras.callbacks.TerminateOnNaN()]
    snapshot = list(both)
    m.fit(x, y, epochs=2, verbose=0, callbacks=both)  # user's callback + autolog: one run, not two
    assert both == snapshot and all(a is b for a, b in zip(both, snapshot))
    m.fit(x, y, epochs=1, verbose=0)
    own_list = keras.callbacks.CallbackList([keras.callbacks.TerminateOnNaN()], model=m)
    inside = list(own_list.callbacks)
    m.fit(x, y, epochs=1, verbose=0, callbacks=own_list)
    assert own_list.callbacks == inside
    runs = autotrack.runs(uri=store)
    assert len(runs) == 4 and all(r.status == "finished" and r.framework == "keras" for r in runs)
    assert [len(r.metrics["loss"]) for r in runs] == [1, 1, 2, 2], "newest first; no duplicate points"
    assert runs[2].params["callbacks"] == ["TerminateOnNaN"] == runs[0].params["callbacks"]
    assert [pt.step for pt in runs[1].metrics["loss"]] == [10], "the optimizer's global step goes on"


class TrainsAnother(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        x, y = data(16)
        model().fit(x, y, epochs=3, verbose=0, callbacks=[AutotrackCallback()])


def test_only_the_outermost_fit_records(store):
    autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    model().fit(x, y, epochs=2, verbose=0, callbacks=[TrainsAnother()])
    (run,) = autotrack.runs(uri=store)
    assert [pt.epoch for pt in run.metrics["loss"]] == [0, 1] and run.status == "finished"


class AddsToLogs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["custom"] = epoch * 2  # runs after ours: the usual way to feed EarlyStopping a metric


def test_batch_hooks_only_when_asked(store):
    plain = AutotrackCallback(uri=store)
    assert is_default(plain.on_train_batch_end) and is_default(plain.on_batch_end)
    assert type(plain).on_train_batch_end is keras.callbacks.Callback.on_train_batch_end
    stepped = AutotrackCallback(uri=store, log_every_n_steps=2)
    assert not is_default(stepped.on_train_batch_end)
    assert is_default(AutotrackCallback(uri=store).on_train_batch_end), "the override is per instance"
    with pytest.raises(ValueError, match="log_every_n_steps"):
        AutotrackCallback(log_every_n_steps=0)  # a bad setting fails here, not at the first epoch
    x, y = data()
    model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[stepped, AddsToLogs()])
    run = autotrack.last_run(store)
    assert [pt.value for pt in run.metrics["custom"]] == [0, 2], "values later callbacks add to logs are kept"
    assert [pt.step for pt in run.metrics["batch_loss"]] == [2, 4, 6, 8]
    assert [pt.epoch for pt in run.metrics["batch_loss"]] == [0, 0, 1, 1]
    assert [pt.step for pt in run.metrics["loss"]] == [4, 8]


@pytest.mark.parametrize("ours_first", [True, False])
def test_checkpoints_recorded_as_written(store, tmp_path, ours_first):
    x, y = data()
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best" / "best.keras"), monitor="val_loss",
                                           save_best_only=True)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "w" / "w-{epoch:02d}.weights.h5"), monitor="val_loss",
                                            save_weights_only=True)
    legacy = keras.callbacks.ModelCheckpoint(str(tmp_path / "h5" / "last.h5"), monitor="val_mae")
    ours = AutotrackCallback(uri=store, log_models=False)
    callbacks = [ours, best, every, legacy] if ours_first else [best, every, legacy, ours]
    m = model(lr=0.02)
    m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=callbacks)
    run = autotrack.last_run(store)
    arts = {a.name: a for a in run.artifacts}
    assert not [a for a in run.artifacts if a.kind == "model"]
    assert {"checkpoints/w-01.weights.h5", "checkpoints/w-02.weights.h5", "checkpoints/w-03.weights.h5",
            "checkpoints/best.keras", "checkpoints/last.h5"} == set(arts)
    val = [pt.value for pt in run.metrics["val_loss"]]
    for epoch in range(3):
        w = arts[f"checkpoints/w-{epoch + 1:02d}.weights.h5"].metadata
        assert (w["epoch"], w["monitor"], w["weights_only"]) == (epoch, "val_loss", True)
        assert w["value"] == pytest.approx(val[epoch]) and w["step"] == 3 * (epoch + 1)
    best_epoch = int(np.argmin(val))
    for epoch in range(3):
        assert arts[f"checkpoints/w-{epoch + 1:02d}.weights.h5"].metadata["best"] is (epoch == best_epoch)
    mae = [pt.value for pt in run.metrics["val_mae"]]
    assert arts["checkpoints/last.h5"].metadata["best"] is (int(np.argmin(mae)) == 2), "one best per ModelCheckpoint"
    b = arts["checkpoints/best.keras"]
    assert b.metadata["save_best_only"] is True and b.metadata["value"] == pytest.approx(min(val))
    assert b.metadata["epoch"] == best_epoch
    assert b.read_bytes() == (tmp_path / "best" / "best.keras").read_bytes()
    assert arts["checkpoints/last.h5"].metadata["monitor"] == "val_mae"
    assert arts["checkpoints/last.h5"].read_bytes() == (tmp_path / "h5" / "last.h5").read_bytes()


def test_early_stopping_is_a_normal_finish(store, tmp_path):
    x, y = data()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)  # stops after 2 epochs
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "c.keras"))
    model().fit(x, y, epochs=10, verbose=0, callbacks=[stop, ckpt, AutotrackCallback(uri=store, log_checkpoints=False)])
    run = autotrack.last_run(store)
    assert [a.name for a in run.artifacts] == ["model.keras"], "log_checkpoints=False"
    assert run.status == "finished" and run.error is None
    p = run.params
    assert p["stop_training"] is True and p["early_stopping/stopped_epoch"] == stop.stopped_epoch == 1
    assert p["early_stopping/best_value"] == pytest.approx(float(stop.best)) and p["early_stopping/patience"] == 0
    assert p["early_stopping/monitor"] == "loss" and len(run.metrics["loss"]) == 2


class Boom(keras.callbacks.Callback):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise self.exc


@pytest.mark.parametrize("autolog", [False, True])
def test_user_exception_fails_the_run_and_propagates(store, autolog):
    if autolog:
        autotrack.autolog(uri=store, frameworks=["keras"])
    error = ValueError("bad batch")
    x, y = data()
    callbacks = [Boom(error)] if autolog else [AutotrackCallback(uri=store), Boom(error)]
    with pytest.raises(ValueError) as caught:
        model().fit(x, y, epochs=5, verbose=0, callbacks=callbacks)
    assert caught.value is error
    run = autotrack.last_run(store)
    assert run.status == "failed" and "ValueError: bad batch" in run.error
    # before the failing callback, ours sees the epoch that raised; autolog's (appended last) does not
    assert [pt.epoch for pt in run.metrics["loss"]] == ([0] if autolog else [0, 1])
    assert autotrack.active_run() is None


def test_keyboard_interrupt_is_killed(store):
    x, y = data()
    with pytest.raises(KeyboardInterrupt):
        model().fit(x, y, epochs=3, verbose=0, callbacks=[AutotrackCallback(uri=store), Boom(KeyboardInterrupt())])
    assert autotrack.last_run(store).status == "killed"


def test_only_rank_zero_records(store, monkeypatch):
    from autotrack.integrations._keras_params import rank_zero

    monkeypatch.setenv("RANK", "1")
    x, y = data()
    model().fit(x, y, epochs=1, verbose=0, callbacks=[AutotrackCallback(uri=store)])
    assert autotrack.runs(uri=store) == []
    monkeypatch.delenv("RANK")
    for task, cluster, records in ((("worker", 1), ["worker"], False), (("worker", 0), ["worker"], True),
                                   (("worker", 0), ["chief", "worker"], False), (("chief", 0), ["chief"], True),
                                   (("evaluator", 0), ["worker"], False)):
        config = {"cluster": {name: ["host:1"] for name in cluster}, "task": {"type": task[0], "index": task[1]}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        assert rank_zero() is records, config


class BrokenStore:
    def __init__(self, uri):
        self.uri = uri

    def _fail(self, *args, **kwargs):
        raise OSError(5, "store unreachable")

    create_run = update_run = append = put_artifact = list_runs = read_segments = open_artifact = _fail


def test_failing_backend_cannot_stop_fit(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("broken", BrokenStore, clobber=True)
    autotrack.autolog(uri="broken://x", frameworks=["keras"])
    x, y = data()
    m = model()
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "c.keras"))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        history = m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[ckpt])
        m.evaluate(x, y, verbose=0)
    assert len(history.history["loss"]) == 3 and (tmp_path / "c.keras").exists()
    assert autotrack.error_counts()


class _ThreadRecordingStore(FileStore):
    threads: set = set()

    def _write(self, path, data):
        type(self).threads.add(threading.current_thread().name)
        super()._write(path, data)

    def put_artifact(self, path):
        type(self).threads.add(threading.current_thread().name)
        return super().put_artifact(path)


def test_no_store_io_on_the_training_thread(tmp_path):
    register_backend("kerasthreads", lambda uri: _ThreadRecordingStore(str(tmp_path / "s")), clobber=True)
    x, y = data()
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "c-{epoch}.keras"))
    model().fit(x, y, epochs=2, verbose=0, callbacks=[ckpt, AutotrackCallback(uri="kerasthreads://x")])
    threads = _ThreadRecordingStore.threads
    assert threads and all(name.startswith("autotrack-writer") for name in threads)
    assert len(autotrack.last_run(str(tmp_path / "s")).artifacts) == 3


def test_tf_data_cardinality_recorded_and_not_iterated_again(store):
    reads = []

    def gen():
        x, y = data(32)
        for i in range(32):
            reads.append(i)
            yield x[i], y[i]

    spec = (tf.TensorSpec((3,), tf.float32), tf.TensorSpec((1,), tf.float32))

    def dataset():
        return tf.data.Dataset.from_generator(gen, output_signature=spec).batch(8)

    model().fit(dataset(), epochs=2, verbose=0)
    plain_reads, reads[:] = len(reads), []
    autotrack.autolog(uri=store, frameworks=["keras"])
    model().fit(dataset(), validation_data=dataset().take(2), epochs=2, verbose=0)
    assert len(reads) == plain_reads + 2 * 16, "training reads as often as without autotrack (+ validation)"
    run = autotrack.last_run(store)
    train = run.data["train"]
    assert train["cardinality"] == "unknown" and "TensorSpec(shape=(None, 3)" in train["element_spec"]
    ds = tf.data.Dataset.from_tensor_slices(data(40)).batch(10)
    reads[:] = []
    model().fit(ds, epochs=1, verbose=0)
    assert autotrack.last_run(store).data["train"]["cardinality"] == 4
    assert autotrack.last_run(store).data["train"]["rows"] == 4


def test_tf_keras_is_recorded(store):
    autotrack.autolog(uri=store, frameworks=["keras"])
    m = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
    m.compile(optimizer=tf.keras.optimizers.RMSprop(0.01), loss=lambda y, p: tf.reduce_mean((y - p) ** 2))
    x, y = data()
    m.fit(tf.constant(x), tf.constant(y), epochs=2, verbose=0)
    run = autotrack.last_run(store)
    assert run.framework == "keras" and run.params["optimizer/name"] == "RMSprop" and len(run.metrics["loss"]) == 2
    assert run.params["loss"] in ("<lambda>", "__lambda__"), "a lambda loss (not always serializable) is named"
    assert run.data["train"]["parts"][0]["type"] == "tensorflow.Tensor"


def test_evaluate_lands_in_the_users_run(store):
    x, y = data()
    m = model()
    with autotrack.start_run(uri=store, name="mine") as run:
        m.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[AutotrackCallback()])
        loss, mae = m.evaluate(x, y, verbose=0)
        m.evaluate(x[:8], y[:8], verbose=0, return_dict=True)
    (rec,) = autotrack.runs(uri=store)
    assert rec.id == run.id and rec.name == "mine" and rec.framework == "keras"
    assert [pt.value for pt in rec.metrics["test_loss"]][0] == pytest.approx(loss)
    assert rec.metrics["test_mae"][0].value == pytest.approx(mae) and len(rec.metrics["test_loss"]) == 2
    assert rec.metrics["test_loss"][0].step == 4 and rec.metrics["test_loss"][0].epoch == 1
    assert len(rec.metrics["val_loss"]) == 2, "fit's own validation is val_*, not test_*"
    assert rec.data["test"]["parts"][0]["shape"] == [8, 3]


def test_evaluate_after_autolog_fit_reopens_its_run(store):
    autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    first, second = model(), model()
    first.fit(x, y, epochs=2, verbose=0)
    second.fit(x, y, epochs=1, verbose=0)
    loss, _ = first.evaluate(x, y, verbose=0)
    runs = autotrack.runs(uri=store)
    assert len(runs) == 2 and all(r.status == "finished" for r in runs) and autotrack.active_run() is None
    older = runs[1]
    assert len(older.metrics["loss"]) == 2 and older.metrics["test_loss"][0].value == pytest.approx(loss)
    assert "test_loss" not in runs[0].metrics, "evaluate() goes to the run of the model's own fit"
    fresh = model()  # never fit here, e.g. keras.models.load_model(...): a run of its own
    fresh.evaluate(x, y, verbose=0)
    with pytest.raises(Exception) as caught:  # a wrong input shape
        fresh.evaluate(np.zeros((4, 5)), np.zeros((4, 1)), verbose=0)
    failed, alone = autotrack.runs(uri=store)[:2]
    assert alone.status == "finished" and "test_loss" in alone.metrics and "loss" not in alone.metrics
    assert alone.params["optimizer/name"] == "Adam" and alone.params["model/params_total"] == 21
    assert failed.status == "failed" and type(caught.value).__name__ in failed.error
    autotrack.autolog(disable=True)
    model().evaluate(x, y, verbose=0)  # no autolog, no callback, no fit before: nothing recorded
    assert len(autotrack.runs(uri=store)) == 4


def test_disable_stops_recording_and_leaves_inert_wrappers(store):
    def wrapped():
        return isinstance(vars(keras.Model).get("fit"), wrapt.FunctionWrapper)

    autotrack.autolog(uri=store, frameworks=["keras"])
    assert wrapped()
    autotrack.autolog(disable=True)
    x, y = data()
    model().fit(x, y, epochs=1, verbose=0)
    assert autotrack.runs(uri=store) == [], "no autolog, no callback: nothing recorded"
    # ``fit`` is looked up before the callback is made: the wrapper must still be there for it
    model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[AutotrackCallback(uri=store)])
    first = autotrack.last_run(store)
    assert first.status == "finished" and first.params["epochs"] == 2 and first.params["batch_size"] == 8
    assert len(first.metrics["loss"]) == 2 and first.artifact("model.keras")
    assert wrapped()


TORCH_SCRIPT = """
import json, os
import numpy as np
import keras, autotrack
from autotrack._autolog import register_integration
register_integration("keras", ["keras"], "autotrack.integrations.keras")
from autotrack.integrations.keras import AutotrackCallback
CallbackList = keras.callbacks.CallbackList
assert keras.backend.backend() == "torch"
out = {"async_plain": CallbackList([AutotrackCallback(uri=STORE)])._async_train,
       "async_stepped": CallbackList([AutotrackCallback(uri=STORE, log_every_n_steps=1)])._async_train}
autotrack.autolog(uri=STORE, frameworks=["keras"])
keras.utils.set_random_seed(5)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32"); y = x.sum(1, keepdims=True)
m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
ckpt = keras.callbacks.ModelCheckpoint(os.path.join(FOLDER, "best.keras"), save_best_only=True)
m.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[ckpt])
out["test_loss"] = m.evaluate(x, y, verbose=0)[0]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_torch_backend_in_a_subprocess(store, tmp_path):
    pytest.importorskip("torch")
    proc = python(f"STORE, FOLDER = {store!r}, {str(tmp_path)!r}\n" + TORCH_SCRIPT, env={"KERAS_BACKEND": "torch"},
                  timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["async_plain"] is True and out["async_stepped"] is False
    (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and run.params["backend"] == "torch" and run.params["optimizer/name"] == "Adam"
    assert [pt.step for pt in run.metrics["loss"]] == [3, 6] and len(run.metrics["val_mae"]) == 2
    assert run.metrics["test_loss"][0].value == pytest.approx(out["test_loss"])
    assert run.seeds["keras.utils.set_random_seed"] == 5 and run.seeds["torch.manual_seed"] == 5
    assert run.artifact("checkpoints/best.keras").metadata["best"] is True
    assert run.artifact("model.keras").kind == "model"
