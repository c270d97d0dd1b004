"""Lightning adapter: real tiny fits, asserted through what ``autotrack`` reads back."""

from __future__ import annotations

import math
import os
import signal

import pytest
import torch

import autotrack

L = pytest.importorskip("lightning")
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from autotrack.integrations.lightning import AutotrackCallback  # noqa: E402

from tests.dead_store import DeadStore  # noqa: E402

from .lightning_models import csv_received, loaders, module_class  # noqa: E402

Regressor = module_class(L.pytorch)


def trainer(callbacks=(), **kwargs):
    settings = dict(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, accelerator="cpu", devices=1)
    settings.update(kwargs)
    return L.Trainer(callbacks=list(callbacks), **settings)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)


def test_fit_records_params_metrics_seeds_data(store):
    L.seed_everything(7)
    train, val = loaders()
    t = trainer([AutotrackCallback(uri=store, experiment="tiny")], gradient_clip_val=1.0, accumulate_grad_batches=2)
    t.fit(Regressor(arch={"depth": 2, "act": "relu"}), train, val)
    (run,) = autotrack.runs(uri=store)
    assert run.framework == "lightning" and run.status == "finished" and run.experiment == "tiny"
    p = run.params
    assert p["lr"] == 0.05 and isinstance(p["lr"], float) and p["hidden"] == 8 and p["arch/depth"] == 2
    assert p["trainer/max_epochs"] == 3 and p["trainer/gradient_clip_val"] == 1.0
    assert p["trainer/accumulate_grad_batches"] == 2 and p["trainer/accelerator"] == "CPUAccelerator"
    assert p["trainer/precision"] == "32-true" and p["trainer/devices"] == 1
    assert p["optimizer/name"] == "AdamW" and p["optimizer/lr"] == 0.05 and p["optimizer/weight_decay"] == 0.01
    assert p["optimizer/betas"] == [0.9, 0.999]
    assert p["lr_scheduler/name"] == "StepLR" and p["lr_scheduler/gamma"] == 0.5
    assert p["model/params_total"] == 4 * 8 + 8 + 8 + 1 and p["model/params_trainable"] == 49
    m = run.metrics
    assert [pt.epoch for pt in m["train_loss"]] == [0, 1, 2]
    assert [pt.epoch for pt in m["val_loss"]] == [0, 1, 2], "no sanity-check value"
    assert [pt.step for pt in m["val_loss"]] == [2, 4, 6]
    assert "train_loss_step" not in m and "train_loss_epoch" not in m
    assert [pt.value for pt in m["lr"]] == pytest.approx([0.05, 0.025, 0.0125])
    assert run.seeds["PL_GLOBAL_SEED"] == 7 and run.seeds["torch.initial_seed"] == 7  # seeded before the run
    assert run.data["train"]["samples"] == 64 and run.data["train"]["batch_size"] == 16
    assert run.data["train"]["batches"] == 4 and len(run.data["train"]["sha256"]) == 64
    assert run.data["val"]["samples"] == 32


def test_checkpoints_recorded_as_written_best_and_superseded(store, tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=1, save_last=True)
    train, val = loaders()
    t = trainer([ckpt, AutotrackCallback(uri=store)], enable_checkpointing=True, max_epochs=3)
    t.fit(Regressor(lr=0.01), train, val)
    run = autotrack.last_run(store)
    arts = {a.name: a for a in run.artifacts}
    names = sorted(arts)
    assert "checkpoints/last.ckpt" in names and len([n for n in names if "epoch=" in n]) >= 1
    best = [a for a in run.artifacts if a.metadata.get("best")]
    assert len(best) == 1
    assert best[0].name == "checkpoints/" + os.path.basename(ckpt.best_model_path)
    assert best[0].metadata["monitor"] == "val_loss"
    assert best[0].metadata["score"] == pytest.approx(float(ckpt.best_model_score))
    assert best[0].read_bytes() == open(ckpt.best_model_path, "rb").read()
    released = 0
    for art in run.artifacts:
        on_disk = tmp_path / "ckpt" / os.path.basename(art.name)
        if not on_disk.exists():  # rotated out by top-k: marked superseded, bytes released...
            assert art.metadata["superseded"] is True
            if art.metadata["kept"] is False:
                released += 1
                with pytest.raises(autotrack.ArtifactNotFoundError, match="released: superseded by"):
                    art.read_bytes()
            # ...unless identical bytes were still another checkpoint's (last.ckpt of that epoch)
        assert art.kind == "checkpoint" and "epoch" in art.metadata and "step" in art.metadata
    assert released >= 1


def test_log_checkpoints_all_keeps_superseded(store, tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=1)
    train, val = loaders()
    trainer([ckpt, AutotrackCallback(uri=store, log_checkpoints="all")], enable_checkpointing=True).fit(
        Regressor(lr=0.01), train, val)
    superseded = [a for a in autotrack.last_run(store).artifacts if a.metadata.get("superseded")]
    for art in superseded:
        assert art.metadata["kept"] is True and len(art.read_bytes()) == art.size


def test_final_model_without_checkpointing(store):
    train, val = loaders()
    model = Regressor()
    trainer([AutotrackCallback(uri=store)], max_epochs=1).fit(model, train, val)
    (art,) = autotrack.last_run(store).artifacts
    assert art.kind == "model"
    art.download("restored.ckpt")
    restored = Regressor.load_from_checkpoint("restored.ckpt")
    x = torch.randn(3, 4)
    assert torch.equal(restored.net(x), model.net(x))


def test_exception_fails_the_run_and_propagates(store):
    train, val = loaders()
    with pytest.raises(ValueError, match="loss exploded"):
        trainer([AutotrackCallback(uri=store)]).fit(Regressor(fail_at_epoch=1), train, val)
    run = autotrack.last_run(store)
    assert run.status == "failed" and "ValueError: loss exploded" in run.error
    assert [pt.epoch for pt in run.metrics["train_loss"]] == [0]


def test_keyboard_interrupt_is_killed(store):
    train, val = loaders()
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful stop + exit(1)
            trainer([AutotrackCallback(uri=store)]).fit(Regressor(interrupt_at_epoch=1), train, val)
    finally:
        signal.signal(signal.SIGINT, previous)
    run = autotrack.last_run(store)
    assert run.status == "killed" and "KeyboardInterrupt" in run.error


def test_autolog_one_run_per_fit_no_duplicates_callbacks_untouched(store):
    autotrack.autolog(uri=store)
    train, val = loaders()
    mine = [EarlyStopping(monitor="val_loss", patience=5)]
    t = L.Trainer(max_epochs=1, callbacks=mine, logger=False, enable_progress_bar=False,
                  enable_model_summary=False, enable_checkpointing=False)
    t.fit(Regressor(), train, val)
    t.fit(Regressor(), train, val)  # second fit: second run
    assert len(autotrack.runs(uri=store)) == 2
    assert len(mine) == 1 and isinstance(mine[0], EarlyStopping)
    assert not any(isinstance(c, AutotrackCallback) for c in t.callbacks)
    t2 = trainer([AutotrackCallback(uri=store)], max_epochs=1)  # user's own callback + autolog: one run
    t2.fit(Regressor(), train, val)
    assert len(autotrack.runs(uri=store)) == 3
    early = autotrack.last_run(store).params
    assert "early_stopping/stopped_epoch" not in early
    first = autotrack.runs(uri=store)[-1].params
    assert first["early_stopping/monitor"] == "val_loss" and "early_stopping/stopped_epoch" in first


def test_autolog_test_after_fit_lands_in_the_fit_run_and_checkpoint_taps_go(store, tmp_path):
    autotrack.autolog(uri=store)
    train, val = loaders()
    t = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    model = Regressor()
    t.fit(model, train, val)
    assert "save_checkpoint" not in vars(t) and "remove_checkpoint" not in vars(t.strategy)  # put back
    t.test(model, dataloaders=val, ckpt_path="best", verbose=False)  # loads the fit's checkpoint: no resume
    (run,) = autotrack.runs(uri=store)
    assert {"train_loss", "val_loss", "test_loss"} <= set(run.metrics) and run.status == "finished"
    assert any(a.kind == "checkpoint" for a in run.artifacts) and "resumed_from" not in run.tags


def test_test_after_fit_lands_in_the_fit_run(store):
    train, val = loaders()
    t = trainer([AutotrackCallback(uri=store)], max_epochs=1)
    model = Regressor()
    t.fit(model, train, val)
    t.test(model, dataloaders=val)
    (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and "test_loss" in run.metrics and "val_loss" in run.metrics
    other = trainer([AutotrackCallback(uri=store)])
    other.validate(Regressor(), dataloaders=val)  # no fit before: a run of its own
    assert len(autotrack.runs(uri=store)) == 2 and "val_loss" in autotrack.last_run(store).metrics


def test_user_run_wraps_fit_and_test(store):
    train, val = loaders()
    autotrack.autolog(uri=store)
    with autotrack.start_run(uri=store, name="mine") as run:
        t = trainer(max_epochs=1)
        t.fit(Regressor(), train, val)
        t.test(Regressor(), dataloaders=val)
    (rec,) = autotrack.runs(uri=store)
    assert rec.id == run.id and rec.framework == "lightning"
    assert {"train_loss", "val_loss", "test_loss"} <= set(rec.metrics)
    t.test(Regressor(), dataloaders=val, verbose=False)  # your run has ended: a run of its own, yours stays shut
    assert len(autotrack.runs(uri=store)) == 2 and len(autotrack.get_run(run.id, uri=store).metrics["test_loss"]) == 1


def test_resume_is_a_new_run_tagged_with_the_old_one(store, tmp_path):
    train, val = loaders()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "c", save_last=True)
    trainer([ckpt, AutotrackCallback(uri=store)], enable_checkpointing=True, max_epochs=1).fit(Regressor(), train, val)
    first = autotrack.last_run(store)
    trainer([AutotrackCallback(uri=store)], max_epochs=2).fit(Regressor(), train, val, ckpt_path=ckpt.last_model_path)
    second = autotrack.last_run(store)
    assert second.id != first.id
    assert second.tags["resumed_from"] == first.id
    assert second.tags["resumed_from_checkpoint"] == os.path.abspath(ckpt.last_model_path)


def _recorded(run, rename=None):
    """The run's points as a CSVLogger numbers them: name -> [(global_step - 1, value)] (Lightning's
    loggers count the step being done from 0; autotrack records the steps done, ``trainer.global_step``)."""
    return {(rename or {}).get(name, name): [(pt.step - 1, pytest.approx(pt.value)) for pt in points]
            for name, points in run.metrics.items() if name != "lr"}


def test_per_step_loss_recorded_by_default_at_the_trainers_cadence(store, tmp_path):
    class StepLoss(Regressor):
        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)  # Lightning's default in training_step: per step only
            return loss

    csv = CSVLogger(tmp_path)
    train, val = loaders()  # 4 batches an epoch, 12 steps
    L.Trainer(max_epochs=3, log_every_n_steps=3, logger=csv, default_root_dir=tmp_path,
              callbacks=[AutotrackCallback(uri=store)]).fit(StepLoss(), train, val)
    received = csv_received(csv)
    assert [s for s, _ in received["train_loss"]] == [2, 5, 8, 11]
    run = autotrack.last_run(store)
    assert _recorded(run)["train_loss"] == received["train_loss"]
    assert [pt.epoch for pt in run.metrics["train_loss"]] == [0, 1, 2, 2]


@pytest.mark.parametrize("settings", [
    dict(max_epochs=2, log_every_n_steps=1, accumulate_grad_batches=2, val_check_interval=0.5),
    dict(max_steps=11, log_every_n_steps=3, val_check_interval=3, enable_checkpointing=True),  # stops mid-epoch
], ids=["accumulate-validate-twice", "max-steps"])
def test_every_value_the_loggers_receive_same_steps_same_values(store, tmp_path, settings):
    class Logs(Regressor):
        def training_step(self, batch, batch_idx):
            self.log("seen", float(batch_idx + 10 * self.current_epoch))  # per step only
            self.log("acc", float(batch_idx), on_step=False, on_epoch=True)  # per epoch only: the mean
            return super().training_step(batch, batch_idx)  # train_loss: per step and per epoch

        def on_train_epoch_end(self):
            self.log("epoch_hook", float(self.current_epoch))  # logged after the callbacks' hook

        def on_validation_epoch_end(self):
            self.log("val_hook", 1.0 + self.current_epoch)

    csv = CSVLogger(tmp_path)
    train, val = loaders(batch_size=8)  # 8 batches an epoch
    trainer = L.Trainer(logger=csv, default_root_dir=tmp_path, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[AutotrackCallback(uri=store)], **settings)
    trainer.fit(Logs(), train, val)
    received = csv_received(csv)
    assert set(received) == {"seen", "acc", "train_loss_step", "train_loss_epoch", "epoch_hook", "val_loss", "val_hook"}
    run = autotrack.last_run(store)
    assert _recorded(run, rename={"train_loss": "train_loss_epoch"}) == received
    assert [pt.epoch for pt in run.metrics["acc"]] == [0, 1] and run.metrics["acc"][0].value == 3.5


def test_own_log_every_n_steps_overrides_the_trainers(store, tmp_path):
    class StepOnly(Regressor):
        def training_step(self, batch, batch_idx):
            self.log("seen", float(batch_idx + 10 * self.current_epoch))
            return super().training_step(batch, batch_idx)

    train, val = loaders()
    trainer([AutotrackCallback(uri=store, log_every_n_steps=2)], max_epochs=2, log_every_n_steps=1).fit(
        StepOnly(), train, val)
    m = autotrack.last_run(store).metrics
    assert [(pt.step, pt.epoch, pt.value) for pt in m["seen"]] == [(2, 0, 1.0), (4, 0, 3.0), (6, 1, 11.0), (8, 1, 13.0)]
    assert [pt.step for pt in m["train_loss_step"]] == [2, 4, 6, 8]
    assert [pt.epoch for pt in m["train_loss"]] == [0, 1]  # the epoch means are unchanged
    trainer([AutotrackCallback(uri=store)], max_epochs=2, log_every_n_steps=0).fit(StepOnly(), train, val)
    m = autotrack.last_run(store).metrics  # the Trainer logs no steps: neither do we
    assert "seen" not in m and "train_loss_step" not in m and [pt.epoch for pt in m["train_loss"]] == [0, 1]


def test_manual_optimization_steps_like_the_loggers(store, tmp_path):
    class TwoOptimizers(Regressor):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            x, y = batch
            for opt in self.optimizers():  # two optimizer steps a batch, like a GAN
                loss = torch.nn.functional.mse_loss(self.net(x), y)
                opt.zero_grad()
                self.manual_backward(loss)
                opt.step()
            self.log("g_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01), torch.optim.SGD(self.parameters(), lr=0.01)

    csv = CSVLogger(tmp_path)
    train, val = loaders()
    trainer([AutotrackCallback(uri=store)], max_epochs=2, log_every_n_steps=3, logger=csv).fit(
        TwoOptimizers(), train, val)
    received = csv_received(csv)["g_loss"]
    points = autotrack.last_run(store).metrics["g_loss"]
    assert [s for s, _ in received] == [2, 5] and [pt.step for pt in points] == [6, 12]  # optimizer steps
    assert [pt.value for pt in points] == pytest.approx([v for _, v in received])


def test_early_stopping_recorded(store):
    train, val = loaders()
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=1e9)  # stops after the 2nd epoch
    trainer([stop, AutotrackCallback(uri=store)], max_epochs=10).fit(Regressor(), train, val)
    p = autotrack.last_run(store).params
    assert p["early_stopping/stopped_epoch"] == stop.stopped_epoch > 0
    assert p["early_stopping/best_score"] == pytest.approx(float(stop.best_score))
    assert autotrack.last_run(store).status == "finished"


def test_failing_backend_cannot_stop_fit(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    autotrack.register_backend("deadlightning", DeadStore, clobber=True)
    train, val = loaders()
    model = Regressor()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "c")
    with pytest.warns(autotrack.AutotrackWarning):
        t = trainer([ckpt, AutotrackCallback(uri="deadlightning://x")], enable_checkpointing=True, max_epochs=2)
        t.fit(model, train, val)
    assert t.current_epoch == 2 and os.path.exists(ckpt.best_model_path)


def test_bad_option_fails_at_construction():
    with pytest.raises(ValueError, match="log_every_n_steps"):
        AutotrackCallback(log_every_n_steps=0)


def test_nan_loss_recorded_faithfully(store):
    class NanModel(Regressor):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", torch.tensor(float("nan")))

    train, val = loaders()
    trainer([AutotrackCallback(uri=store)], max_epochs=1).fit(NanModel(), train, val)
    assert math.isnan(autotrack.last_run(store).final_metrics["val_loss"])


def test_datamodule_hparams_and_loaders(store):
    class DataModule(L.LightningDataModule):
        def __init__(self, batch_size: int = 16, lr: float = 9.0):
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return loaders(self.hparams.batch_size)[0]

        def val_dataloader(self):
            return loaders()[1]

    trainer([AutotrackCallback(uri=store)], max_epochs=1).fit(Regressor(), datamodule=DataModule(batch_size=8))
    run = autotrack.last_run(store)
    assert run.params["batch_size"] == 8
    assert run.params["lr"] == 0.05 and run.params["datamodule/lr"] == 9.0, "a clashing key keeps both"
    assert run.data["train"]["batch_size"] == 8 and run.data["train"]["batches"] == 8
