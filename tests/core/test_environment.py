"""Environment capture: shape, JSON-safety, git facts, and that it never imports a framework."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autotrack._capture import environment
from autotrack._capture.environment import capture_environment, capture_git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.name", "Test")
    _git(root, "config", "user.email", "test@example.com")
    _git(root, "config", "commit.gpgsign", "false")
    _git(root, "checkout", "-q", "-b", "trunk")
    (root / "train.py").write_text("lr = 0.1\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "init")
    (root / "train.py").write_text("lr = 0.2\n")
    (root / "notes.txt").write_text("untracked\n")
    return root


def test_keys_types_and_json_safe():
    env = capture_environment()
    json.dumps(env, allow_nan=False)
    assert set(env) >= {"python", "platform", "hostname", "hardware", "packages", "frameworks",
                        "git", "command", "capture_seconds"}
    assert env["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert env["python"]["executable"] == sys.executable
    assert set(env["platform"]) == {"system", "release", "machine", "platform"}
    assert isinstance(env["hostname"], str)
    cpu = env["hardware"]["cpu"]
    assert cpu["count"] == os.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        assert cpu["usable"] == len(os.sched_getaffinity(0))
    total = env["hardware"]["memory"]["total_bytes"]
    assert isinstance(total, int) and total > 0
    assert isinstance(env["hardware"]["gpus"], list)
    for gpu in env["hardware"]["gpus"]:
        assert set(gpu) == {"name", "memory_bytes", "driver", "cuda", "source"}
    assert env["command"]["argv"] == list(sys.argv)
    assert env["command"]["cwd"] == os.getcwd()
    assert isinstance(env["capture_seconds"], float) and env["capture_seconds"] >= 0
    assert 0 <= env["capture_cpu_seconds"] <= env["capture_seconds"] + 0.01
    assert "autotrack" in env["frameworks"]


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a shell script")
def test_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559, 550.54.15'\n"
                    "echo 'Odd, GPU, [N/A], 550.54.15'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    for name in ("torch", "tensorflow"):  # real ones (if another test imported them) would win
        monkeypatch.delitem(sys.modules, name, raising=False)
    gpus = capture_environment()["hardware"]["gpus"]
    assert gpus == [
        {"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 81559 << 20, "driver": "550.54.15",
         "cuda": None, "source": "nvidia-smi"},
        {"name": "Odd, GPU", "memory_bytes": None, "driver": "550.54.15", "cuda": None,
         "source": "nvidia-smi"},
    ]


def test_gpus_from_already_imported_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi to fall back on
    props = SimpleNamespace(name="Fake GPU", total_memory=1234)
    cuda = SimpleNamespace(is_initialized=lambda: True, is_available=lambda: True,
                           device_count=lambda: 2, get_device_properties=lambda i: props)
    fake_torch = SimpleNamespace(cuda=cuda, version=SimpleNamespace(cuda="12.4"))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    gpus = capture_environment()["hardware"]["gpus"]
    assert gpus == [{"name": "Fake GPU", "memory_bytes": 1234, "driver": None, "cuda": "12.4",
                     "source": "torch"}] * 2
    # CUDA not initialised yet: torch is left alone (initialising it would break forking).
    cuda.is_initialized = lambda: False
    cuda.get_device_properties = None
    assert capture_environment()["hardware"]["gpus"] == []
    # A probe that blows up costs only its own answer.
    cuda.is_initialized = lambda: 1 / 0
    assert capture_environment()["hardware"]["gpus"] == []


def test_packages_from_metadata():
    env = capture_environment()
    packages = env["packages"]
    assert packages["pytest"] == importlib.metadata.version("pytest")
    assert list(packages) == sorted(packages)
    assert all(name == name.lower() and "_" not in name and "." not in name for name in packages)
    assert set(env["frameworks"]) - {"autotrack"} <= set(packages)


@needs_git
def test_git_repo_facts(repo: Path):
    info = capture_git(str(repo))
    assert info is not None
    json.dumps(info, allow_nan=False)
    assert Path(info["root"]).resolve() == repo.resolve()
    assert info["commit"] == _git(repo, "rev-parse", "HEAD")
    assert info["branch"] == "trunk"
    assert info["dirty"] is True
    assert "-lr = 0.1" in info["diff"] and "+lr = 0.2" in info["diff"]
    assert info["diff_truncated"] is False
    assert info["diff_bytes"] == len(info["diff"].encode())
    assert info["untracked"] == ["notes.txt"]
    assert info["remote"] is None


@needs_git
def test_git_from_subdirectory_and_script_dir(repo: Path):
    sub = repo / "pkg"
    sub.mkdir()
    env = capture_environment(script_dir=str(sub))
    assert env["git"]["commit"] == _git(repo, "rev-parse", "HEAD")


@needs_git
def test_clean_and_detached(repo: Path):
    _git(repo, "checkout", "-q", "--", "train.py")
    (repo / "notes.txt").unlink()
    info = capture_git(str(repo))
    assert info["dirty"] is False and info["diff"] == "" and info["untracked"] == []
    _git(repo, "checkout", "-q", "--detach")
    assert capture_git(str(repo))["branch"] is None


@needs_git
def test_remote_credentials_stripped(repo: Path):
    _git(repo, "remote", "add", "upstream", "git@example.com:other/r.git")
    _git(repo, "remote", "add", "origin", "https://user:secret@example.com/r.git")
    info = capture_git(str(repo))
    assert info["remote"] == "https://example.com/r.git"
    assert "secret" not in json.dumps(capture_environment(script_dir=str(repo)))


@needs_git
def test_remote_prefers_branch_upstream(repo: Path):
    _git(repo, "remote", "add", "origin", "https://example.com/origin.git")
    _git(repo, "remote", "add", "fork", "https://example.com/fork.git")
    _git(repo, "config", "branch.trunk.remote", "fork")
    assert capture_git(str(repo))["remote"] == "https://example.com/fork.git"


@needs_git
def test_diff_cap_truncates(repo: Path, monkeypatch: pytest.MonkeyPatch):
    (repo / "train.py").write_text("".join(f"line {i} é\n" for i in range(200)))
    full = capture_git(str(repo))
    monkeypatch.setattr(environment, "GIT_DIFF_CAP_BYTES", 300)
    info = capture_git(str(repo))
    assert info["diff_truncated"] is True
    assert info["diff_bytes"] == full["diff_bytes"] > 300
    encoded = info["diff"].encode("utf-8")
    assert 0 < len(encoded) <= 300
    assert info["diff"].endswith("\n")
    assert full["diff"].startswith(info["diff"])


def test_non_repo_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    # Stops git from finding a repository that happens to enclose tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert capture_git(str(plain)) is None
    assert capture_git(str(tmp_path / "missing")) is None


@needs_git
def test_git_missing_is_none(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert capture_git(str(repo)) is None


@needs_git
def test_repo_without_commits(tmp_path: Path):
    root = tmp_path / "empty"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "a.txt").write_text("hello\n")
    info = capture_git(str(root))
    assert info is not None
    assert info["commit"] is None
    assert info["dirty"] is True and info["untracked"] == ["a.txt"]
    _git(root, "add", "a.txt")
    info = capture_git(str(root))
    assert "+hello" in info["diff"]


def test_no_framework_imported():
    code = (
        "import sys, json\n"
        "from autotrack._capture.environment import capture_environment\n"
        "env = capture_environment()\n"
        "json.dumps(env, allow_nan=False)\n"
        "heavy = ['torch', 'tensorflow', 'keras', 'sklearn', 'xgboost', 'transformers',\n"
        "         'lightning', 'pytorch_lightning', 'pandas', 'jax']\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_store_inside_the_repo_does_not_make_the_run_dirty(tmp_path, monkeypatch):
    import subprocess

    import autotrack

    repo = tmp_path / "proj"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "a@b.c"], ["config", "user.name", "a"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    monkeypatch.setattr("sys.argv", [str(repo / "train.py")])
    with autotrack.start_run():  # default store ./autotrack-runs inside the repo
        pass
    with autotrack.start_run():
        pass
    git = autotrack.last_run().environment["git"]
    assert git["dirty"] is False and git["untracked"] == [] and git["diff"] == ""
    (repo / "train.py").write_text("print(2)\n")
    with autotrack.start_run():
        pass
    git = autotrack.last_run().environment["git"]
    assert git["dirty"] is True and "print(2)" in git["diff"]
