"""``autolog(register_as=...)`` and ``AutotrackCallback(register_as=...)``: a fit that ends well
registers its model (else its best checkpoint) as a new version; a failed fit registers nothing;
a registry that fails costs one warning, never the training; an evaluate()/test() registers
nothing. Real tiny fits of every integration (scikit-learn, XGBoost, Lightning, Keras,
transformers), read back through the registry's public API."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

import autotrack
from autotrack._safety import AutotrackWarning

sklearn = pytest.importorskip("sklearn")
xgb = pytest.importorskip("xgboost")
from sklearn.linear_model import LogisticRegression  # noqa: E402

from autotrack.integrations.xgboost import AutotrackCallback as XGBCallback  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "seed": 1}


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)


def versions(store: str, name: str) -> list:
    found = [m for m in autotrack.models(uri=store) if m.name == name]
    return [autotrack.get_model(f"{name}/{n}", uri=store) for n in range(1, _count(found) + 1)]


def _count(found: list) -> int:
    if not found:
        return 0
    versions = found[0].versions
    return versions if isinstance(versions, int) else len(versions)


def _artifact_sha(run, name: str) -> str:
    return next(a.sha256 for a in run.artifacts if a.name == name)


def test_sklearn_autolog_registers_each_successful_fit_and_not_a_failed_one(store, tmp_path):
    autotrack.autolog(uri=store, frameworks=["sklearn"], register_as="churn")
    first = LogisticRegression(C=1.0).fit(X, Y)
    first_run = autotrack.last_run(store)
    with pytest.raises(ValueError):
        LogisticRegression().fit(X, np.zeros(len(X), dtype=int))  # one class: scikit-learn refuses
    assert autotrack.last_run(store).status == "failed"
    LogisticRegression(C=0.1).fit(X, Y)
    second_run = autotrack.last_run(store)
    v1, v2 = versions(store, "churn")
    assert (v1.run_id, v2.run_id) == (first_run.id, second_run.id)  # the failed fit: no version
    model_name = next(a.name for a in second_run.artifacts if a.kind == "model")
    assert v2.artifact == model_name and v2.sha256 == _artifact_sha(second_run, model_name)
    assert v2.metadata["registered_by"] == "register_as" and v2.metadata["framework"] == "sklearn"
    assert autotrack.get_model("churn@latest", uri=store).version == 2
    import joblib

    path = v1.download(tmp_path / "restored.joblib")
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == v1.sha256
    np.testing.assert_array_equal(joblib.load(path).predict(X), first.predict(X))


def test_sklearn_own_autolog_takes_register_as(store):
    """scikit-learn has no callback: its adapter's ``autolog`` is the explicit form."""
    from autotrack.integrations import sklearn as adapter

    adapter.autolog(uri=store, register_as="own", max_tuning_runs=0)
    LogisticRegression().fit(X, Y)
    (version,) = versions(store, "own")
    assert version.run_id == autotrack.last_run(store).id and version.metadata["framework"] == "sklearn"
    with pytest.raises(ValueError, match="register_as"):
        adapter.autolog(register_as="bad name")


def test_sklearn_fit_inside_a_users_run_registers_that_run(store):
    autotrack.autolog(uri=store, frameworks=["sklearn"], register_as="inside")
    with autotrack.start_run(uri=store, name="mine") as run:
        LogisticRegression().fit(X, Y)
        (version,) = versions(store, "inside")  # registered when the fit ended, the run still open
        assert version.run_id == run.id
    assert autotrack.get_run(run.id, uri=store).status == "finished"


def test_xgboost_callback_option_and_autolog(store):
    dtrain = xgb.DMatrix(X, label=Y)
    xgb.train(PARAMS, dtrain, 3, callbacks=[XGBCallback(uri=store, register_as="boost")])
    (v1,) = versions(store, "boost")
    run = autotrack.get_run(v1.run_id, uri=store)
    assert v1.artifact == "model.ubj" and v1.sha256 == _artifact_sha(run, "model.ubj") and run.framework == "xgboost"
    booster = xgb.Booster(model_file=str(v1.download(str(run.id) + ".ubj")))
    assert booster.num_boosted_rounds() == 3

    autotrack.autolog(uri=store, frameworks=["xgboost"], register_as="boost")
    xgb.train(PARAMS, dtrain, 2)
    assert [v.version for v in versions(store, "boost")] == [1, 2]

    def metric(predt, dmat):
        raise RuntimeError("bad metric")

    with pytest.raises(RuntimeError):
        xgb.train(PARAMS, dtrain, 2, evals=[(dtrain, "train")], custom_metric=metric)
    assert autotrack.last_run(store).status == "failed"
    assert [v.version for v in versions(store, "boost")] == [1, 2]  # the failed fit registered nothing
    # the callback's own option wins over autolog's
    xgb.train(PARAMS, dtrain, 2, callbacks=[XGBCallback(uri=store, register_as="other")])
    assert len(versions(store, "other")) == 1 and len(versions(store, "boost")) == 2


def test_bad_register_as_is_refused_at_the_call():
    with pytest.raises(ValueError, match="register_as"):
        autotrack.autolog(register_as="churn@production")
    with pytest.raises(ValueError, match="register_as"):
        XGBCallback(register_as="no/slash")
    with pytest.raises(ValueError, match="needs log_models or log_checkpoints"):
        autotrack.autolog(register_as="churn", log_models=False, log_checkpoints=False)


def test_a_registry_failure_is_one_warning_never_a_failed_fit(store, lenient, monkeypatch):
    import autotrack._registry as registry

    def broken(*args, **kwargs):
        raise OSError("the registry is down")

    monkeypatch.setattr(registry, "register_model", broken)
    autotrack.autolog(uri=store, frameworks=["sklearn"], register_as="churn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LogisticRegression().fit(X, Y)
        LogisticRegression().fit(X, Y)
    said = [str(w.message) for w in caught if issubclass(w.category, AutotrackWarning)]
    assert len(said) == 1 and "the registry is down" in said[0] and "autotrack model register churn" in said[0]
    assert [r.status for r in autotrack.runs(uri=store)] == ["finished", "finished"]
    assert autotrack.error_counts()["sklearn: registering the model"] == 2


def test_without_a_model_it_says_so(store):
    autotrack.autolog(uri=store, frameworks=["sklearn"], register_as="churn", log_models=False)
    with pytest.warns(AutotrackWarning, match="logged no model and no checkpoint"):
        LogisticRegression().fit(X, Y)
    assert versions(store, "churn") == []


def test_a_model_saved_as_a_folder_registers_its_largest_file(store, tmp_path):
    """A transformers model or Keras parts are a folder; a version pins one file: the weights."""
    from autotrack.integrations._common import FitRecorder, resolve_options

    folder = tmp_path / "saved"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "model.safetensors").write_bytes(b"w" * 5000)
    (folder / "tokenizer.json").write_bytes(b"t" * 900)
    rec = FitRecorder("custom", resolve_options(uri=store, register_as="folder"))
    rec.begin("saved-a-folder")
    rec.model(str(folder), name="model")
    rec.end()
    (version,) = versions(store, "folder")
    assert version.artifact == "model/sub/model.safetensors" and version.read_bytes() == b"w" * 5000


# slow (tests/conftest.py): Lightning's import and three epochs
def test_lightning_registers_the_best_checkpoint(store, tmp_path):
    L = pytest.importorskip("lightning")
    from lightning.pytorch.callbacks import ModelCheckpoint

    from autotrack.integrations.lightning import AutotrackCallback

    from .lightning_models import loaders, module_class

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=1)
    train, val = loaders()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=1,
                        callbacks=[ckpt, AutotrackCallback(uri=store, register_as="reg", log_models=False)])
    trainer.fit(module_class(L.pytorch)(lr=0.01), train, val)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutotrackWarning)  # not "logged no model": a test() trains none
        trainer.test(trainer.lightning_module, dataloaders=val)  # reopens the fit's run; registers nothing more
    (version,) = versions(store, "reg")
    run = autotrack.get_run(version.run_id, uri=store)
    best = next(a for a in run.artifacts if a.metadata.get("best"))
    assert version.artifact == best.name and version.sha256 == best.sha256
    assert version.metadata["from"] == "checkpoint"
    assert hashlib.sha256(open(ckpt.best_model_path, "rb").read()).hexdigest() == version.sha256


# slow (tests/conftest.py): TensorFlow's import and three small fits
def test_keras_callback_option_autolog_and_the_best_checkpoint(store, tmp_path):
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":  # pragma: no cover - another module chose first
        pytest.skip("the TensorFlow backend is what this process has")
    from autotrack.integrations.keras import AutotrackCallback

    x = X.astype("float32")
    y = Y.astype("float32")

    def model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        return m

    first = model()
    first.fit(x, y, epochs=2, verbose=0, callbacks=[AutotrackCallback(uri=store, register_as="kmodel")])
    (v1,) = versions(store, "kmodel")
    assert v1.artifact == "model.keras" and v1.metadata["framework"] == "keras" and v1.metadata["from"] == "model"
    restored = keras.models.load_model(v1.download(tmp_path / "v1.keras"))
    np.testing.assert_allclose(restored.predict(x, verbose=0), first.predict(x, verbose=0), rtol=1e-6)

    # autolog's option, with checkpoints only: the best one (save_best_only keeps rewriting one file)
    autotrack.autolog(uri=store, frameworks=["keras"], register_as="kmodel", log_models=False)
    ckpt = keras.callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch}.keras"), monitor="val_loss", save_best_only=True)
    model().fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[ckpt])
    v2 = versions(store, "kmodel")[1]
    run = autotrack.get_run(v2.run_id, uri=store)
    best = next(a for a in run.artifacts if a.metadata.get("best"))
    assert (v2.artifact, v2.sha256, v2.metadata["from"]) == (best.name, best.sha256, "checkpoint")
    assert keras.models.load_model(v2.download(tmp_path / "v2.keras")).count_params() == first.count_params()


# slow (tests/conftest.py): transformers' import and two tiny Trainer runs
def test_transformers_callback_option_and_autolog_register_the_weights(store, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from autotrack.integrations.transformers import AutotrackCallback

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return {"input_ids": torch.arange(8) % (i + 2), "labels": torch.tensor(i % 2)}

    def train(callbacks=()):
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                         num_attention_heads=2, intermediate_size=16))
        args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", max_steps=2,
                                 per_device_train_batch_size=8, save_strategy="no", disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=list(callbacks))
        trainer.train()
        return trainer

    trainer = train([AutotrackCallback(uri=store, register_as="bert")])
    (v1,) = versions(store, "bert")
    assert v1.artifact == "model/model.safetensors" and v1.metadata["framework"] == "transformers"
    weights = load_file(v1.download(tmp_path / "v1.safetensors"))
    state = trainer.model.state_dict()
    assert weights and all(torch.equal(weights[k], state[k]) for k in weights)

    autotrack.autolog(uri=store, frameworks=["transformers"], register_as="bert")
    train()
    assert [v.version for v in versions(store, "bert")] == [1, 2]
    assert autotrack.get_model("bert@latest", uri=store).run_id == autotrack.last_run(store).id
