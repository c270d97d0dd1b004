"""Keras adapter: real tiny fits (TensorFlow backend in-process, torch in a subprocess, tf.keras),
asserted through what ``autotrack`` reads back."""

from __future__ import annotations

import json
import os
import threading
import types
import warnings

import numpy as np
import pytest

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

from autotrack.integrations.keras import AutotrackCallback  # noqa: E402

register_integration("keras", ["keras"], "autotrack.integrations.keras")  # as _autolog._INTEGRATIONS will

PATCHED = ("fit", "evaluate", "save", "save_weights")


def class_attributes():
    """What every class of keras.Model's MRO holds under the names autolog wraps (``fit`` lives
    on the backend's trainer class, ``save`` on Model itself)."""
    return {(cls, name): vars(cls).get(name) for cls in keras.Model.__mro__ for name in PATCHED}


ORIGINALS = class_attributes()  # importing the integration (and the callback) patched nothing


def restored():
    return all(value is ORIGINALS[key] for key, value in class_attributes().items())


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert restored(), "autolog(disable=True) puts back the very same functions"


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.1).astype("float32")


def model(lr=0.05, metrics=("mae",)):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=list(metrics))
    return m


def fit_with_schedule(store, tmp_path, **fit):
    keras.utils.set_random_seed(11)
    tf.random.set_seed(12)
    x, y = data()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.5), loss=keras.losses.Huber(delta=2.0),
              metrics=["mae", keras.metrics.RootMeanSquaredError()])
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "c-{epoch}.keras"))
    m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, class_weight=None, verbose=0,
          callbacks=[AutotrackCallback(uri=store, experiment="tiny"), ckpt], **fit)
    (run,) = autotrack.runs(uri=store)
    return m, x, run


def test_callback_alone_records_a_complete_run(store, tmp_path):
    m, x, run = fit_with_schedule(store, tmp_path)
    assert restored(), "an explicit callback patches nothing"
    assert run.framework == "keras" and run.status == "finished" and run.experiment == "tiny"
    p = run.params
    assert p["epochs"] == 3 and p["steps"] == 3, "from Keras's callback params"
    assert p["optimizer/name"] == "SGD" and p["optimizer/momentum"] == 0.5
    assert p["optimizer/learning_rate/name"] == "ExponentialDecay"
    assert p["optimizer/learning_rate/initial_learning_rate"] == 0.1 and p["optimizer/learning_rate/decay_steps"] == 4
    assert p["loss"] == "huber_loss" and p["loss_config/reduction"] == "sum_over_batch_size"
    assert p["metrics"] == ["mae", "root_mean_squared_error"]
    assert p["model/params_total"] == 3 * 4 + 4 + 4 + 1 == p["model/params_trainable"] and p["model/layers"] == 2
    assert p["backend"] == "tensorflow" and p["model/class"] == "Sequential" and p["stop_training"] is False
    assert "batch_size" not in p and "callbacks" not in p and not run.data, "fit's arguments: autolog's part"
    mt = run.metrics
    for name in ("loss", "val_loss", "mae", "val_mae", "root_mean_squared_error", "val_root_mean_squared_error"):
        assert [pt.epoch for pt in mt[name]] == [0, 1, 2], name
        assert [pt.step for pt in mt[name]] == [3, 6, 9], name  # 48 training rows / 16 = 3 steps an epoch
    assert mt["loss"][-1].value == pytest.approx(m.history.history["loss"][-1])
    assert [pt.value for pt in mt["learning_rate"]] == pytest.approx([0.1 * 0.5 ** (s / 4) for s in (3, 6, 9)])
    assert not any(name.startswith("batch_") or name.startswith("test_") for name in mt)
    assert run.seeds["keras.global_seed"] == 11 and run.seeds["tf.global_seed"] == 12, "seeded before the run"
    (final,) = run.artifacts  # ModelCheckpoint's files: autolog's part (it sees who saves)
    assert final.name == "model.keras" and final.kind == "model"
    assert final.metadata["epoch"] == 2 and final.metadata["step"] == 9 and final.metadata["format"] == "keras"
    final.download(tmp_path / "restored.keras")
    restored_model = keras.models.load_model(tmp_path / "restored.keras")
    np.testing.assert_allclose(restored_model.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


def test_autolog_adds_fit_arguments_data_callbacks_and_checkpoints(store, tmp_path):
    autotrack.autolog(frameworks=["keras"])
    _, _, run = fit_with_schedule(store, tmp_path)
    p = run.params
    assert (p["epochs"], p["batch_size"], p["validation_split"], p["initial_epoch"]) == (3, 16, 0.25, 0)
    assert p["steps_per_epoch"] is None and p["shuffle"] is True and p["class_weight"] is False
    assert p["callbacks"] == ["ModelCheckpoint"] and p["optimizer/momentum"] == 0.5
    assert run.seeds["keras.utils.set_random_seed"] == 11 and run.seeds["tf.random.set_seed"] == 12
    train = run.data["train"]
    assert [part["shape"] for part in train["parts"]] == [[64, 3], [64, 1]]
    assert [part["dtype"] for part in train["parts"]] == ["float32", "float32"] and len(train["sha256"]) == 64
    names = sorted(a.name for a in run.artifacts)
    assert names == ["checkpoints/c-1.keras", "checkpoints/c-2.keras", "checkpoints/c-3.keras", "model.keras"]


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


@pytest.mark.parametrize("autolog", [True, False])
def test_only_the_outermost_fit_records(store, autolog):
    if autolog:
        autotrack.autolog(uri=store, frameworks=["keras"])
    x, y = data()
    model().fit(x, y, epochs=2, verbose=0, callbacks=[TrainsAnother()] if autolog else
                [AutotrackCallback(uri=store), TrainsAnother()])
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
    autotrack.autolog(frameworks=["keras"])  # the save wrappers see who writes a file
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
    autotrack.autolog(frameworks=["keras"])
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


def test_user_exception_fails_the_run_and_propagates(store):
    autotrack.autolog(uri=store, frameworks=["keras"])
    error = ValueError("bad batch")
    x, y = data()
    with pytest.raises(ValueError) as caught:
        model().fit(x, y, epochs=5, verbose=0, callbacks=[Boom(error)])
    assert caught.value is error
    run = autotrack.last_run(store)
    assert run.status == "failed" and "ValueError: bad batch" in run.error
    assert [pt.epoch for pt in run.metrics["loss"]] == [0], "autolog's callback, appended last, missed epoch 1"
    assert autotrack.active_run() is None


@pytest.mark.parametrize("same_callback", [True, False])
def test_callback_alone_a_fit_that_raised_is_failed_by_the_next_fit(store, same_callback):
    x, y = data()
    first_cb = AutotrackCallback(uri=store)
    with pytest.raises(ValueError):
        model().fit(x, y, epochs=5, verbose=0, callbacks=[first_cb, Boom(ValueError("bad batch"))])
    assert autotrack.last_run(store).status == "running", "no hook hears of the exception"
    model().fit(x, y, epochs=1, verbose=0, callbacks=[first_cb if same_callback else AutotrackCallback(uri=store)])
    second, first = autotrack.runs(uri=store)
    assert first.status == "failed" and "the fit did not complete" in first.error
    assert [pt.epoch for pt in first.metrics["loss"]] == [0, 1], "the epoch that raised is kept"
    assert second.status == "finished" and len(second.metrics["loss"]) == 1 and autotrack.active_run() is None


@pytest.mark.slow
def test_callback_alone_a_fit_that_raised_is_failed_at_the_programs_end(store):
    proc = python(f"""
        import numpy as np, keras
        from autotrack.integrations.keras import AutotrackCallback
        class Boom(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                raise ValueError("bad batch")
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile("sgd", "mse")
        callbacks = [AutotrackCallback(uri={store!r}), Boom()]
        try:
            m.fit(np.zeros((8, 3)), np.zeros(8), epochs=2, verbose=0, callbacks=callbacks)
        except ValueError:
            pass  # the program goes on, and ends well
    """, env={"KERAS_BACKEND": "tensorflow"}, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = autotrack.last_run(store)
    assert run.status == "failed" and "did not complete" in run.error and len(run.metrics["loss"]) == 1


def test_keyboard_interrupt_is_killed(store):
    autotrack.autolog(frameworks=["keras"])
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
    autotrack.autolog(frameworks=["keras"])
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


class TinyGAN(keras.Model):
    """The GAN of Keras's guide "Customizing what happens in fit()", in miniature: its own
    compile(d_optimizer, g_optimizer, loss_fn) and train_step; Keras's default optimizer never steps."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.seed_generator = keras.random.SeedGenerator(1337)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, real):
        real = real[0] if isinstance(real, tuple) else real
        n = tf.shape(real)[0]
        noise = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        labels = tf.concat([tf.ones((n, 1)), tf.zeros((n, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(tf.concat([self.generator(noise), real], axis=0)))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(tf.zeros((n, 1)), self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply(grads, self.generator.trainable_weights)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


class CallableGAN(TinyGAN):
    def call(self, noise):
        return self.discriminator(self.generator(noise))


def tiny_gan(cls=TinyGAN):
    disc = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)], name="discriminator")
    gen = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="sigmoid")], name="generator")
    gan = cls(discriminator=disc, generator=gen, latent_dim=2)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    return gan


@pytest.mark.parametrize("built", [False, True])
def test_custom_compile_and_train_step_gan(store, tmp_path, built):
    autotrack.autolog(uri=store, frameworks=["keras"])
    gan = tiny_gan(CallableGAN if built else TinyGAN)
    if built:
        gan(np.zeros((1, 2), "float32"))  # a GAN with call(): built, so its weights can be saved alone
    real = np.random.default_rng(0).random((40, 4)).astype("float32")
    gan.fit(real, batch_size=8, epochs=2, verbose=0)
    run = autotrack.last_run(store)
    p, m = run.params, run.metrics
    assert run.status == "finished"
    for name in ("d_optimizer", "g_optimizer"):
        assert p[f"{name}/name"] == "Adam" and p[f"{name}/learning_rate"] == pytest.approx(3e-4)
        assert [pt.value for pt in m[f"{name}/learning_rate"]] == pytest.approx([3e-4, 3e-4])
    assert not [k for k in p if k.startswith("optimizer/")], "Keras's default RMSprop never stepped"
    assert "learning_rate" not in m and p["model/params_total"] == 4 * 1 + 1 + 2 * 4 + 4
    assert [pt.step for pt in m["d_loss"]] == [5, 10] and [pt.epoch for pt in m["g_loss"]] == [0, 1], "batches"
    models = {a.name: a for a in run.artifacts if a.kind == "model"}
    if built:
        (weights,) = models.values()
        assert weights.name == "model.weights.h5" and weights.metadata["format"] == "weights"
        assert "get_config" in weights.metadata["full_save_error"] and weights.metadata["step"] == 10
        weights.download(tmp_path / "w.weights.h5")
        again = tiny_gan(CallableGAN)
        again(np.zeros((1, 2), "float32"))
        again.load_weights(tmp_path / "w.weights.h5")
        noise = np.random.default_rng(1).normal(size=(3, 2)).astype("float32")
        np.testing.assert_allclose(again(noise), gan(noise), rtol=1e-6)
    else:  # never built: Keras saves neither it nor its weights; the models it holds, whole
        assert set(models) == {"model/generator.keras", "model/discriminator.keras"}
        meta = models["model/generator.keras"].metadata
        assert meta["format"] == "parts" and "NotImplementedError" in meta["full_save_error"]
        assert "not yet been built" in meta["weights_save_error"]
        models["model/generator.keras"].download(tmp_path / "g.keras")
        noise = np.ones((2, 2), "float32")
        np.testing.assert_allclose(keras.models.load_model(tmp_path / "g.keras")(noise), gan.generator(noise))


def test_evaluate_lands_in_the_users_run(store):
    autotrack.autolog(frameworks=["keras"])
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
    first.evaluate(x, y, verbose=0)  # evaluate() is autolog's: nothing recorded without it
    assert len(autotrack.runs(uri=store)) == 4


def test_disable_restores_every_original_and_the_callback_still_records(store, tmp_path):
    assert all(f is None or type(f) is types.FunctionType for f in ORIGINALS.values()), "import patched nothing"
    AutotrackCallback(uri=store)
    assert restored(), "making a callback patches nothing"
    autotrack.autolog(uri=store, frameworks=["keras"])
    assert not restored()
    x, y = data()
    m = model()
    m.fit(x, y, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.save(tmp_path / "m.keras")
    m.save_weights(tmp_path / "m.weights.h5")
    autotrack.autolog(disable=True)
    assert restored(), "fit, evaluate, save, save_weights: the very same functions, on the very same classes"
    model().fit(x, y, epochs=1, verbose=0)
    assert len(autotrack.runs(uri=store)) == 1, "no autolog, no callback: nothing recorded"
    model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[AutotrackCallback(uri=store)])
    last = autotrack.last_run(store)
    assert last.status == "finished" and last.params["epochs"] == 2 and last.params["steps"] == 8
    assert len(last.metrics["loss"]) == 2 and last.artifact("model.keras")


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
from autotrack.integrations import _keras_save  # the final model's snapshot: torch shares memory with numpy
before = m.predict(x, verbose=0)
write = _keras_save.snapshot(m)
for v in m.weights:
    v.assign(np.zeros(v.shape, dtype=v.dtype))  # in place
write(os.path.join(FOLDER, "snap.keras"))
out["snapshot_kept"] = bool(np.array_equal(keras.models.load_model(os.path.join(FOLDER, "snap.keras"))
                                           .predict(x, verbose=0), before))
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
    assert out["snapshot_kept"] is True, "the snapshot copied the weights, not views of torch's tensors"
    (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and run.params["backend"] == "torch" and run.params["optimizer/name"] == "Adam"
    assert [pt.step for pt in run.metrics["loss"]] == [3, 6] and len(run.metrics["val_mae"]) == 2
    assert run.metrics["test_loss"][0].value == pytest.approx(out["test_loss"])
    assert run.seeds["keras.utils.set_random_seed"] == 5 and run.seeds["torch.manual_seed"] == 5
    assert run.artifact("checkpoints/best.keras").metadata["best"] is True
    assert run.artifact("model.keras").kind == "model"
