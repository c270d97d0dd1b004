"""What a run's capture can reuse from the previous run of the same process.

A loop of 1,000 short fits, or a search with many candidates, starts a run for each; the
capture of each used to spawn four git processes and read the hardware again (~20-190 ms on
a thread competing with training for the cores). Within one process, what cannot change is
read once (``once``); git facts are read again only when something git would see changed
(``GitCache``), which is checked by reading ``.git`` and a few ``stat`` calls, no process.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from autotrack import _forksafe

__all__ = ["once", "GitCache", "GIT_CACHE_SECONDS"]

# A safety net, not the mechanism: a file that was clean at the last capture and is edited
# since (HEAD and the index unchanged) is seen by the first capture after this many seconds.
GIT_CACHE_SECONDS = 30.0

_once: dict[str, Any] = {}
_once_lock = _forksafe.lock()


def once(name: str, probe: Callable[[], Any]) -> Any:
    """``probe()``'s value, computed once per process (python, platform, hardware, GPUs via nvidia-smi)."""
    with _once_lock:
        if name not in _once:
            _once[name] = probe()
        return _once[name]


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(4096).strip()
    except OSError:
        return None


def _repository(start: str) -> tuple[str, str] | None:
    """(work tree, git dir) of the repository ``start`` is in, read from ``.git`` as git would."""
    folder = os.path.abspath(start)
    while True:
        dot = os.path.join(folder, ".git")
        if os.path.isdir(dot):
            return folder, dot
        if os.path.isfile(dot):  # a worktree or a submodule: "gitdir: <path>"
            text = _read(dot) or ""
            if text.startswith("gitdir:"):
                return folder, os.path.join(folder, text[len("gitdir:"):].strip())
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _key(start: str, exclude: Sequence[str], watched: Sequence[str]) -> tuple[Any, ...] | None:
    """Everything the git facts depend on, or None when it cannot be told without git."""
    if any(name in os.environ for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES")):
        return None
    found = _repository(start)
    if found is None:
        return (start, tuple(exclude), None)  # not in a repository (a `git init` later is seen: .git appears)
    root, gitdir = found
    common = gitdir
    shared = _read(os.path.join(gitdir, "commondir"))  # worktrees keep refs in the main repository
    if shared:
        common = os.path.join(gitdir, shared)
    head = _read(os.path.join(gitdir, "HEAD"))
    parts: list[Any] = [start, tuple(exclude), root, head, _stat(os.path.join(gitdir, "index")),
                        _stat(os.path.join(common, "packed-refs")), _stat(os.path.join(common, "config")),
                        _stat(os.path.join(gitdir, "config"))]
    if head and head.startswith("ref:"):
        ref = head[4:].strip()
        parts.append(_stat(os.path.join(gitdir, ref)) or _stat(os.path.join(common, ref)))
    parts.extend(_stat(os.path.join(root, path)) for path in watched)
    return tuple(parts)


def _changed_paths(git: dict[str, Any]) -> list[str]:
    """The files whose edits the last capture saw (diff headers, untracked): watched for more."""
    paths = list(git.get("untracked") or [])
    for line in (git.get("diff") or "").split("\n"):
        if line.startswith("diff --git a/"):
            paths.append(line[len("diff --git a/"):].split(" b/", 1)[0])
    return paths


class GitCache:
    """The last git facts, per start folder and store exclusion, valid while their key holds."""

    def __init__(self) -> None:
        self._lock = _forksafe.lock()  # one per process: environment._GIT
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[tuple[Any, ...], float, list[str], Any]] = {}

    def get(self, start: str, exclude: Sequence[str], capture: Callable[[str, Sequence[str]], Any],
            extra_watch: Sequence[str] = ()) -> Any:
        start = os.path.abspath(start)
        where = (start, tuple(exclude))
        with self._lock:  # two captures at once: the second reuses the first's answer
            entry = self._entries.get(where)
            if entry is not None:
                key, at, watched, value = entry
                if time.monotonic() - at < GIT_CACHE_SECONDS and key is not None and \
                        _key(start, exclude, watched) == key:
                    return _copy(value)
            value = capture(start, exclude)
            watched = (_changed_paths(value) if value else []) + [p for p in extra_watch if p]
            key = _key(start, exclude, watched)
            if len(self._entries) > 16:
                self._entries.clear()
            self._entries[where] = (key, time.monotonic(), watched, value)
            return _copy(value)


def _copy(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if isinstance(out.get("untracked"), list):
        out["untracked"] = list(out["untracked"])
    return out
