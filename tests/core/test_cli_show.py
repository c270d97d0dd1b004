"""``autotrack show`` and ``autotrack diff`` as a new user meets them (issue 15): checkpoint
states, the recorded git diff and untracked files, the parts of an ``(X, y)`` dataset, piped
output without padding, code and package changes between two runs, and ``to_dict``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert len(lines) == 1 and lines[0].startswith("autotrack: error: ") and "Traceback" not in err, err


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("AUTOTRACK_URI", "AUTOTRACK_EXPERIMENT", "AUTOTRACK_DEBUG", "AUTOTRACK_DISABLE", "PAGER",
                "AUTOTRACK_PAGER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py"])  # no git capture of whatever repo pytest runs in


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a user types it, its output going to a pipe (not a terminal)."""
    full = dict(os.environ, PYTHONPATH=SRC, **env)
    full.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "autotrack", *argv], capture_output=True, text=True, env=full,
                          timeout=120)


def _line_of(out: str, word: str) -> str:
    return next(line for line in out.splitlines() if word in line)


# -- checkpoints: which still have bytes -----------------------------------------------------
def test_show_says_which_checkpoints_are_best_superseded_or_released(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    for name in ("epoch=1.ckpt", "epoch=2.ckpt", "epoch=3.ckpt", "model.bin"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    with autotrack.start_run(uri=uri) as run:
        for name in ("epoch=1.ckpt", "epoch=2.ckpt", "epoch=3.ckpt"):
            run.log_artifact(tmp_path / name, kind="checkpoint", metadata={"val_loss": 0.5})
        run.log_artifact(tmp_path / "model.bin", kind="model")
        run.release_artifact("epoch=1.ckpt", superseded_by="epoch=3.ckpt")
        run.update_artifact("epoch=2.ckpt", {"superseded": True, "kept": True})
        run.update_artifact("epoch=3.ckpt", {"best": True})
    code, out, err = _run(capsys, "show", run.id, "--uri", uri)
    assert code == 0 and err == ""
    header = _line_of(out, "sha256")
    assert "state" in header.split()
    released, kept, best, model = (_line_of(out, n) for n in ("epoch=1.ckpt ", "epoch=2.ckpt", "epoch=3.ckpt ",
                                                             "model.bin"))
    assert "released" in released and "best" not in released
    assert "superseded (kept)" in kept and "released" not in kept
    assert "best" in best and "superseded" not in best
    assert not any(w in model for w in ("best", "superseded", "released"))
    for line in (released, kept, best):  # the flags are the state column's, not metadata text
        assert "kept=" not in line and "superseded=" not in line and "best=" not in line
        assert "val_loss=0.5" in line
    assert "released: " in out  # a note under the table says what a released file is
    # and the clear error when one asks for its bytes, which stays as it was
    code, out, err = _run(capsys, "get", run.id, "epoch=1.ckpt", "-o", str(tmp_path / "x"), "--uri", uri)
    assert code == 1 and out == ""
    _one_line_error(err)
    assert "was released: superseded by epoch=3.ckpt" in err and "artifacts/" not in err


# -- git: the diff, untracked files ----------------------------------------------------------
def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a committed train.py; runs recorded "from" it capture its state."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("lr = 0.1\nepochs = 3\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.setattr(sys, "argv", [str(repo / "train.py")])
    return repo


def _record(uri: str, name: str, packages: dict[str, str] | None = None,
            monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if packages is not None and monkeypatch is not None:
        from autotrack._capture import environment

        monkeypatch.setattr(environment, "_packages", lambda: dict(packages))
    with autotrack.start_run(uri=uri, name=name) as run:
        run.log_metric("loss", 0.5)
    return run.id


def test_show_lists_untracked_files_and_show_diff_prints_the_recorded_diff(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    (repo / "train.py").write_text("lr = 0.2\nepochs = 3\n")
    (repo / "notes.txt").write_text("try a bigger lr\n")
    (repo / "data").mkdir()
    (repo / "data" / "extra.csv").write_text("a,b\n")
    run_id = _record(uri, "dirty")
    recorded = autotrack.get_run(run_id, uri=uri).environment["git"]
    assert "+lr = 0.2" in recorded["diff"]
    code, out, err = _run(capsys, "show", run_id, "--uri", uri)
    assert code == 0 and err == ""
    untracked = _line_of(out, "untracked ")
    assert "notes.txt" in untracked and "data/extra.csv" in untracked
    assert "autotrack show --diff" in out  # where the diff itself is
    # --diff: the recorded text itself, plain on a pipe (ready for `git apply`)
    code, out, err = _run(capsys, "show", "--diff", run_id, "--uri", uri)
    assert code == 0 and out == recorded["diff"]
    assert "untracked" in err and "2 untracked files" in err  # not in the diff: said on stderr
    code, out, _ = _run(capsys, "--json", "show", "--diff", run_id, "--uri", uri)
    data = _strict_json(out)
    assert data["diff"] == recorded["diff"] and data["diff_truncated"] is False
    assert sorted(data["untracked"]) == ["data/extra.csv", "notes.txt"]


def test_show_diff_says_when_the_diff_was_cut_at_capture(repo: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from autotrack._capture import environment

    monkeypatch.setattr(environment, "GIT_DIFF_CAP_BYTES", 60)
    uri = str(tmp_path / "store")
    (repo / "train.py").write_text("".join(f"line {i}\n" for i in range(50)))
    run_id = _record(uri, "big")
    git = autotrack.get_run(run_id, uri=uri).environment["git"]
    assert git["diff_truncated"] is True
    code, out, err = _run(capsys, "show", "--diff", run_id, "--uri", uri)
    assert code == 0 and out == git["diff"]
    assert "truncated" in err and str(git["diff_bytes"]) in err
    code, out, _ = _run(capsys, "show", run_id, "--uri", uri)
    assert "truncated" in _line_of(out, "uncommitted")


def test_show_diff_of_a_clean_tree_and_of_a_run_without_git(repo: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    clean = _record(uri, "clean")
    code, out, err = _run(capsys, "show", "--diff", clean, "--uri", uri)
    assert code == 0 and out == "" and "no uncommitted changes" in err
    monkeypatch.setattr(sys, "argv", ["train.py"])
    monkeypatch.chdir(tmp_path)  # not in a repository
    nogit = _record(uri, "nogit")
    assert autotrack.get_run(nogit, uri=uri).environment.get("git") is None
    code, out, err = _run(capsys, "show", "--diff", nogit, "--uri", uri)
    assert code == 1 and out == ""
    _one_line_error(err)
    assert "no git state" in err and nogit[:8] in err


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_show_diff_goes_through_the_pager_on_a_terminal(repo: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    (repo / "train.py").write_text("lr = 0.3\nepochs = 3\n")
    run_id = _record(uri, "paged")
    diff = autotrack.get_run(run_id, uri=uri).environment["git"]["diff"]
    got = tmp_path / "paged.txt"
    pager = tmp_path / "pager.py"
    pager.write_text("import sys\nopen(sys.argv[1], 'w').write(sys.stdin.read())\n")
    primary, secondary = os.openpty()
    try:
        env = dict(os.environ, PYTHONPATH=SRC, PAGER=f"{sys.executable} {pager} {got}")
        proc = subprocess.run([sys.executable, "-m", "autotrack", "show", "--diff", run_id, "--uri", uri],
                              stdout=secondary, stderr=subprocess.PIPE, env=env, timeout=120)
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0, proc.stderr
    assert got.read_text() == diff


def test_diff_shows_code_changes_and_summarises_packages(repo: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    many = {f"pkg{i:03d}": "1.0" for i in range(127)}
    (repo / "train.py").write_text("lr = 0.2\nepochs = 3\n")
    a = _record(uri, "a", {**many, "numpy": "2.0.0", "torch": "2.3.0", "old-lib": "0.1"}, monkeypatch)
    (repo / "train.py").write_text("lr = 0.5\nepochs = 3\n")
    b = _record(uri, "b", {**many, "numpy": "2.1.0", "torch": "2.3.0", "pandas": "2.2.0"}, monkeypatch)
    code, out, err = _run(capsys, "diff", a, b, "--uri", uri)
    assert code == 0 and err == ""
    assert "bytes, sha256" not in out  # no longer a size and a hash
    assert "--- A " in out and "+++ B " in out
    assert "-+lr = 0.2" in out and "++lr = 0.5" in out  # a diff of the two diffs
    packages = out[out.index("packages"):]
    assert "numpy" in packages and "2.0.0" in packages and "2.1.0" in packages
    assert "pandas" in packages and "old-lib" in packages
    assert "torch" not in packages and "pkg000" not in packages  # the same in both: not listed
    assert len(packages.splitlines()) < 12

    c = _record(uri, "c", {}, monkeypatch)  # no packages recorded at all: one line, not 130
    code, out, _ = _run(capsys, "diff", a, c, "--uri", uri)
    packages = out[out.index("packages"):]
    assert "not recorded in B" in packages and "pkg000" not in packages and len(packages.splitlines()) < 6

    (repo / "train.py").write_text("lr = 0.5\nepochs = 3\n")
    d = _record(uri, "d", {**many, "numpy": "2.1.0", "torch": "2.3.0", "pandas": "2.2.0"}, monkeypatch)
    code, out, _ = _run(capsys, "diff", b, d, "--uri", uri)
    assert code == 0 and "no differences" in out  # the same diff text: nothing to show
    (repo / "train.py").write_text("lr = 0.1\nepochs = 4\n")
    e = _record(uri, "e", {**many, "numpy": "2.1.0", "torch": "2.3.0", "pandas": "2.2.0"}, monkeypatch)
    _git(repo, "commit", "-q", "-am", "second")
    f = _record(uri, "f", {**many, "numpy": "2.1.0", "torch": "2.3.0", "pandas": "2.2.0"}, monkeypatch)
    code, out, _ = _run(capsys, "diff", e, f, "--uri", uri)
    assert "commit" in out and "uncommitted changes only in A" in out


def test_diff_says_identical_code_changes(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs with the same uncommitted changes, from different commits: the commit row differs,
    the code changes are said to be the same (not printed twice)."""
    uri = str(tmp_path / "store")
    (repo / "train.py").write_text("lr = 0.2\nepochs = 3\n")
    a = _record(uri, "a")
    (repo / "other.py").write_text("x = 1\n")
    _git(repo, "add", "other.py")
    _git(repo, "commit", "-q", "-m", "other", "other.py")
    b = _record(uri, "b")
    code, out, _ = _run(capsys, "diff", a, b, "--uri", uri)
    assert code == 0 and "commit" in out
    assert "uncommitted changes: identical in both runs" in out


# -- data: the parts of (X, y) ----------------------------------------------------------------
def test_show_data_parts_with_their_shapes_and_dtypes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri) as run:
        run.log_data("train", (np.zeros((10, 3), dtype=np.float32), np.arange(10, dtype=np.int64)))
        run.log_data("tokens", {"input_ids": np.zeros((4, 128), dtype=np.int32),
                                "labels": np.zeros(4, dtype=np.int8)})
    code, out, _ = _run(capsys, "show", run.id, "--uri", uri)
    assert code == 0
    train = _line_of(out, "train ")
    assert "tuple" in train and "2 parts" in train and "10" in train.split()
    x, y = _line_of(out, "[0]"), _line_of(out, "[1]")
    assert "10x3" in x and "float32" in x and "numpy.ndarray" in x
    assert "10" in y.split() and "int64" in y
    ids, labels = _line_of(out, "input_ids"), _line_of(out, "labels")
    assert "4x128" in ids and "int32" in ids and "int8" in labels
    assert "4" in _line_of(out, "tokens").split()  # the parts' rows, which agree


# -- piped output ----------------------------------------------------------------------------
def test_piped_output_has_no_trailing_spaces(repo: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    (repo / "train.py").write_text("lr = 0.2\nepochs = 3\n")
    with autotrack.start_run(uri=uri, name="one", params={"lr": 0.1}) as run:
        run.log_metrics({"loss": 0.5, "acc": 0.9}, step=1)
        run.log_data("train", (np.zeros((10, 3)), np.arange(10)))
    other = _record(uri, "two")
    for argv in (("show", run.id), ("runs",), ("diff", run.id, other)):
        done = _cli(*argv, "--uri", uri)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
        padded = [line for line in done.stdout.splitlines() if line != line.rstrip()]
        assert padded == [], (argv, padded[:3])


# -- to_dict -------------------------------------------------------------------------------------
def test_to_dict_and_show_json_have_param_history_and_final_metrics(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri, params={"lr": 0.1}) as run:
        run.log_params({"lr": 0.05})
        run.log_metrics({"loss": 0.5}, step=0)
        run.log_metrics({"loss": 0.25, "acc": float("nan")}, step=1)
    rec = autotrack.get_run(run.id, uri=uri)
    data = rec.to_dict()
    assert [v for v, _ts in data["param_history"]["lr"]] == [0.1, 0.05]
    assert all(isinstance(ts, float) for _v, ts in data["param_history"]["lr"])
    assert data["final_metrics"]["loss"] == 0.25 and data["final_metrics"]["acc"] != data["final_metrics"]["acc"]
    assert rec.to_dict(metrics="last")["final_metrics"] == {"loss": 0.25, "acc": data["final_metrics"]["acc"]}
    code, out, _ = _run(capsys, "show", "--json", run.id, "--uri", uri)
    shown = _strict_json(out)
    assert shown["final_metrics"] == {"loss": 0.25, "acc": "NaN"}
    assert [v for v, _ts in shown["param_history"]["lr"]] == [0.1, 0.05]


def test_code_diff_ignores_blob_hash_lines_and_package_changes_sum_up() -> None:
    """Two recorded diffs that differ only in git's ``index`` line (the abbreviation length of a
    blob hash depends on the repository) are the same change; packages come back by kind."""
    from types import SimpleNamespace

    from autotrack._diff import code_diff, package_changes

    body = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"

    def fake(run_id: str, diff: str | None, packages: dict[str, str]) -> Any:
        git = None if diff is None else {"diff": diff}
        return SimpleNamespace(id=run_id, environment={"git": git, "packages": packages})

    a = fake("a" * 32, "diff --git a/x.py b/x.py\nindex 3f2a9c1..9c1e2b3 100644\n" + body, {"np": "1", "old": "1"})
    b = fake("b" * 32, "diff --git a/x.py b/x.py\nindex 3f2a9c1e0..9c1e2b3d4 100644\n" + body, {"np": "2", "new": "1"})
    found = code_diff(a, b)
    assert found is not None and found["same"] is True and found["unified"] == ""
    c = fake("c" * 32, None, {})
    only = code_diff(a, c)
    assert only is not None and only["same"] is False and only["lines"] == [7, 0]
    assert "-+a = 2" in only["unified"] and "index" not in only["unified"]
    assert code_diff(c, c) is None
    assert package_changes(a, b) == {"recorded": [True, True], "changed": {"np": ["1", "2"]},
                                     "only_a": {"old": "1"}, "only_b": {"new": "1"}}
    assert package_changes(a, c)["recorded"] == [True, False] and package_changes(a, c)["only_a"] == {}
