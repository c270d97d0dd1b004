"""Shared by the reproduce/explain tests: a throw-away git repository holding a training script,
the script run as a user would (a fresh interpreter, recording into a store), and a replay."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import autotrack
from autotrack._reproduce import reproduce


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(path, files: dict[str, str]):
    """A git repository at ``path`` with ``files`` committed (and the store ignored)."""
    os.makedirs(path, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    files = {".gitignore": "store/\n", **files}
    for name, body in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(textwrap.dedent(body))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "init")
    return str(path)


def record(repo, script="train.py", *args, env=None, timeout=300):
    """Run ``script`` in ``repo`` recording into ``repo/store``; the newest run there."""
    store = os.path.join(repo, "store")
    full = dict(os.environ, AUTOTRACK_URI=store, **(env or {}))
    done = subprocess.run([sys.executable, script, *args], check=False, cwd=repo, env=full, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return autotrack.last_run(uri=store)


def replay(run, repo, **kwargs):
    """``autotrack reproduce`` through the API, the script's output kept out of the test's."""
    return reproduce(run, os.path.join(repo, "store"), say=lambda line: None, stdout=subprocess.DEVNULL, **kwargs)
