"""A process that starts many runs captures what cannot change once, and git only when git would see a change."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from autotrack._capture import environment, gitcache
from autotrack._capture.environment import capture_environment

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    return subprocess.run(["git", *args], cwd=cwd, env=dict(env, GIT_TERMINAL_PROMPT="0"), check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    for key, value in (("user.name", "T"), ("user.email", "t@example.com"), ("commit.gpgsign", "false")):
        _git(root, "config", key, value)
    (root / "train.py").write_text("lr = 0.1\n")
    (root / "data.py").write_text("rows = 10\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "init")
    (root / "train.py").write_text("lr = 0.2\n")
    return root


@pytest.fixture
def spawned(monkeypatch):
    """Counts the git processes the capture starts."""
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(args, *a, **kw):  # noqa: ANN001
        if args and args[0] == "git":
            calls.append(list(args))
        return real(args, *a, **kw)

    monkeypatch.setattr(environment.subprocess, "run", counting)
    monkeypatch.setattr(environment, "_GIT", gitcache.GitCache())
    return calls


def _later(path: Path, text: str) -> None:
    """Write so that the mtime surely moves even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 10**9, before + 10**9))


def test_second_capture_spawns_no_git_and_says_the_same(repo: Path, spawned):
    first = capture_environment(script_dir=str(repo))
    n = len(spawned)
    assert n >= 3
    second = capture_environment(script_dir=str(repo))
    assert len(spawned) == n  # no git process at all
    assert second["git"] == first["git"] and second["git"]["dirty"] is True
    assert second["python"] == first["python"] and second["hardware"]["cpu"] == first["hardware"]["cpu"]
    second["git"]["untracked"].append("x")  # a run's copy is its own
    assert capture_environment(script_dir=str(repo))["git"]["untracked"] == []


def test_git_is_read_again_when_git_would_see_a_change(repo: Path, spawned):
    base = capture_environment(script_dir=str(repo))["git"]
    _later(repo / "train.py", "lr = 0.3\n")  # a file that was already dirty, edited again
    edited = capture_environment(script_dir=str(repo))["git"]
    assert "+lr = 0.3" in edited["diff"] and edited != base
    _later(repo / "notes.txt", "new\n")  # a new file: git status changes, the index does not
    _git(repo, "add", "notes.txt")  # ... but staging moves the index
    staged = capture_environment(script_dir=str(repo))["git"]
    assert "notes.txt" in staged["diff"]
    _git(repo, "commit", "-q", "-am", "two")  # HEAD's branch moves
    committed = capture_environment(script_dir=str(repo))["git"]
    assert committed["commit"] == _git(repo, "rev-parse", "HEAD") and committed["dirty"] is False
    _git(repo, "checkout", "-q", "-b", "other")  # HEAD itself changes
    assert capture_environment(script_dir=str(repo))["git"]["branch"] == "other"
    n = len(spawned)
    capture_environment(script_dir=str(repo))
    assert len(spawned) == n


def test_a_clean_file_edited_later_is_seen_within_the_cache_seconds(repo: Path, spawned, monkeypatch):
    capture_environment(script_dir=str(repo))
    _later(repo / "data.py", "rows = 20\n")  # clean at the last capture: nothing git-side moved
    monkeypatch.setattr(gitcache, "GIT_CACHE_SECONDS", 0.0)
    time.sleep(0.01)
    assert "+rows = 20" in capture_environment(script_dir=str(repo))["git"]["diff"]


def test_a_worktree_is_followed_to_its_repository(repo: Path, tmp_path: Path, spawned):
    _git(repo, "commit", "-q", "-am", "two")
    tree = tmp_path / "tree"
    _git(repo, "worktree", "add", "-q", "-b", "side", str(tree))
    first = capture_environment(script_dir=str(tree))["git"]
    assert first["branch"] == "side"
    n = len(spawned)
    assert capture_environment(script_dir=str(tree))["git"] == first
    assert len(spawned) == n
    (tree / "more.py").write_text("x = 1\n")
    _git(tree, "add", "more.py")
    _git(tree, "commit", "-q", "-m", "more")  # the worktree's branch ref lives in the main repository
    assert capture_environment(script_dir=str(tree))["git"]["commit"] == _git(tree, "rev-parse", "HEAD")


def test_outside_a_repository_is_none_and_cached(tmp_path: Path, spawned):
    plain = tmp_path / "plain"
    plain.mkdir()
    if gitcache._repository(str(plain)) is not None:
        pytest.skip("the temporary folder is inside a git repository")
    assert capture_environment(script_dir=str(plain))["git"] is None
    n = len(spawned)
    assert capture_environment(script_dir=str(plain))["git"] is None
    assert len(spawned) == n
    _git(plain, "init", "-q")  # a repository made later is seen: .git appeared
    assert capture_environment(script_dir=str(plain))["git"] is not None
