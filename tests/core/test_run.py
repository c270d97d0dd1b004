"""Recording through ``start_run``: what a custom training loop gets, read back through the public API."""

from __future__ import annotations

import dataclasses
import enum
import math
import pathlib
import threading
import time

import numpy as np
import pytest

import autotrack
from autotrack.backends import register_backend
from autotrack.backends.file import FileStore


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Opt:
    lr: float = 0.1
    betas: tuple = (0.9, 0.99)


def my_callable(x):
    return x


def test_context_manager_records_everything(store, tmp_path):
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\x00weights\xff" * 100)
    with autotrack.start_run(name="first", uri=store, experiment="exp", params={"lr": 0.01}, tags={"team": "a"}) as run:
        assert autotrack.active_run() is run
        run.log_params({"layers": [64, 64], "opt": {"name": "adam", "eps": 1e-8}})
        for step in range(10):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step * 10, epoch=step // 5)
        run.log_artifact(weights, kind="model", metadata={"epoch": 2})
        run.set_tags({"stage": "dev"})
    assert autotrack.active_run() is None
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.name == "first" and rec.experiment == "exp" and rec.status == "finished"
    assert rec.framework is None and rec.parent_id is None
    assert rec.params == {"lr": 0.01, "layers": [64, 64], "opt/name": "adam", "opt/eps": 1e-8}
    assert isinstance(rec.params["lr"], float)
    assert rec.tags == {"team": "a", "stage": "dev"}
    points = rec.metrics["loss"]
    assert [p.step for p in points] == list(range(0, 100, 10))
    assert [p.epoch for p in points] == [0] * 5 + [1] * 5
    assert points[-1].value == pytest.approx(0.1)
    assert all(p.timestamp > 0 for p in points)
    assert rec.start_time.tzinfo is not None and rec.end_time >= rec.start_time
    (art,) = rec.artifacts
    assert (art.name, art.kind, art.size, art.metadata) == ("model.pt", "model", 900, {"epoch": 2})
    assert art.read_bytes() == weights.read_bytes()
    assert rec.error is None
    env = rec.environment
    assert {"python", "platform", "hardware", "packages", "command"} <= set(env)
    assert "pytest" in env["packages"]


def test_step_defaults_to_a_counter(store):
    with autotrack.start_run(uri=store) as run:
        for _ in range(3):
            run.log_metrics({"a": 1})
    assert [p.step for p in autotrack.last_run(store).metrics["a"]] == [0, 1, 2]


def test_odd_values_are_recorded_faithfully(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"nan": float("nan"), "inf": math.inf, "ninf": -math.inf, "np32": np.float32(0.25),
                         "np64": np.float64(2.5), "npint": np.int64(7), "arr0d": np.array(3.5), "bool": True,
                         "ключ 🙂": 1.0}, step=0)
        run.log_params({
            "color": Color.RED, "path": pathlib.Path("/data/x.csv"), "opt": Opt(), "cls": Opt,
            "fn": my_callable, "arr": np.arange(3), "big": np.zeros((100, 100)), "np": np.float32(0.5),
            "nan": float("nan"), "none": None, "学习率": 0.1, "set": {3, 1},
        })
    rec = autotrack.last_run(store)
    m = rec.final_metrics
    assert math.isnan(m["nan"]) and m["inf"] == math.inf and m["ninf"] == -math.inf
    assert m["np32"] == 0.25 and m["np64"] == 2.5 and m["npint"] == 7 and m["arr0d"] == 3.5 and m["bool"] == 1
    assert type(m["npint"]) is int and m["ключ 🙂"] == 1.0
    p = rec.params
    assert p["color"] == "Color.RED" and p["path"] == "/data/x.csv"
    assert p["opt/lr"] == 0.1 and p["opt/betas"] == [0.9, 0.99]
    assert p["cls"].endswith("Opt") and p["fn"].endswith("my_callable")
    assert p["arr"] == [0, 1, 2]
    assert p["big"] == {"type": "numpy.ndarray", "shape": [100, 100], "dtype": "float64"}
    assert p["np"] == 0.5 and math.isnan(p["nan"]) and p["none"] is None
    assert p["学习率"] == 0.1 and p["set"] == [1, 3]


def test_param_logged_twice_keeps_latest_and_history(store):
    with autotrack.start_run(uri=store) as run:
        run.log_params({"lr": 0.1})
        run.log_params({"lr": 0.01})
    rec = autotrack.last_run(store)
    assert rec.params["lr"] == 0.01
    assert [v for v, _ in rec.param_history["lr"]] == [0.1, 0.01]


def test_non_numeric_metric_is_a_clear_error(store):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(TypeError, match="metric .loss. must be a number"):
            run.log_metrics({"loss": "low"})


def test_bad_artifact_kind_and_missing_file_are_clear_errors(store, tmp_path):
    with autotrack.start_run(uri=store) as run:
        with pytest.raises(ValueError, match="kind"):
            run.log_artifact(__file__, kind="weights")
        with pytest.raises(FileNotFoundError):
            run.log_artifact(tmp_path / "nope.bin")


def test_artifact_survives_deletion_right_after_logging(store, tmp_path):
    ckpt = tmp_path / "epoch=1.ckpt"
    ckpt.write_bytes(b"checkpoint bytes")
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(ckpt, kind="checkpoint")
        ckpt.unlink()  # e.g. ModelCheckpoint's top-k rotation deletes it at once
    (art,) = autotrack.last_run(store).artifacts
    assert art.read_bytes() == b"checkpoint bytes"


def test_directory_artifact(store, tmp_path):
    folder = tmp_path / "checkpoint-10"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "w.bin").write_bytes(b"w")
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(folder, kind="checkpoint", metadata={"step": 10})
        run.update_artifact("checkpoint-10", {"superseded": True})  # the whole directory
    arts = {a.name: a for a in autotrack.last_run(store).artifacts}
    assert set(arts) == {"checkpoint-10/config.json", "checkpoint-10/sub/w.bin"}
    assert arts["checkpoint-10/sub/w.bin"].metadata == {"step": 10, "group": "checkpoint-10", "superseded": True}
    assert arts["checkpoint-10/config.json"].metadata["superseded"] is True


def test_update_artifact_metadata(store, tmp_path):
    f = tmp_path / "a.ckpt"
    f.write_bytes(b"a")
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(f, kind="checkpoint", metadata={"epoch": 0})
        run.update_artifact("a.ckpt", {"superseded": True})
    (art,) = autotrack.last_run(store).artifacts
    assert art.metadata == {"epoch": 0, "superseded": True}


def test_exception_marks_failed_and_propagates_unchanged(store):
    error = ValueError("boom")
    with pytest.raises(ValueError) as caught:
        with autotrack.start_run(uri=store) as run:
            run.log_metrics({"loss": 1.0})
            raise error
    assert caught.value is error
    rec = autotrack.last_run(store)
    assert rec.status == "failed"
    assert "ValueError: boom" in rec.error and "Traceback" in rec.error
    assert rec.metrics["loss"][0].value == 1.0


def test_keyboard_interrupt_marks_killed(store):
    with pytest.raises(KeyboardInterrupt):
        with autotrack.start_run(uri=store):
            raise KeyboardInterrupt
    assert autotrack.last_run(store).status == "killed"


def test_explicit_finish_and_idempotence(store):
    run = autotrack.start_run(uri=store)
    run.finish(status="killed")
    run.finish()  # no effect
    assert autotrack.get_run(run.id, uri=store).status == "killed"
    with pytest.raises(ValueError):
        autotrack.start_run(uri=store).finish(status="done")


def test_nested_run_is_a_child(store):
    with autotrack.start_run(uri=store, experiment="grid") as parent:
        with autotrack.start_run() as child:
            assert autotrack.active_run() is child
        assert autotrack.active_run() is parent
    rec = autotrack.get_run(child.id, uri=store)
    assert rec.parent_id == parent.id and rec.experiment == "grid"


class _ThreadRecordingStore(FileStore):
    threads: set[str] = set()

    def append(self, run_id, seq, segment):
        type(self).threads.add(threading.current_thread().name)
        super().append(run_id, seq, segment)

    def update_run(self, run_id, doc):
        type(self).threads.add(threading.current_thread().name)
        super().update_run(run_id, doc)

    def create_run(self, doc):
        type(self).threads.add(threading.current_thread().name)
        super().create_run(doc)

    def put_artifact(self, path):
        type(self).threads.add(threading.current_thread().name)
        return super().put_artifact(path)


def test_no_store_io_on_the_calling_thread(tmp_path):
    register_backend("threadcheck", lambda uri: _ThreadRecordingStore(str(tmp_path / "s")), clobber=True)
    with autotrack.start_run(uri="threadcheck://x") as run:
        for i in range(1000):
            run.log_metrics({"loss": i}, step=i)
        run.log_artifact(__file__)
        run.flush()
    assert _ThreadRecordingStore.threads
    assert all(name.startswith("autotrack-writer") for name in _ThreadRecordingStore.threads)
    assert len(autotrack.last_run(str(tmp_path / "s")).metrics["loss"]) == 1000


def test_flush_makes_data_visible_while_running(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 0.5}, step=1)
        assert run.flush()
        live = autotrack.get_run(run.id, uri=store)
        assert live.status == "running"
        assert live.metrics["loss"][0].value == 0.5


def test_periodic_flush_without_asking(store, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_FLUSH_SECONDS", "0.3")
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 0.5}, step=1)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                if autotrack.get_run(run.id, uri=store).metrics.get("loss"):
                    break
            except autotrack.RunNotFoundError:
                pass  # the writer has not created the run yet
            time.sleep(0.1)
        else:
            pytest.fail("metrics were not written within 5 s without a flush")


def test_data_fingerprint(store):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    with autotrack.start_run(uri=store) as run:
        run.log_data("train", x, split="train")
    data = autotrack.last_run(store).data["train"]
    assert data["shape"] == [4, 3] and data["dtype"] == "float32" and data["split"] == "train"
    assert len(data["sha256"]) == 64


def test_disabled_records_nothing(store, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_DISABLE", "1")
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 1})
        run.log_params({"a": 1})
    assert autotrack.active_run() is None
    assert autotrack.runs(uri=store) == []


def test_release_artifact_frees_bytes_but_keeps_the_record(store, tmp_path):
    a, b = tmp_path / "epoch=0.ckpt", tmp_path / "epoch=1.ckpt"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(a, kind="checkpoint")
        run.log_artifact(b, kind="checkpoint")
        run.release_artifact("epoch=0.ckpt")
    arts = {x.name: x for x in autotrack.last_run(store).artifacts}
    assert arts["epoch=0.ckpt"].metadata == {"superseded": True, "kept": False, "superseded_by": None}
    with pytest.raises(autotrack.ArtifactNotFoundError, match="released"):
        arts["epoch=0.ckpt"].read_bytes()
    assert arts["epoch=1.ckpt"].read_bytes() == b"second"


def test_reopen_a_finished_run(store):
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 1.0}, step=0)
    assert autotrack.get_run(run.id, uri=store).status == "finished"
    with run.reopen():
        assert autotrack.active_run() is run
        run.log_metrics({"test_loss": 0.5}, step=1)
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished" and rec.final_metrics == {"loss": 1.0, "test_loss": 0.5}
    assert len(rec.environment) > 0
    with pytest.raises(RuntimeError):
        with run.reopen():
            raise RuntimeError("test crashed")
    assert autotrack.get_run(run.id, uri=store).status == "failed"


def test_release_a_directory_frees_each_file_unless_shared(store, tmp_path):
    for step in (1, 2):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "weights.bin").write_bytes(f"weights {step}".encode())
        (folder / "config.json").write_text("{}")  # identical in both folders
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(tmp_path / "checkpoint-1", kind="checkpoint")
        run.log_artifact(tmp_path / "checkpoint-2", kind="checkpoint")
        run.release_artifact("checkpoint-1")
    arts = {a.name: a for a in autotrack.last_run(store).artifacts}
    assert arts["checkpoint-1/weights.bin"].metadata["kept"] is False
    with pytest.raises(autotrack.ArtifactNotFoundError, match="released"):
        arts["checkpoint-1/weights.bin"].read_bytes()
    assert arts["checkpoint-1/config.json"].metadata["kept"] is True  # checkpoint-2 still has these bytes
    assert arts["checkpoint-2/weights.bin"].read_bytes() == b"weights 2"


def test_artifact_logged_again_after_release_starts_clean(store, tmp_path):
    f = tmp_path / "last.ckpt"
    f.write_bytes(b"epoch 0")
    with autotrack.start_run(uri=store) as run:
        run.log_artifact(f, kind="checkpoint", metadata={"epoch": 0})
        run.flush()
        f.write_bytes(b"epoch 1")  # rewritten in place, as a trainer does with last.ckpt
        run.release_artifact("last.ckpt")
        run.log_artifact(f, kind="checkpoint", metadata={"epoch": 1})
    (art,) = autotrack.last_run(store).artifacts
    assert art.metadata == {"epoch": 1} and art.read_bytes() == b"epoch 1"
