"""``pytorch_lightning`` users are served like ``lightning`` users; DDP records one run from rank 0."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import autotrack

pl = pytest.importorskip("pytorch_lightning")

from autotrack.integrations.lightning import AutotrackCallback  # noqa: E402

from .lightning_models import loaders, module_class  # noqa: E402

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.path.dirname(TESTS), "src")


def _trainer(**kwargs):
    return pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", devices=1, **kwargs)


def test_pytorch_lightning_callback_and_checkpoints(store, tmp_path):
    # the callback subclasses the Callback class of each namespace already imported when
    # autotrack's module was; Trainers of the other namespace accept it by duck typing
    model_cls = module_class(pl)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "c", monitor="val_loss")
    train, val = loaders()
    _trainer(callbacks=[ckpt, AutotrackCallback(uri=store)]).fit(model_cls(), train, val)
    run = autotrack.last_run(store)
    assert run.framework == "lightning" and run.status == "finished"
    assert [p.epoch for p in run.metrics["val_loss"]] == [0, 1]
    assert any(a.metadata.get("best") for a in run.artifacts)


def test_pytorch_lightning_autolog(store):
    autotrack.autolog(uri=store)
    try:
        train, val = loaders()
        pl.seed_everything(3)
        _trainer(enable_checkpointing=False).fit(module_class(pl)(), train, val)
    finally:
        autotrack.autolog(disable=True)
    run = autotrack.last_run(store)
    assert run.framework == "lightning" and run.seeds["lightning.seed_everything"] == 3
    assert [p.epoch for p in run.metrics["train_loss"]] == [0, 1]


def test_autolog_disable_restores_both_namespaces_trainer_methods(store):
    import lightning as L

    methods = ("fit", "validate", "test")
    originals = {(ns, m): vars(ns.Trainer)[m] for ns in (L.pytorch, pl) for m in methods}
    autotrack.autolog(uri=store)
    try:
        train, val = loaders()
        for ns in (L.pytorch, pl):
            t = ns.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False)
            t.fit(module_class(ns)(), train, val)
            t.validate(module_class(ns)(), dataloaders=val)
        assert all(vars(ns.Trainer)[m] is not originals[ns, m] for ns in (L.pytorch, pl) for m in methods)
    finally:
        autotrack.autolog(disable=True)
    assert all(vars(ns.Trainer)[m] is originals[ns, m] for ns in (L.pytorch, pl) for m in methods)
    assert len(autotrack.runs(uri=store)) == 2  # each validate() reopened its fit's run


def test_autolog_before_import_patches_each_namespace_when_imported(tmp_path):
    script = tmp_path / "late_import.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import autotrack
        autotrack.autolog(uri={str(tmp_path / "runs")!r})
        import lightning.pytorch as lp  # imported after autolog(): patched as it is imported
        import pytorch_lightning as pl  # the other namespace, later still (the callback class predates it)
        from integrations.lightning_models import loaders, module_class

        pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False).fit(
            module_class(pl)(), *loaders())
        assert "train_loss" in autotrack.last_run({str(tmp_path / "runs")!r}).metrics
        names = ("fit", "validate", "test")
        originals = {{(ns, m): vars(ns.Trainer)[m].__wrapped__ for ns in (lp, pl) for m in names}}
        autotrack.autolog(disable=True)
        assert all(vars(ns.Trainer)[m] is originals[ns, m] for ns, m in originals)
        print("ok")
    """))
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-4000:]


@pytest.mark.slow
def test_ddp_two_processes_record_one_complete_run(store, tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import autotrack
        import lightning as L
        from integrations.lightning_models import loaders, module_class

        autotrack.autolog(uri={store!r}, experiment="ddp")
        L.seed_everything(1)
        train, val = loaders()
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir={str(tmp_path)!r})
        trainer.fit(module_class(L.pytorch)(), train, val)
    """))
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and run.experiment == "ddp"
    assert run.params["trainer/devices"] == 2 and run.params["trainer/world_size"] == 2
    assert run.params["trainer/strategy"] == "DDPStrategy"
    assert [p.epoch for p in run.metrics["val_loss"]] == [0, 1]
    assert any(a.kind == "checkpoint" for a in run.artifacts)
