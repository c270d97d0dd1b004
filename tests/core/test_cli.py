"""The ``autotrack`` command line: output a user reads, strict JSON, and one-line errors."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autotrack
from autotrack.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _strict_json(text: str) -> Any:
    def reject(token: str) -> Any:
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=reject)


def _one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("autotrack: error: "), err
    assert "Traceback" not in err


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("AUTOTRACK_URI", "AUTOTRACK_EXPERIMENT", "AUTOTRACK_DEBUG", "AUTOTRACK_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # the default store ./autotrack-runs must not be anyone's real one
    monkeypatch.setattr(sys, "argv", ["train.py"])  # no git capture of whatever repo pytest runs in


@pytest.fixture
def recorded(tmp_path: Path) -> dict[str, Any]:
    """Three runs: ``first`` and ``second`` (finished, experiment churn) and ``broken`` (failed)."""
    uri = str(tmp_path / "store")
    model = tmp_path / "model.bin"
    model.write_bytes(bytes(range(256)) * 10)
    ids = {}
    for name, lr, rows in (("first", 0.1, 10), ("second", 0.01, 12)):
        with autotrack.start_run(name=name, uri=uri, experiment="churn",
                                 params={"lr": lr, "layers": [64, 64], "note": "[red]not markup"},
                                 tags={"team": "ml"}) as run:
            run.log_seeds({"random.seed": 7})
            for step in range(3):
                run.log_metrics({"loss": 1.0 / (step + 1) + lr, "val_loss": 2.0 / (step + 1)}, step=step)
            run.log_metric("train_acc", math.nan, step=3)
            run.log_data("train", np.arange(rows, dtype=np.float32).reshape(-1, 2))
            run.log_artifact(model, kind="model", metadata={"epoch": 3})
        ids[name] = run.id
    with pytest.raises(RuntimeError):
        with autotrack.start_run(name="broken", uri=uri) as run:
            raise RuntimeError("loss diverged")
    ids["broken"] = run.id
    return {"uri": uri, "ids": ids, "model": model}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_table_newest_first(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "runs", "--uri", recorded["uri"])
    assert code == 0 and err == ""
    ids = recorded["ids"]
    assert out.index(ids["broken"][:8]) < out.index(ids["second"][:8]) < out.index(ids["first"][:8])
    assert ids["first"][:9] not in out  # ids are shown with 8 characters
    for word in ("finished", "failed", "churn", "manual", "val_loss", "loss"):
        assert word in out
    assert "framework: manual" in out  # the same for every run: said once above the table
    header = next(line for line in out.splitlines() if line.startswith("id "))
    assert header.index("val_loss") < header.index(" loss")  # validation metrics come first
    assert "0.43333" in out and "0.34333" in out


def test_runs_filters_and_limit(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "runs", "--uri", recorded["uri"], "--status", "failed")
    assert code == 0 and "broken" in out and "first" not in out
    code, out, _ = _run(capsys, "runs", "--uri", recorded["uri"], "--experiment", "churn", "--limit", "1")
    assert code == 0 and "second" in out and "first" not in out and "broken" not in out
    assert "1 of 2 runs shown" in out
    code, out, _ = _run(capsys, "runs", "--uri", recorded["uri"], "--experiment", "nope")
    assert code == 0 and "No runs with experiment 'nope'" in out


def test_runs_json_global_options_before_or_after(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, before, _ = _run(capsys, "--json", "--uri", recorded["uri"], "runs")
    assert code == 0
    code, after, _ = _run(capsys, "runs", "--json", "--uri", recorded["uri"])
    assert code == 0
    data = _strict_json(before)
    assert [r["id"] for r in data] == [r["id"] for r in _strict_json(after)]
    assert [r["name"] for r in data] == ["broken", "second", "first"]
    first = data[2]
    assert first["params"] == {"lr": 0.1, "layers": [64, 64], "note": "[red]not markup"}
    assert first["metrics"]["val_loss"] == pytest.approx(2.0 / 3)
    assert first["metrics"]["train_acc"] == "NaN"  # strict JSON: non-finite floats as strings
    assert first["status"] == "finished" and data[0]["status"] == "failed"


def test_runs_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "runs", "--uri", str(tmp_path / "empty"))
    assert code == 0 and "No runs in" in out and err == ""
    code, out, _ = _run(capsys, "runs", "--json", "--uri", str(tmp_path / "empty"))
    assert code == 0 and _strict_json(out) == []
    assert not (tmp_path / "empty").exists()  # reading never creates a store


def test_default_uri_from_environment(recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOTRACK_URI", recorded["uri"])
    code, out, _ = _run(capsys, "runs")
    assert code == 0 and "first" in out


def test_show(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    run_id = recorded["ids"]["first"]
    code, out, err = _run(capsys, "show", run_id, "--uri", recorded["uri"])
    assert code == 0 and err == ""
    assert run_id in out and "first" in out and "churn" in out and "finished" in out
    assert "[red]not markup" in out and "[64, 64]" in out  # user text is never read as markup
    assert "team=ml" in out
    for section in ("params", "metrics", "seeds", "data", "artifacts", "environment"):
        assert section in out
    art = autotrack.get_run(run_id, uri=recorded["uri"]).artifact("model.bin")
    assert art.sha256[:12] in out and "2.5 KiB" in out and "epoch=3" in out
    assert "5x2" in out and "float32" in out  # the data fingerprint
    assert "random.seed" in out
    assert "python" in out and "hostname" in out
    assert "Traceback" not in out


def test_show_failed_run_prints_its_traceback(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "last", "--uri", recorded["uri"])
    assert code == 0
    assert "broken" in out and "failed" in out
    assert "RuntimeError: loss diverged" in out  # the run's own error, recorded


def test_show_json_and_prefix(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    run_id = recorded["ids"]["second"]
    code, out, _ = _run(capsys, "--json", "show", run_id[:6], "--uri", recorded["uri"])
    assert code == 0
    data = _strict_json(out)
    assert data["id"] == run_id and data["name"] == "second"
    assert [p["value"] for p in data["metrics"]["val_loss"]] == pytest.approx([2.0, 1.0, 2.0 / 3])
    assert data["metrics"]["train_acc"][0]["value"] == "NaN"
    assert data["data"]["train"]["shape"] == [6, 2]
    assert data["artifacts"][0]["name"] == "model.bin"


def test_last(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "--json", "last", "--uri", recorded["uri"])
    assert code == 0 and _strict_json(out)["id"] == recorded["ids"]["broken"]


def test_diff(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    ids = recorded["ids"]
    code, out, err = _run(capsys, "diff", ids["first"], ids["second"][:10], "--uri", recorded["uri"])
    assert code == 0 and err == ""
    for word in ("params", "lr", "0.1", "0.01", "metrics", "loss", "data", "train/sha256", "train/rows"):
        assert word in out
    assert "val_loss" not in out and "layers" not in out  # equal: not shown
    code, out, _ = _run(capsys, "--json", "diff", ids["first"], ids["second"], "--uri", recorded["uri"])
    data = _strict_json(out)
    assert data["params"] == {"lr": [0.1, 0.01]}
    assert data["data"]["train/rows"] == [5, 6]
    assert "train_acc" not in data.get("metrics", {})  # NaN == NaN
    code, out, _ = _run(capsys, "diff", ids["first"], ids["first"], "--uri", recorded["uri"])
    assert code == 0 and "no differences" in out
    code, out, _ = _run(capsys, "diff", "--json", ids["first"], ids["first"], "--uri", recorded["uri"])
    assert _strict_json(out) == {}


def test_get_writes_identical_bytes(recorded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "out" / "copy.bin"
    code, out, err = _run(capsys, "get", recorded["ids"]["first"], "model.bin", "-o", str(dest), "--uri", recorded["uri"])
    assert code == 0 and err == ""
    assert dest.read_bytes() == recorded["model"].read_bytes()
    art = autotrack.get_run(recorded["ids"]["first"], uri=recorded["uri"]).artifact("model.bin")
    assert str(dest) in out and art.sha256 in out
    folder = tmp_path / "folder"
    folder.mkdir()
    code, out, _ = _run(capsys, "--json", "--uri", recorded["uri"], "get", "second", "model.bin", "-o", str(folder))
    assert code == 1  # "second" is a name, not an id
    code, out, _ = _run(capsys, "--json", "--uri", recorded["uri"], "get", recorded["ids"]["second"], "model.bin",
                        "-o", str(folder))
    assert code == 0
    data = _strict_json(out)
    assert data == {"path": str(folder / "model.bin"), "sha256": art.sha256, "size": 2560}
    assert (folder / "model.bin").read_bytes() == recorded["model"].read_bytes()


def test_get_unknown_artifact_lists_the_known_ones(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "get", recorded["ids"]["first"], "nope.pt", "--uri", recorded["uri"])
    assert code == 1
    _one_line_error(err)
    assert "nope.pt" in err and "model.bin" in err


def test_unknown_run_and_empty_store_errors(recorded: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "ffffffffff", "--uri", recorded["uri"])
    assert code == 1 and out == ""
    _one_line_error(err)
    assert "ffffffffff" in err and recorded["uri"] in err
    code, _, err = _run(capsys, "show", "last", "--uri", str(tmp_path / "empty"))
    assert code == 1
    _one_line_error(err)
    assert "no runs" in err


def test_ambiguous_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    counter = itertools.count(1)
    uri = str(tmp_path / "store")
    with monkeypatch.context() as patch:  # two run ids that share the prefix "abcd"
        patch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=(0xABCD << 112) + next(counter)))
        for name in ("one", "two"):
            with autotrack.start_run(name=name, uri=uri):
                pass
    code, out, err = _run(capsys, "show", "abcd", "--uri", uri)
    assert code == 1 and out == ""
    _one_line_error(err)
    assert "abcd" in err and "2 runs" in err


def test_unknown_scheme_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--uri", "foo://x", "runs"], ["show", "last", "--uri", "foo://x"]):
        code, out, err = _run(capsys, *argv)
        assert code == 1 and out == ""
        _one_line_error(err)
        assert "foo://" in err


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show"], ["bogus"], ["runs", "--limit", "-1"], ["runs", "--status", "done"],
                 ["diff", "a"], ["serve", "--port", "http"], ["runs", "--nope"]):
        code, out, err = _run(capsys, *argv)
        assert code == 2, argv
        _one_line_error(err)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "runs" in out and "diff" in out and "last" in out
    code, out, _ = _run(capsys, "get", "--help")
    assert code == 0 and "-o" in out
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and autotrack.__version__ in out
    code, out, _ = _run(capsys)
    assert code == 2 and "usage" in out


def test_unexpected_error_is_one_line_unless_debugging(recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import autotrack.cli as cli

    def boom(args: Any) -> int:
        raise RuntimeError("something odd\non two lines")

    monkeypatch.setattr(cli, "_cmd_runs", boom)
    code, _, err = _run(capsys, "runs", "--uri", recorded["uri"])
    assert code == 1
    _one_line_error(err)
    assert "RuntimeError" in err and "AUTOTRACK_DEBUG=1" in err
    monkeypatch.setenv("AUTOTRACK_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["runs", "--uri", recorded["uri"]])


def _subprocess(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_") and k != "COLUMNS"}
    full_env["PYTHONPATH"] = SRC + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "autotrack", *argv], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_python_dash_m_end_to_end(recorded: dict[str, Any]) -> None:
    proc = _subprocess("runs", "--uri", recorded["uri"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "first" in proc.stdout and "second" in proc.stdout and "broken" in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour codes into a pipe
    proc = _subprocess("show", "zzzz", "--uri", recorded["uri"])
    assert proc.returncode == 1
    _one_line_error(proc.stderr)


def test_cli_import_is_light() -> None:
    code = ("import sys, autotrack.cli; heavy = [m for m in ('rich', 'numpy', 'fsspec', 'pandas') if m in sys.modules];"
            "print(heavy); assert not heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_user_text_is_never_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    with autotrack.start_run(name="[bold]x", uri=uri, params={"[red]p": "[/]"}) as run:
        run.log_metrics({"val_[b]acc": 0.5})
    code, out, err = _run(capsys, "runs", "--uri", uri)
    assert code == 0 and err == ""
    assert "val_[b]acc" in out and "[bold]x" in out
    code, out, err = _run(capsys, "show", "last", "--uri", uri)
    assert code == 0 and err == ""
    assert "[red]p" in out and "[/]" in out and "val_[b]acc" in out


def test_get_refuses_corrupted_bytes(recorded: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    art = autotrack.get_run(recorded["ids"]["first"], uri=recorded["uri"]).artifact("model.bin")
    stored = Path(recorded["uri"]) / "artifacts" / art.sha256[:2] / art.sha256  # the file store's layout
    stored.chmod(0o644)
    stored.write_bytes(b"tampered")
    dest = tmp_path / "copy.bin"
    code, out, err = _run(capsys, "get", "last", "model.bin", "-o", str(dest), "--uri", recorded["uri"])
    assert code == 1  # "last" is the failed run: no artifacts
    _one_line_error(err)
    code, out, err = _run(capsys, "get", recorded["ids"]["first"], "model.bin", "-o", str(dest), "--uri", recorded["uri"])
    assert code == 1 and out == ""
    _one_line_error(err)
    assert "sha256" in err
    assert not dest.exists()


def _break(uri: str, run_id: str, relpath: str, data: bytes) -> None:
    path = Path(uri) / "runs" / run_id / relpath  # the file store's layout
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_corrupt_run_in_runs_and_show(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    uri, first = recorded["uri"], recorded["ids"]["first"]
    _break(uri, first, "run.json", b'{"id": "' + first.encode() + b'", "start_time": "yesterday"}')
    code, out, err = _run(capsys, "runs", "--uri", uri)
    assert code == 0 and err == ""
    assert "corrupt" in out and f"runs/{first}/run.json" in out and "start_time" in out
    assert "second" in out and "broken" in out  # the others as before
    code, out, err = _run(capsys, "runs", "-s", "corrupt", "--json", "--uri", uri)
    assert code == 0
    (row,) = _strict_json(out)
    assert row["id"] == first and row["status"] == "corrupt"
    assert row["problems"] == [{"file": f"runs/{first}/run.json",
                                "reason": row["problems"][0]["reason"]}] and "yesterday" in row["problems"][0]["reason"]
    code, out, err = _run(capsys, "show", first[:8], "--uri", uri)
    assert code == 0 and err == ""
    assert "corrupt" in out and f"runs/{first}/run.json" in out and 'start_time "yesterday"' in out
    assert "model.bin" in out and "val_loss" in out and "random.seed" in out  # what could be read
    code, out, err = _run(capsys, "get", first, "model.bin", "-o", str(Path(uri).parent / "m.bin"), "--uri", uri)
    assert code == 0 and err == ""  # its artifacts are in its (readable) events
    code, out, _ = _run(capsys, "show", recorded["ids"]["second"], "--uri", uri)
    assert code == 0 and "could not be used" not in out and f"runs/{first}" not in out


def test_skipped_segment_named_by_show_and_get(recorded: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    uri, second = recorded["uri"], recorded["ids"]["second"]
    _break(uri, second, "events/00000099.json", b'{"seq": 99, "artifacts": [{"name": "x"}]}')
    code, out, err = _run(capsys, "show", second, "--uri", uri)
    assert code == 0 and err == ""
    assert f"runs/{second}/events/00000099.json" in out and "sha256" in out
    assert "finished" in out and "model.bin" in out
    code, _, err = _run(capsys, "get", second, "x", "--uri", uri)
    assert code == 1
    _one_line_error(err)
    assert "events/00000099.json" in err


def test_get_released_or_lost_artifact_says_which(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    for name in ("epoch=1.ckpt", "epoch=3.ckpt"):
        (tmp_path / name).write_bytes(name.encode())
    with autotrack.start_run(uri=uri) as run:
        run.log_artifact(tmp_path / "epoch=1.ckpt", name="checkpoints/epoch=1.ckpt", kind="checkpoint")
        run.log_artifact(tmp_path / "epoch=3.ckpt", name="checkpoints/epoch=3.ckpt", kind="checkpoint")
        run.update_artifact("checkpoints/epoch=1.ckpt",
                            {"superseded": True, "kept": False, "superseded_by": "checkpoints/epoch=3.ckpt"})
    code, out, err = _run(capsys, "get", run.id, "checkpoints/epoch=1.ckpt", "-o", str(tmp_path / "x"), "--uri", uri)
    assert code == 1 and out == ""
    _one_line_error(err)
    assert (f"artifact 'checkpoints/epoch=1.ckpt' of run {run.id[:8]} was released: superseded by "
            "checkpoints/epoch=3.ckpt") in err
    sha = autotrack.get_run(run.id, uri=uri).artifact("epoch=3.ckpt").sha256
    (tmp_path / "store" / "artifacts" / sha[:2] / sha).unlink()
    code, out, err = _run(capsys, "get", run.id, "epoch=3.ckpt", "-o", str(tmp_path / "x"), "--uri", uri)
    assert code == 1
    _one_line_error(err)
    assert "'checkpoints/epoch=3.ckpt'" in err and run.id[:8] in err and "missing from the store" in err
    assert f"artifacts/{sha[:2]}/{sha}" not in err  # the store's URI, not a path inside it
    assert not (tmp_path / "x").exists()


def test_text_with_no_utf8_form_is_printed_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A lone surrogate (kept by the writer from an undecodable file name) cannot be written as
    UTF-8: it is printed as its \\udcxx escape, and the other runs are listed as usual."""
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri, name="fine") as other:
        other.log_metric("x", 1.0)
    with autotrack.start_run(uri=uri, name="bad\udc80name") as run:  # stored as the JSON escape "\udc80"
        run.log_metric("x", 2.0)
    code, out, err = _run(capsys, "runs", "--json", "--uri", uri)
    assert code == 0 and err == ""
    assert {r["name"] for r in _strict_json(out)} == {"fine", "bad\udc80name"}  # the JSON escape, read back
    code, out, err = _run(capsys, "runs", "--uri", uri)
    assert code == 0 and "fine" in out and "bad\\udc80name" in out
    code, out, err = _run(capsys, "show", run.id, "--uri", uri)
    assert code == 0 and "bad\\udc80name" in out
