"""The command line as a new user meets it: every failure says what is wrong, with the user's
paths, on one line and with a non-zero exit; ``sync`` tries every run; ``get`` never overwrites
silently; a typo gets a "did you mean"."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import autotrack
from autotrack._errors import AmbiguousArtifactError, ArtifactNotFoundError
from autotrack.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("AUTOTRACK_URI", "AUTOTRACK_EXPERIMENT", "AUTOTRACK_DEBUG", "AUTOTRACK_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "argv", ["train.py"])  # no git capture of whatever repo pytest runs in


def _cli(cwd: Path, *argv: str, umask: int | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``autotrack ARGV`` as a user types it, in ``cwd``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_") and k != "COLUMNS"}
    full["PYTHONPATH"] = SRC + os.pathsep + full.get("PYTHONPATH", "")
    full["AUTOTRACK_SPOOL_DIR"] = str(cwd / "spool")
    full.update(env)
    return subprocess.run([sys.executable, "-m", "autotrack", *argv], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=120, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("autotrack: error: "), err
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".")]


@pytest.fixture
def two_models(tmp_path: Path) -> dict[str, Any]:
    """A run with two artifacts whose file names are both ``model.safetensors``."""
    uri = str(tmp_path / "store")
    with autotrack.start_run(name="ckpts", uri=uri) as run:
        for step in (1, 2):
            folder = tmp_path / f"checkpoint-{step}"
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"weights %d" % step)
            run.log_artifact(folder / "model.safetensors", name=f"checkpoint-{step}/model.safetensors")
    return {"uri": uri, "id": run.id}


# -- sync ------------------------------------------------------------------------------------
class NoCredentialsError(Exception):
    """What botocore raises without credentials: not an OSError, not a ValueError."""


class _NoCredentialsStore:
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _fail(self, *args: Any) -> Any:
        raise NoCredentialsError("Unable to locate credentials")

    create_run = update_run = append = put_artifact = list_runs = read_segments = open_artifact = _fail


def _spool(run: Any, store: str, spool: Path, meant_for: str) -> Path:
    """Put a recorded run into the spool folder as the writer leaves it (for the store ``meant_for``)."""
    src = Path(store) / "runs" / run.id
    dest = spool / run.id
    shutil.copytree(src, dest)
    (dest / ".uri").write_text(meant_for)
    return dest


def test_sync_tries_every_run_and_reports_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    autotrack.register_backend("nocreds", _NoCredentialsStore, clobber=True)
    scratch, target, spool = str(tmp_path / "scratch"), str(tmp_path / "target"), tmp_path / "spool"
    ids = []
    for name in ("one", "two", "three"):
        with autotrack.start_run(name=name, uri=scratch) as run:
            run.log_metrics({"loss": 1.0}, step=0)
        ids.append(run.id)
    _spool(autotrack.get_run(ids[0], scratch), scratch, spool, "nocreds://bucket/runs")
    _spool(autotrack.get_run(ids[1], scratch), scratch, spool, target)
    _spool(autotrack.get_run(ids[2], scratch), scratch, spool, "htp://typo")
    code = main(["sync", str(spool)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in err
    assert [r.id for r in autotrack.runs(uri=target)] == [ids[1]], "the good run was delivered"
    assert not (spool / ids[1]).exists()
    assert (spool / ids[0]).is_dir() and (spool / ids[2]).is_dir(), "failed runs are kept"
    errors = [line for line in err.splitlines() if line.startswith("autotrack: error: ")]
    assert len(errors) == 2, err
    (creds,) = [line for line in errors if ids[0][:8] in line]
    assert "nocreds://bucket/runs" in creds and "NoCredentialsError" in creds and "Unable to locate" in creds
    (typo,) = [line for line in errors if ids[2][:8] in line]
    assert "htp://typo" in typo and "http://" in typo
    assert ids[1][:8] in out and target in out  # which run went where
    assert "1 failed" not in out and "2 failed" in out


def test_sync_json_lists_every_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    autotrack.register_backend("nocreds", _NoCredentialsStore, clobber=True)
    scratch, spool = str(tmp_path / "scratch"), tmp_path / "spool"
    with autotrack.start_run(uri=scratch) as run:
        pass
    _spool(run, scratch, spool, "nocreds://b")
    assert main(["sync", "--json", str(spool)]) == 1
    report = json.loads(capsys.readouterr().out)
    (failed,) = report["failed"]
    assert failed["run"] == run.id and failed["uri"] == "nocreds://b" and "NoCredentialsError" in failed["error"]


def test_sync_missing_folder_or_a_store_is_an_error(tmp_path: Path, two_models: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    proc = _cli(tmp_path, "sync", str(tmp_path / "nonexistent"))
    assert proc.returncode == 1
    assert "does not exist" in _one_line_error(proc.stderr) and str(tmp_path / "nonexistent") in proc.stderr
    (tmp_path / "afile").write_text("x")
    assert main(["sync", str(tmp_path / "afile")]) == 1
    assert "not a folder" in _one_line_error(capsys.readouterr().err)
    # a run store given by mistake: refused, and nothing in it touched (sync deletes what it delivers)
    before = sorted(p.relative_to(two_models["uri"]) for p in Path(two_models["uri"]).rglob("*"))
    assert main(["sync", two_models["uri"]]) == 1
    assert "run store" in _one_line_error(capsys.readouterr().err)
    assert sorted(p.relative_to(two_models["uri"]) for p in Path(two_models["uri"]).rglob("*")) == before
    # the default spool folder not made yet: nothing was ever saved, nothing to do
    assert not os.path.exists(os.environ["AUTOTRACK_SPOOL_DIR"])
    assert main(["sync"]) == 0
    assert "nothing to sync" in capsys.readouterr().out


def test_sync_help_says_what_uri_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "each run was meant for" in out
    assert "./autotrack-runs" not in out.split("--uri", 1)[1].split("--json")[0]


# -- unusable stores ---------------------------------------------------------------------------
def test_a_file_as_the_store_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "passwd"
    afile.write_text("root:x:0:0\n")
    proc = _cli(tmp_path, "--uri", str(afile), "runs")
    assert proc.returncode == 1
    line = _one_line_error(proc.stderr)
    assert str(afile) in line and "not a folder" in line
    assert main(["show", "last", "--uri", str(afile)]) == 1
    assert "not a folder" in _one_line_error(capsys.readouterr().err)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "runs").write_text("")
    assert main(["--uri", str(broken), "runs"]) == 1
    assert "runs" in _one_line_error(capsys.readouterr().err)
    assert main(["--uri", str(tmp_path / "empty"), "runs"]) == 0  # empty but valid: no runs yet
    out, err = capsys.readouterr()
    assert "No runs" in out and err == ""


# -- report ----------------------------------------------------------------------------------
def test_report_into_a_directory_and_errors_name_the_users_path(tmp_path: Path, two_models: dict[str, Any]) -> None:
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    proc = _cli(tmp_path, "report", "last", "-o", str(out_dir), "--uri", two_models["uri"])
    assert proc.returncode == 0, proc.stderr
    assert (out_dir / "report.html").read_text().startswith("<!doctype html>")
    assert str(out_dir / "report.html") in proc.stdout
    assert _leftovers(tmp_path) == []
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    wanted = blocker / "dir" / "r.html"
    proc = _cli(tmp_path, "report", "last", "-o", str(wanted), "--uri", two_models["uri"])
    assert proc.returncode == 1
    line = _one_line_error(proc.stderr)
    assert str(wanted) in line and ".tmp" not in line
    assert _leftovers(tmp_path) == []


def test_report_write_leaves_nothing_behind_on_failure(tmp_path: Path, two_models: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import autotrack._output as output
    from autotrack._errors import IntegrityError
    from autotrack.ui._report import write_report

    record = autotrack.get_run(two_models["id"], uri=two_models["uri"])
    wanted = tmp_path / "out" / "r.html"

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied", src)

    with monkeypatch.context() as patch:
        patch.setattr(output.os, "replace", refuse)
        with pytest.raises(PermissionError) as info:
            write_report([record], wanted)
    assert str(info.value) == f"cannot write {wanted}: Permission denied"
    assert not wanted.exists() and _leftovers(tmp_path) == []

    def chunks():  # the bytes turn out wrong half-way: that error, as it is, and no file
        yield b"half"
        raise IntegrityError("stored bytes do not match")

    with pytest.raises(IntegrityError):
        output.write_file(str(wanted), chunks())
    assert not wanted.exists() and _leftovers(tmp_path) == []


# -- get ---------------------------------------------------------------------------------------
def test_ambiguous_artifact_name_lists_the_matches(tmp_path: Path, two_models: dict[str, Any]) -> None:
    record = autotrack.get_run(two_models["id"], uri=two_models["uri"])
    with pytest.raises(AmbiguousArtifactError) as info:
        record.artifact("model.safetensors")
    assert isinstance(info.value, ArtifactNotFoundError) and isinstance(info.value, LookupError)
    assert "checkpoint-1/model.safetensors" in str(info.value) and "checkpoint-2/model.safetensors" in str(info.value)
    assert record.artifact("checkpoint-2/model.safetensors").read_bytes() == b"weights 2"
    proc = _cli(tmp_path, "get", "last", "model.safetensors", "--uri", two_models["uri"])
    assert proc.returncode == 1
    line = _one_line_error(proc.stderr)
    assert "ambiguous" in line and "checkpoint-1/model.safetensors" in line and "checkpoint-2/model.safetensors" in line
    assert "has no artifact" not in line
    assert not (tmp_path / "model.safetensors").exists()


def test_get_uses_the_usual_file_mode_and_never_overwrites_silently(tmp_path: Path,
                                                                   two_models: dict[str, Any]) -> None:
    art = "checkpoint-1/model.safetensors"
    proc = _cli(tmp_path, "get", "last", art, "--uri", two_models["uri"], umask=0o022)
    assert proc.returncode == 0, proc.stderr
    dest = tmp_path / "model.safetensors"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    dest.write_bytes(b"my own file")
    proc = _cli(tmp_path, "get", "last", art, "--uri", two_models["uri"])
    assert proc.returncode == 1
    line = _one_line_error(proc.stderr)
    assert str(dest) in line and "--force" in line
    assert dest.read_bytes() == b"my own file"
    proc = _cli(tmp_path, "get", "last", art, "-o", str(dest), "--force", "--uri", two_models["uri"])
    assert proc.returncode == 0, proc.stderr
    assert dest.read_bytes() == b"weights 1"
    assert _leftovers(tmp_path) == []


def test_download_overwrites_by_default_unless_asked_not_to(tmp_path: Path, two_models: dict[str, Any]) -> None:
    art = autotrack.get_run(two_models["id"], uri=two_models["uri"]).artifact("checkpoint-2/model.safetensors")
    dest = tmp_path / "weights.bin"
    dest.write_bytes(b"old")
    assert art.download(dest) == str(dest) and dest.read_bytes() == b"weights 2"
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError) as info:
        art.download(dest, overwrite=False)
    assert str(dest) in str(info.value) and dest.read_bytes() == b"old"
    new = str(tmp_path / "sub" / "dir") + os.sep  # a folder to make, said with a trailing slash
    assert art.download(new) == str(tmp_path / "sub" / "dir" / "model.safetensors")
    assert _leftovers(tmp_path) == []


# -- typos and options that do nothing ----------------------------------------------------------
def test_mistyped_command_gets_did_you_mean(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "sho", "last")
    assert proc.returncode == 2
    assert "did you mean 'show'" in _one_line_error(proc.stderr)


def test_mistyped_choice_and_option_get_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--status", "finshed"]) == 2
    assert "did you mean 'finished'" in _one_line_error(capsys.readouterr().err)
    assert main(["runs", "--limt", "3"]) == 2
    assert "did you mean '--limit'" in _one_line_error(capsys.readouterr().err)


def test_ui_and_serve_refuse_json(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["ui", "--json"], ["--json", "ui"], ["serve", "--json"], ["--json", "serve"]):
        assert main(argv) == 2, argv
        assert "--json" in _one_line_error(capsys.readouterr().err)


def test_typo_in_a_uri_scheme_suggests_the_known_one(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "--uri", "htp://tracking:8080", "runs")
    assert proc.returncode == 1
    assert "did you mean http://" in _one_line_error(proc.stderr)
