"""``autotrack models`` and ``autotrack model ...``, and ``autotrack diff`` over model references.

Runs are recorded through the public API into a store whose runs come from two commits of a
small git repository (so a version's code commit is real), then everything is read back through
the command line: in-process for most checks, and as a user types it (``python -m autotrack``
in a subprocess) for the register -> alias -> get flow and an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import autotrack
from autotrack.cli import main
from tests.core.test_cli import _strict_json

SRC = str(Path(__file__).resolve().parents[2] / "src")
GIT = shutil.which("git")


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotrack: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("AUTOTRACK_DEBUG", raising=False)


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs ``v1`` and ``v2`` (each with a model.bin of its own bytes), from two commits of a git
    repository when git is installed; ``plain`` has no model."""
    uri = str(tmp_path / "store")
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text("print('train')\n")
    commits = {}
    if GIT:
        _git(repo, "init", "-q")
        _git(repo, "add", "train.py")
        _git(repo, "commit", "-qm", "first")
    monkeypatch.setattr(sys, "argv", [str(script)])  # the run's git state: this repository's
    ids, blobs = {}, {}
    for name, lr, rows in (("v1", 0.1, [[1.0, 2.0]]), ("v2", 0.01, [[1.0, 2.0], [3.0, 4.0]])):
        if GIT and name == "v2":
            script.write_text("print('train better')\n")
            _git(repo, "commit", "-qam", "second")
        if GIT:
            commits[name] = _git(repo, "rev-parse", "HEAD")
        model = tmp_path / "out" / name / "model.bin"
        model.parent.mkdir(parents=True)
        blobs[name] = (name.encode() + b"-weights") * 500
        model.write_bytes(blobs[name])
        with autotrack.start_run(name=f"train-{name}", uri=uri, experiment="churn",
                                 params={"lr": lr, "layers": [64, 64]}) as run:
            run.log_data("train", rows)
            for step in range(3):
                run.log_metrics({"val_loss": 1.0 / (step + 1) + lr}, step=step)
            run.log_artifact(str(model), kind="model")
            ids[name] = run.id
    with autotrack.start_run(name="plain", uri=uri, experiment="churn") as run:
        ids["plain"] = run.id
    return {"uri": uri, "ids": ids, "blobs": blobs, "commits": commits, "tmp": tmp_path}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _registered(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """churn v1 (run v1) and v2 (run v2); production -> v1, then staging -> v2."""
    uri, ids = store["uri"], store["ids"]
    assert cli(capsys, "--uri", uri, "model", "register", "churn", ids["v1"][:6], "model.bin")[0] == 0
    assert cli(capsys, "--uri", uri, "model", "register", "churn", ids["v2"])[0] == 0  # the run's model
    assert cli(capsys, "--uri", uri, "model", "alias", "churn", "production", "1")[0] == 0
    assert cli(capsys, "--uri", uri, "model", "alias", "churn", "staging", "v2")[0] == 0


def test_register_alias_models_and_history(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    uri, ids = store["uri"], store["ids"]
    code, out, err = cli(capsys, "--uri", uri, "model", "register", "churn", ids["v1"][:6], "model.bin")
    assert code == 0, err
    sha1 = hashlib.sha256(store["blobs"]["v1"]).hexdigest()
    assert out.startswith(f"registered churn v1: model.bin of run {ids['v1'][:8]} (train-v1), sha256 {sha1[:12]}")
    code, out, _ = cli(capsys, "--uri", uri, "model", "register", "churn", ids["v2"], "--json",
                       "--metadata", "stage=candidate", "--metadata", "auc=0.91")
    v2 = _strict_json(out)
    assert code == 0 and v2["version"] == 2 and v2["run_id"] == ids["v2"] and v2["artifact"] == "model.bin"
    assert v2["sha256"] == hashlib.sha256(store["blobs"]["v2"]).hexdigest() and v2["size"] == len(store["blobs"]["v2"])
    assert v2["metadata"] == {"stage": "candidate", "auc": 0.91}

    code, out, _ = cli(capsys, "--uri", uri, "model", "alias", "churn", "production", "1")
    assert code == 0 and out.startswith("churn@production: v1 (run ") and ids["v1"][:8] in out
    code, out, _ = cli(capsys, "--uri", uri, "model", "alias", "churn", "production", "v2")
    assert code == 0 and out.startswith("churn@production: v1 → v2")
    code, out, _ = cli(capsys, "--uri", uri, "--json", "model", "alias", "churn", "staging", "1")
    moved = _strict_json(out)
    assert moved["version"] == 1 and moved["alias"] == "staging" and moved["previous"] is None

    code, out, _ = cli(capsys, "--uri", uri, "models")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("churn"))
    assert row.split()[:4] == ["churn", "2", "v2", ids["v2"][:8]]
    assert "production → v2, staging → v1" in row
    code, out, _ = cli(capsys, "--uri", uri, "models", "--json")
    (listed,) = _strict_json(out)
    assert listed["name"] == "churn" and listed["versions"] == 2
    assert listed["aliases"] == {"production": 2, "staging": 1}

    code, out, _ = cli(capsys, "--uri", uri, "model", "history", "churn")
    assert code == 0
    events = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [e.split()[0] for e in events] == ["0", "1", "2", "3", "4"]
    assert "registered v1" in events[0] and "registered v2" in events[1]
    assert "production → v1" in events[2] and "production: v1 → v2" in events[3] and "staging → v1" in events[4]
    code, out, _ = cli(capsys, "--uri", uri, "model", "history", "churn", "--json")
    history = _strict_json(out)
    assert [(e["action"], e["version"], e["alias"], e["previous"]) for e in history] == [
        ("register", 1, None, None), ("register", 2, None, None), ("set_alias", 1, "production", None),
        ("set_alias", 2, "production", 1), ("set_alias", 1, "staging", None)]
    assert all(e["time"] and e["seq"] == i for i, e in enumerate(history))
    assert history[0]["run_id"] == ids["v1"] and history[0]["sha256"] == sha1

    code, out, _ = cli(capsys, "--uri", uri, "model", "alias", "churn", "staging", "--delete")
    assert code == 0 and out.strip() == "churn@staging removed (it pointed at v1)"
    cli(capsys, "--uri", uri, "model", "alias", "churn", "canary", "2")
    code, out, _ = cli(capsys, "--uri", uri, "--json", "model", "alias", "churn", "canary", "--delete")
    assert code == 0 and _strict_json(out) == {"name": "churn", "alias": "canary", "version": None, "previous": 2}
    code, out, _ = cli(capsys, "--uri", uri, "model", "history", "churn", "--json")
    assert [(e["action"], e["alias"], e["previous"]) for e in _strict_json(out)[-3:]] == [
        ("delete_alias", "staging", 1), ("set_alias", "canary", None), ("delete_alias", "canary", 2)]


def test_show_a_version_and_the_run_behind_it(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _registered(store, capsys)
    uri, ids = store["uri"], store["ids"]
    code, out, err = cli(capsys, "--uri", uri, "model", "show", "churn@production")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "model churn v1  (production)"
    assert f"run {ids['v1']}  train-v1" in out and "finished" in out
    assert any(line.split()[:2] == ["lr", "0.1"] for line in lines)
    assert any(line.split()[:2] == ["val_loss", "0.43333"] for line in lines)  # the final value: 1/3 + 0.1
    assert "train" in out and "list" in out  # the data fingerprint's row
    if store["commits"]:
        assert store["commits"]["v1"] in out
    for ref in ("churn/2", "churn@staging", "churn@latest", "churn"):
        code, out, _ = cli(capsys, "--uri", uri, "--json", "model", "show", ref)
        shown = _strict_json(out)
        assert code == 0 and shown["version"] == 2 and shown["run_id"] == ids["v2"], ref
    assert shown["aliases"] == ["staging"] and shown["run"]["params"]["lr"] == 0.01
    assert shown["run"]["data"]["train"]["rows"] == 2 and shown["run"]["status"] == "finished"
    assert shown["run"]["final_metrics"]["val_loss"] == pytest.approx(1 / 3 + 0.01)
    if store["commits"]:
        assert shown["run"]["git"]["commit"] == store["commits"]["v2"]


def test_get_writes_the_version_whole_and_refuses_to_overwrite(store: dict[str, Any], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _registered(store, capsys)
    uri = store["uri"]
    dest = tmp_path / "deploy" / "prod.bin"
    code, out, err = cli(capsys, "--uri", uri, "model", "get", "churn@production", "-o", str(dest))
    assert code == 0, err
    assert dest.read_bytes() == store["blobs"]["v1"] and out.startswith(f"{dest}  churn v1  sha256 ")
    code, out, err = cli(capsys, "--uri", uri, "model", "get", "churn@staging", "-o", str(dest))
    assert code == 1 and "already exists: pass --force" in _one_line_error(err) and str(dest) in err
    assert dest.read_bytes() == store["blobs"]["v1"]  # untouched
    code, out, _ = cli(capsys, "--uri", uri, "--json", "model", "get", "churn@staging", "-o", str(dest), "--force")
    got = _strict_json(out)
    assert code == 0 and dest.read_bytes() == store["blobs"]["v2"] and got["version"] == 2 and got["path"] == str(dest)
    folder = tmp_path / "models"
    folder.mkdir()
    code, out, _ = cli(capsys, "--uri", uri, "model", "get", "churn/1", "-o", str(folder))
    assert code == 0 and (folder / "model.bin").read_bytes() == store["blobs"]["v1"]
    assert sorted(os.listdir(folder)) == ["model.bin"] and sorted(os.listdir(dest.parent)) == ["prod.bin"]
    code, out, err = cli(capsys, "--uri", uri, "model", "get", "churn/9", "-o", str(folder))
    assert code == 1 and "churn" in _one_line_error(err) and "9" in err


def test_diff_takes_model_references(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _registered(store, capsys)
    uri, ids = store["uri"], store["ids"]
    code, out, err = cli(capsys, "--uri", uri, "diff", "churn@production", "churn@staging")
    assert code == 0, err
    assert f"A: churn@production is churn v1, from run {ids['v1'][:8]}" in out
    assert f"B: churn@staging is churn v2, from run {ids['v2'][:8]}" in out
    assert "params" in out and "lr" in out and "train/rows" in out
    code, out, _ = cli(capsys, "--uri", uri, "--json", "diff", "churn@production", "churn@staging")
    found = _strict_json(out)
    assert found["model"]["version"] == [1, 2] and found["model"]["sha256"][0] != found["model"]["sha256"][1]
    assert found["params"]["lr"] == [0.1, 0.01] and found["data"]["train/rows"] == [1, 2]
    if store["commits"]:
        assert found["git"]["commit"] == [store["commits"]["v1"], store["commits"]["v2"]]
    code, out, _ = cli(capsys, "--uri", uri, "--json", "diff", ids["v1"], "churn/2")
    found = _strict_json(out)
    assert found["model"]["version"] == [None, 2] and found["params"]["lr"] == [0.1, 0.01]
    code, out, _ = cli(capsys, "--uri", uri, "--json", "diff", "churn", ids["plain"][:8])  # a bare name: latest
    assert _strict_json(out)["model"]["version"] == [2, None]
    code, out, _ = cli(capsys, "--uri", uri, "--json", "diff", ids["v1"], ids["v2"])  # runs only: as before
    assert "model" not in _strict_json(out)
    code, _, err = cli(capsys, "--uri", uri, "diff", "churn@canary", ids["v1"])
    assert code == 1 and "canary" in _one_line_error(err)
    code, _, err = cli(capsys, "--uri", uri, "diff", "nosuchrun", ids["v1"])
    assert code == 1 and "nosuchrun" in _one_line_error(err)


def test_errors_are_one_line(store: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    uri, ids = store["uri"], store["ids"]
    code, out, _ = cli(capsys, "--uri", uri, "models")
    assert code == 0 and out.startswith("No registered models in ")
    code, out, _ = cli(capsys, "--uri", uri, "models", "--json")
    assert code == 0 and _strict_json(out) == []
    cases = [
        (("model", "show", "churn"), 1, "churn"),
        (("model", "history", "churn"), 1, "churn"),
        (("model", "register", "churn", "feedbeef"), 1, "feedbeef"),
        (("model", "register", "churn", ids["plain"]), 1, ""),  # no model, no checkpoint
        (("model", "register", "churn", ids["v1"], "nothing.bin"), 1, "nothing.bin"),
        (("model", "register", "bad name!", ids["v1"]), 1, "bad name!"),
        (("model", "register", "churn", ids["v1"], "--metadata", "novalue"), 2, "KEY=VALUE"),
        (("model", "alias", "churn", "production"), 2, "VERSION"),
        (("model", "alias", "churn", "production", "three"), 2, "three"),
        (("model", "alias", "churn", "production", "1", "--delete"), 2, "--delete"),
        (("model", "shw", "churn"), 2, "did you mean 'show'"),
        (("model",), 2, ""),
    ]
    for argv, status, says in cases:
        code, _, err = cli(capsys, "--uri", uri, *argv)
        assert code == status, (argv, err)
        assert says in _one_line_error(err), (argv, err)
    assert cli(capsys, "--uri", uri, "model", "register", "churn", ids["v1"])[0] == 0
    for argv, says in ((("model", "alias", "churn", "production", "7"), "7"),
                       (("model", "alias", "churn", "staging", "--delete"), "staging"),
                       (("model", "alias", "churn", "latest", "1"), "latest"),
                       (("model", "show", "churn@production"), "production")):
        code, _, err = cli(capsys, "--uri", uri, *argv)
        assert code == 1 and says in _one_line_error(err), (argv, err)


def _typed(store: dict[str, Any], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC, AUTOTRACK_URI=store["uri"], COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "autotrack", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_a_user_registers_promotes_and_fetches(store: dict[str, Any], tmp_path: Path) -> None:
    """As typed in a shell: register the newest run's model, promote it, fetch it by its alias."""
    work = tmp_path / "work"
    work.mkdir()
    steps = [("model", "register", "churn", "last", "model.bin"),  # 'last' is the newest run: plain has no model
             ("model", "register", "churn", store["ids"]["v2"][:8]),
             ("model", "alias", "churn", "production", "1"),
             ("model", "get", "churn@production", "-o", "deploy/")]
    results = [_typed(store, *argv, cwd=work) for argv in steps]
    assert results[0].returncode == 1 and "model.bin" in _one_line_error(results[0].stderr)
    assert [r.returncode for r in results[1:]] == [0, 0, 0], [r.stderr for r in results]
    assert results[1].stdout.startswith("registered churn v1: model.bin of run ")
    assert (work / "deploy" / "model.bin").read_bytes() == store["blobs"]["v2"]
    again = _typed(store, "model", "get", "churn@production", "-o", "deploy/", cwd=work)
    assert again.returncode == 1 and "--force" in _one_line_error(again.stderr)
    shown = _typed(store, "--json", "model", "show", "churn@production", cwd=work)
    assert shown.returncode == 0 and json.loads(shown.stdout)["run"]["name"] == "train-v2"
