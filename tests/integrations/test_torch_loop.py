"""Plain PyTorch loops under ``autotrack.autolog()``: real tiny trainings with no logging code but
``log_metrics``, asserted through what autotrack reads back."""

from __future__ import annotations

import io
import warnings

import pytest

import autotrack
from autotrack._autolog import is_on
from autotrack._capture.data import fingerprint
from autotrack._safety import AutotrackWarning
from autotrack.backends import register_backend
from tests.core.helpers import only_run, python
from tests.dead_store import DeadStore

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import autotrack._run as run_module  # noqa: E402
from autotrack import _events  # noqa: E402
from autotrack.integrations._common import FitRecorder  # noqa: E402

ORIGINALS = {"torch.save": torch.save, "serialization.save": torch.serialization.save,
             "DataLoader.__iter__": DataLoader.__dict__["__iter__"], "Run.finish": run_module.Run.__dict__["finish"],
             "_run.start_run": run_module.start_run, "FitRecorder.begin": FitRecorder.__dict__["begin"]}

from autotrack.integrations import torch as adapter  # noqa: E402
from autotrack.integrations.torch import log_metrics  # noqa: E402


def unpatched() -> bool:
    now = {"torch.save": torch.save, "serialization.save": torch.serialization.save,
           "DataLoader.__iter__": DataLoader.__dict__["__iter__"], "Run.finish": run_module.Run.__dict__["finish"],
           "_run.start_run": run_module.start_run, "FitRecorder.begin": FitRecorder.__dict__["begin"]}
    # autotrack's own functions are never patched: the adapter listens to _events instead
    no_listeners = not any(fn.__module__ == adapter.__name__ for event in _events.EVENTS for fn in _events.listeners(event))
    return all(now[k] is v for k, v in ORIGINALS.items()) and adapter._hook is None and no_listeners


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)  # ends a run the adapter started (finished), before conftest's cleanup
    assert unpatched() and not is_on("torch") and adapter._session is None


@pytest.fixture
def on(store):
    autotrack.autolog(uri=store, frameworks=["torch"])
    return store



def end_run():
    """What the end of the process does (tests cannot exit): finish the active run."""
    autotrack.active_run().finish()


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]))


def make_model(hidden=8):
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def train(model, opt, loader, epochs=2, sched=None, val=None, save=None):
    for epoch in range(epochs):
        for x, y in loader:
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            log_metrics({"loss": loss})
        if sched is not None:
            sched.step()
        if val is not None:
            with torch.no_grad():
                log_metrics({"val_loss": sum(nn.functional.mse_loss(model(x), y) for x, y in val) / len(val)})
        if save:
            torch.save(model.state_dict(), save)


def test_a_plain_loop_is_recorded_with_no_logging_code(on, tmp_path):
    torch.manual_seed(11)
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    loader = DataLoader(data(), batch_size=16, shuffle=True, num_workers=0)
    val = DataLoader(data(16, seed=1), batch_size=8)
    for _ in loader:
        pass  # a look at the data before training: no run yet
    assert autotrack.active_run() is None
    train(model, opt, loader, epochs=3, sched=sched, val=val, save=tmp_path / "last.pt")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    assert autotrack.active_run() is not None and autotrack.active_run().framework == "torch"
    end_run()

    run = only_run(on)
    assert run.status == "finished" and run.framework == "torch" and run.name.startswith("torch-")
    p = run.params
    assert p["optimizer/name"] == "AdamW" and p["optimizer/class"] == "torch.optim.AdamW"
    assert p["optimizer/lr"] == 0.02 and p["optimizer/weight_decay"] == 0.05 and p["optimizer/betas"] == [0.9, 0.999]
    assert p["optimizer/params"] == 49 and p["optimizer/tensors"] == 4
    assert p["model/class"] == "torch.nn.Sequential" and p["model/params_total"] == 49
    assert p["model/params_trainable"] == 49 and p["model/dtype"] == "float32"
    assert p["lr_scheduler/name"] == "StepLR" and p["lr_scheduler/gamma"] == 0.5
    assert p["determinism/deterministic_algorithms"] is False and "determinism/cudnn_benchmark" in p
    assert p["amp/autocast"] is False
    # lr as it changed under the scheduler: the value each step used, at the step and epoch it changed
    assert [(pt.step, pt.epoch, pt.value) for pt in run.metrics["lr"]] == [(0, 0, 0.02), (4, 1, 0.01), (8, 2, 0.005)]
    assert [(pt.step, pt.epoch) for pt in run.metrics["loss"]][:5] == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1)]
    assert [(pt.step, pt.epoch) for pt in run.metrics["val_loss"]] == [(4, 0), (8, 1), (12, 2)]
    assert run.metrics["optimizer_steps"][-1].value == 12 and run.metrics["epochs"][-1].value == 3
    train_data = run.data["train"]
    assert train_data["batch_size"] == 16 and train_data["shuffle"] is True and train_data["num_workers"] == 0
    assert train_data["samples"] == 64 and train_data["batches"] == 4 and train_data["dataset"].endswith("TensorDataset")
    assert train_data["sha256"] == fingerprint(tuple(loader.dataset.tensors))["sha256"]
    assert run.data["eval"]["batch_size"] == 8 and run.data["eval"]["shuffle"] is False
    assert run.seeds["torch.manual_seed"] == 11
    checkpoints = {a.name: a for a in run.artifacts}
    last, ckpt = checkpoints["checkpoints/last.pt"], checkpoints["checkpoints/ckpt.pt"]
    assert last.kind == "checkpoint" and last.metadata["contents"] == "state_dict" and last.metadata["epoch"] == 2
    assert ckpt.metadata == {"step": 12, "epoch": 2, "contents": "checkpoint", "source": "torch.save"}
    with last.open() as f:
        state = torch.load(io.BytesIO(f.read()))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_param_groups_several_optimizers_and_models(on):
    """A GAN-shaped loop: two models, two optimizers (one with two param groups)."""
    gen, disc = make_model(), nn.Linear(1, 1)
    opt_g = torch.optim.SGD([{"params": gen[0].parameters(), "lr": 0.1},
                             {"params": gen[2].parameters(), "lr": 0.01, "momentum": 0.9}], lr=0.5)
    opt_d = torch.optim.Adam(disc.parameters(), lr=0.001)
    for x, y in DataLoader(data(), batch_size=32):
        loss = nn.functional.mse_loss(disc(gen(x)), y)
        opt_g.zero_grad(), opt_d.zero_grad()
        loss.backward()
        opt_g.step()
        opt_d.step()
        opt_g.param_groups[1]["lr"] *= 0.5
    end_run()
    run = only_run(on)
    p = run.params
    assert p["optimizer/name"] == "SGD" and p["optimizer/pg0/lr"] == 0.1 and p["optimizer/pg1/momentum"] == 0.9
    assert p["optimizer/pg0/params"] == 40 and p["optimizer/pg1/params"] == 9
    assert p["optimizer_1/name"] == "Adam" and p["optimizer_1/lr"] == 0.001
    assert p["model/class"] == "torch.nn.Sequential" and p["model_1/class"] == "torch.nn.Linear"
    assert p["model_1/params_total"] == 2
    assert [pt.value for pt in run.metrics["lr/pg0"]] == [0.1]
    assert [(pt.step, pt.value) for pt in run.metrics["lr/pg1"]] == [(0, 0.01), (1, 0.005)]
    assert [pt.value for pt in run.metrics["lr-Adam-1"]] == [0.001]
    assert run.metrics["optimizer_steps"][-1].value == 2 and run.metrics["optimizer_1_steps"][-1].value == 2


class Trainer:
    """A loop inside a class: the model is an attribute of ``self``, wrapped in DataParallel."""

    def __init__(self):
        self.model = nn.DataParallel(make_model(16))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05)

    def fit(self, loader):
        for x, y in loader:
            self.opt.zero_grad()
            nn.functional.mse_loss(self.model(x), y).backward()
            self.opt.step()


def test_the_model_is_found_on_self_and_unwrapped(on):
    Trainer().fit(DataLoader(data(), batch_size=32))
    end_run()
    p = only_run(on).params
    assert p["model/class"] == "torch.nn.Sequential" and p["model/wrappers"] == ["torch.nn.DataParallel"]
    assert p["model/params_total"] == 4 * 16 + 16 + 16 + 1


def test_amp_autocast_and_grad_scaler(on):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=50)
    for x, y in DataLoader(data(), batch_size=16):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.mse_loss(model(x).float(), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    end_run()
    run = only_run(on)
    p = run.params
    assert p["amp/autocast"] is True and p["amp/autocast_dtype"] == "bfloat16" and p["amp/autocast_device"] == "cpu"
    assert p["amp/grad_scaler"] is True and p["amp/init_scale"] == 256.0 and p["amp/growth_interval"] == 50
    assert run.metrics["amp/scale"][-1].value == scaler.get_scale()
    assert run.metrics["optimizer_steps"][-1].value == 4


def test_a_run_the_user_started_is_used_and_keeps_its_owner(on):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with autotrack.start_run(name="mine", uri=on, params={"note": "manual"}) as run:
        for i, (x, y) in enumerate(DataLoader(data(), batch_size=16)):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            run.log_metrics({"loss": loss.item()}, step=i + 1)  # the one line the docs ask for
        assert autotrack.active_run() is run  # the adapter never ends a run it did not start
    record = only_run(on)
    assert record.name == "mine" and record.framework == "torch" and record.status == "finished"
    assert record.params["note"] == "manual" and record.params["optimizer/name"] == "SGD"
    assert len(record.metrics["loss"]) == 4 and record.metrics["optimizer_steps"][-1].value == 4
    # after the user's run, the next step starts a run of its own
    opt.step()
    assert autotrack.active_run() is not None and autotrack.active_run().id != record.id
    end_run()
    assert len(autotrack.runs(uri=on)) == 2


def test_the_next_start_run_ends_the_loops_run(on):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt, DataLoader(data(), batch_size=32), epochs=1)
    first = autotrack.active_run()
    with autotrack.start_run(name="evaluation", uri=on) as second:
        assert first.status == "finished"
    records = {r.name: r for r in autotrack.runs(uri=on)}
    assert records["evaluation"].parent_id is None and records["evaluation"].id == second.id
    assert records[first.name].metrics["optimizer_steps"][-1].value == 2
    train(model, opt, DataLoader(data(), batch_size=32), epochs=1)  # a new loop run
    third = autotrack.active_run()
    start_run = ORIGINALS["_run.start_run"]  # as `from autotrack import start_run` before autolog() got it
    with start_run(name="imported-early", uri=on) as fourth:
        assert third.status == "finished" and third is not first
    assert autotrack.get_run(fourth.id, uri=on).parent_id is None


def test_log_every_n_steps_and_a_per_step_scheduler(store):
    autotrack.autolog(uri=store, frameworks=["torch"], log_every_n_steps=4)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (step + 1))
    for x, y in DataLoader(data(), batch_size=4):  # 16 steps, a new lr each
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
    end_run()
    lr = only_run(store).metrics["lr"]
    assert [(pt.step, round(pt.value, 6)) for pt in lr] == [(0, 0.1), (4, 0.02), (8, round(0.1 / 9, 6)),
                                                             (12, round(0.1 / 13, 6))]


def test_log_metrics_before_the_first_step_and_without_a_run(store, recwarn):
    log_metrics({"loss": 1.0})  # autolog off, no run: one warning, nothing recorded
    assert any(issubclass(w.category, AutotrackWarning) for w in recwarn)
    autotrack.autolog(uri=store, frameworks=["torch"])
    log_metrics({"initial_val_loss": torch.tensor(3.5)})  # kept for the run the first step starts
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt, DataLoader(data(), batch_size=32), epochs=1)
    end_run()
    run = only_run(store)
    assert [(pt.step, pt.value) for pt in run.metrics["initial_val_loss"]] == [(0, 3.5)]
    assert [pt.step for pt in run.metrics["loss"]] == [1, 2]


def test_only_checkpoints_saved_to_a_path_are_recorded(on, tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.save(model.state_dict(), tmp_path / "before.pt")  # before the first step: no run yet
    train(model, opt, DataLoader(data(), batch_size=32), epochs=1)
    torch.save(model.state_dict(), io.BytesIO())  # a file object: no path to record
    torch.save(torch.randn(3), tmp_path / "embedding.pt")  # a tensor is not a checkpoint
    torch.save(model, tmp_path / "model.pt")
    torch.save(opt.state_dict(), str(tmp_path / "opt.pt"))
    with open(tmp_path / "best.pt", "wb") as f:  # as pytorch/examples' word_language_model saves
        torch.save(model.state_dict(), f)
    for _ in range(2):
        torch.save(model.state_dict(), tmp_path / "last.pt")  # the same file written again
    end_run()
    arts = {a.name: a for a in only_run(on).artifacts}
    assert sorted(arts) == ["checkpoints/best.pt", "checkpoints/last.pt", "checkpoints/model.pt", "checkpoints/opt.pt"]
    assert arts["checkpoints/model.pt"].metadata["contents"] == "module"
    assert arts["checkpoints/opt.pt"].metadata["contents"] == "optimizer_state"
    with arts["checkpoints/best.pt"].open() as f:
        assert f.read() == (tmp_path / "best.pt").read_bytes()


def test_log_checkpoints_false_and_register_as(store, tmp_path):
    autotrack.autolog(uri=store, frameworks=["torch"], log_checkpoints=False)
    model = make_model()
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1,
          save=tmp_path / "a.pt")
    end_run()
    assert only_run(store).artifacts == []
    autotrack.autolog(uri=store, frameworks=["torch"], register_as="regressor")
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1,
          save=tmp_path / "b.pt")
    end_run()
    version = autotrack.get_model("regressor@latest", uri=store)
    assert version.artifact == "checkpoints/b.pt" and version.run.id == autotrack.last_run(uri=store).id


def test_lightning_drives_torch_itself_one_run_not_two(store):
    L = pytest.importorskip("lightning")
    from tests.integrations.lightning_models import loaders, module_class

    autotrack.autolog(uri=store)  # every framework: lightning and torch
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt, DataLoader(data(), batch_size=32), epochs=1)  # a plain loop first: its own run
    loop_run = autotrack.active_run()
    train_loader, val_loader = loaders()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module_class(L.pytorch)(), train_loader, val_loader)
    assert loop_run.status == "finished" and autotrack.active_run() is None
    runs = {r.framework: r for r in autotrack.runs(uri=store)}
    assert sorted(runs) == ["lightning", "torch"], [(r.framework, r.name) for r in autotrack.runs(uri=store)]
    assert runs["torch"].metrics["optimizer_steps"][-1].value == 2
    assert "optimizer_steps" not in runs["lightning"].metrics and "determinism/cudnn_benchmark" not in runs["lightning"].params


def test_transformers_trainer_is_left_to_its_adapter(store, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=8, max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(0, 50, (8,), generator=g), "labels": i % 2} for i in range(16)]
    autotrack.autolog(uri=store)
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), num_train_epochs=1,
                                          per_device_train_batch_size=8, report_to=[], save_strategy="no",
                                          use_cpu=True, disable_tqdm=True)
    transformers.Trainer(model=model, args=args, train_dataset=rows).train()
    assert autotrack.active_run() is None
    runs = autotrack.runs(uri=store)
    assert [r.framework for r in runs] == ["transformers"]


def test_failing_backend_cannot_stop_training(monkeypatch):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    register_backend("dead", DeadStore, clobber=True)
    torch.manual_seed(0)
    expected = make_model()
    train(expected, torch.optim.SGD(expected.parameters(), lr=0.1), DataLoader(data(), batch_size=16), epochs=2)
    autotrack.autolog(uri="dead://x", frameworks=["torch"])
    torch.manual_seed(0)
    model = make_model()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=16), epochs=2)
        end_run()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.state_dict().values()))


def test_a_bug_in_autotrack_never_reaches_the_loop(store, lenient, monkeypatch):
    from autotrack.integrations import _torch_describe

    def broken(*args, **kwargs):
        raise RuntimeError("a bug inside autotrack")

    monkeypatch.setattr(_torch_describe, "optimizer_params", broken)
    monkeypatch.setattr(_torch_describe, "loader_info", broken)
    monkeypatch.setattr(_torch_describe, "checkpoint_contents", broken)
    autotrack.autolog(uri=store, frameworks=["torch"])
    model = make_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=16), epochs=2,
              save="x.pt")
    assert any(issubclass(w.category, AutotrackWarning) and "a bug inside autotrack" in str(w.message) for w in caught)
    assert set(autotrack.error_counts()) >= {"torch: recording an optimizer", "torch: recording a data loader",
                                              "torch: recording a checkpoint"}


def test_other_ranks_and_autotrack_disable_record_nothing(store, monkeypatch):
    autotrack.autolog(uri=store, frameworks=["torch"])
    model = make_model()
    monkeypatch.setenv("RANK", "1")
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("AUTOTRACK_DISABLE", "1")
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1)
    assert autotrack.active_run() is None and autotrack.runs(uri=store) == []


def test_hooks_only_while_autolog_is_on(store):
    assert unpatched()
    adapter.autolog(uri=store, log_every_n_steps=2)  # = autotrack.autolog(frameworks=["torch"], ...)
    assert not unpatched() and is_on("torch") and not is_on("lightning")
    assert (run_module.start_run, FitRecorder.__dict__["begin"], run_module.Run.__dict__["finish"]) == (
        ORIGINALS["_run.start_run"], ORIGINALS["FitRecorder.begin"], ORIGINALS["Run.finish"])  # core left as is
    assert _events.listeners("run_finishing")
    model = make_model()
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1)
    assert adapter._session.every == 2
    adapter.autolog(disable=True)  # the loop's run ends with it
    assert unpatched() and autotrack.active_run() is None
    assert only_run(store).status == "finished"
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data(), batch_size=32), epochs=1)
    assert autotrack.active_run() is None and len(autotrack.runs(uri=store)) == 1


def test_the_run_ends_with_the_process(store, tmp_path):
    script = f"""
        import sys, torch, autotrack
        from torch import nn
        autotrack.autolog(uri={store!r})

        def main():  # the model and optimizer are gone when the process ends: their totals are not
            model = nn.Linear(2, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for i in range(3):
                opt.zero_grad()
                model(torch.ones(4, 2)).sum().backward()
                opt.step()
            if sys.argv[-1] == "fail":
                raise ValueError("diverged")

        main()
    """
    ok = python(script, timeout=120)
    assert ok.returncode == 0, ok.stderr[-3000:]
    failed = python(script.replace('sys.argv[-1] == "fail"', "True"), timeout=120)
    assert failed.returncode == 1 and "diverged" in failed.stderr
    runs = {r.status: r for r in autotrack.runs(uri=store)}
    assert sorted(runs) == ["failed", "finished"]
    assert runs["finished"].metrics["optimizer_steps"][-1].value == 3 and runs["finished"].framework == "torch"
    assert "ValueError: diverged" in runs["failed"].error


def test_a_new_dataloader_each_epoch_over_the_same_data_is_one_loader(on):
    dataset, model = data(), make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        for x, y in DataLoader(dataset, batch_size=32, shuffle=True):  # a temporary loader, gone after iter()
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            log_metrics({"epoch_seen": epoch})
    end_run()
    run = only_run(on)
    assert list(run.data) == ["train"] and run.data["train"]["shuffle"] is True
    assert [pt.epoch for pt in run.metrics["epoch_seen"]] == [0, 0, 1, 1, 2, 2]
    assert run.metrics["epochs"][-1].value == 3


def test_a_loop_inside_an_optuna_trial_records_into_the_trials_run(store):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    autotrack.autolog(uri=store, frameworks=["torch", "optuna"])

    def objective(trial):
        model = make_model()
        opt = torch.optim.SGD(model.parameters(), lr=trial.suggest_float("lr", 0.01, 0.1))
        train(model, opt, DataLoader(data(), batch_size=32), epochs=1)
        return nn.functional.mse_loss(model(data().tensors[0]), data().tensors[1]).item()

    optuna.create_study(study_name="search").optimize(objective, n_trials=2)
    assert autotrack.active_run() is None
    runs = autotrack.runs(uri=store)
    parent = next(r for r in runs if r.name == "search")
    trials = [r for r in runs if r.parent_id == parent.id]
    assert len(runs) == 3 and len(trials) == 2
    for trial in trials:
        assert trial.framework == "torch" and trial.params["optimizer/lr"] == trial.params["lr"]
        assert trial.metrics["optimizer_steps"][-1].value == 2 and len(trial.metrics["loss"]) == 2


def test_autolog_then_import_torch_enables_it_and_imports_nothing_more():
    proc = python("""
        import sys, autotrack
        from autotrack import _autolog
        autotrack.autolog()
        assert "torch" not in sys.modules and not _autolog.is_on("torch")
        import torch
        assert _autolog.is_on("torch")
        print(",".join(m for m in ("lightning", "pytorch_lightning", "transformers", "keras", "tensorflow",
                                   "sklearn", "xgboost", "optuna", "ray", "pandas") if m in sys.modules))
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""


def test_an_accelerate_loop_is_the_users_and_recorded(on):
    accelerate = pytest.importorskip("accelerate")
    acc = accelerate.Accelerator(cpu=True)
    model = make_model()
    model, opt, loader = acc.prepare(model, torch.optim.AdamW(model.parameters(), lr=0.01),
                                     DataLoader(data(), batch_size=16, shuffle=True))
    for x, y in loader:
        loss = nn.functional.mse_loss(model(x), y)
        acc.backward(loss)
        opt.step()
        opt.zero_grad()
    end_run()
    run = only_run(on)
    assert run.params["optimizer/name"] == "AdamW" and run.params["model/class"] == "torch.nn.Sequential"
    assert run.data["train"]["shuffle"] is True and run.data["train"]["batch_size"] == 16
    assert run.metrics["optimizer_steps"][-1].value == 4
