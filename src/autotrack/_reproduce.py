"""``autotrack reproduce``: run a recorded run again and say whether it came out the same.

The record holds what a re-run needs: the commit and the uncommitted diff (the code), the
package versions (the environment), argv, cwd and the variables that change results (the
command), and the random states at ``autolog()`` and at the run's start (the randomness). This
module puts them back: the commit in a temporary ``git worktree`` (the user's checkout is never
touched) with the diff applied, the command run with the current interpreter and
``AUTOTRACK_REPLAY`` naming a file of the recorded states, which ``autotrack._rng`` restores at
the same two points in the child. It then compares the two runs point by point
(``autotrack._explain``).

What cannot be put back is refused with one clear line (``ReproduceError``), never guessed:
a diff capped at record time, a commit the repository lacks, a run not started from a git
checkout (``into=`` runs in a folder the user prepared instead).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from autotrack._errors import AutotrackError
from autotrack._records import RunRecord

__all__ = ["ReproduceError", "Workspace", "compare", "environment_changes", "ignored_paths", "prepare", "reproduce", "requirements"]

_GIT_TIMEOUT_S = 60.0


class ReproduceError(AutotrackError):
    """A run that cannot be reproduced as recorded; the message says why and what to do."""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- environment -----------------------------------------------------------------------------
def current_packages() -> dict[str, str]:
    from autotrack._capture.environment import _packages

    return _packages()


def environment_changes(run: RunRecord, packages: dict[str, str] | None = None) -> dict[str, Any]:
    """The recorded interpreter and packages against this one: ``python`` ([recorded, now] or
    None), ``changed`` (name -> [recorded, now]), ``missing`` (recorded, not installed now),
    ``extra`` (installed now, not recorded), ``recorded`` (False: the run has no package list)."""
    import platform

    env = _dict(run.environment)
    recorded = _dict(env.get("packages"))
    now = current_packages() if packages is None else packages
    python = _dict(env.get("python")).get("version")
    out: dict[str, Any] = {"recorded": bool(recorded), "changed": {}, "missing": {}, "extra": {},
                           "python": None if python in (None, platform.python_version()) else [python, platform.python_version()]}
    if not recorded:
        return out
    for name in sorted(set(recorded) | set(now)):
        if name not in now:
            out["missing"][name] = recorded[name]
        elif name not in recorded:
            out["extra"][name] = now[name]
        elif recorded[name] != now[name]:
            out["changed"][name] = [recorded[name], now[name]]
    return out


def any_change(changes: dict[str, Any]) -> bool:
    return bool(changes["python"] or changes["changed"] or changes["missing"] or changes["extra"])


def requirements(run: RunRecord) -> str:
    """A pip requirements file pinning every package the run had (``pip install -r``)."""
    env = _dict(run.environment)
    packages = _dict(env.get("packages"))
    if not packages:
        raise ReproduceError(f"run {run.id[:8]} recorded no package list (its environment was not captured)")
    python = _dict(env.get("python")).get("version")
    lines = [f"# packages of autotrack run {run.id} ({run.name})",
             f"# recorded with Python {python or 'unknown'}: install into that version",
             "# a '+local' version (torch 2.13.0+cpu) comes from its project's own index: add --index-url or"
             " --extra-index-url"]
    unknown = []
    for name, version in sorted(packages.items()):
        if not isinstance(version, str) or not version or version == "unknown":
            unknown.append(name)
            continue
        lines.append(f"{name}=={version}")
    if unknown:
        lines.append(f"# version not recorded, left out: {', '.join(unknown)}")
    return "\n".join(lines) + "\n"


# -- code ------------------------------------------------------------------------------------
class Workspace:
    """Where the replay runs: a worktree of the recorded commit (removed by ``close``) or ``--in DIR``."""

    def __init__(self, root: str, cwd: str, script: str | None, repo: str | None, notes: list[str]) -> None:
        self.root, self.cwd, self.script, self.repo, self.notes = root, cwd, script, repo, notes

    def close(self) -> None:
        if self.repo is None:
            return
        subprocess.run(["git", "-C", self.repo, "worktree", "remove", "--force", self.root], check=False,
                       capture_output=True, timeout=_GIT_TIMEOUT_S)
        shutil.rmtree(os.path.dirname(self.root), ignore_errors=True)
        subprocess.run(["git", "-C", self.repo, "worktree", "prune"], check=False, capture_output=True, timeout=_GIT_TIMEOUT_S)


def _git(args: list[str], cwd: str, data: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], check=False, cwd=cwd, input=data, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S)


def _find_repo(git: dict[str, Any], commit: str) -> str:
    """The repository holding ``commit``: the one recorded, if it is on this machine, else the one
    around the current directory."""
    candidates = [git.get("root"), os.getcwd()]
    tried = []
    for path in candidates:
        if not isinstance(path, str) or not os.path.isdir(path):
            continue
        top = _git(["rev-parse", "--show-toplevel"], path)
        if top.returncode != 0:
            continue
        root = top.stdout.strip()
        tried.append(root)
        if _git(["cat-file", "-e", f"{commit}^{{commit}}"], root).returncode == 0:
            return root
    where = " or ".join(dict.fromkeys(tried)) or "no git repository here (nor at the recorded path)"
    raise ReproduceError(f"commit {commit[:12]} is not in the repository ({where}): fetch it, or prepare the "
                         "code yourself and pass --in DIR")


def _relative(path: Any, root: Any) -> str | None:
    if not isinstance(path, str) or not isinstance(root, str):
        return None
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    return None if rel.startswith("..") else rel


def prepare(run: RunRecord, into: str | None = None, link: tuple[str, ...] = ()) -> Workspace:
    """The code as recorded, or a clear refusal. ``into``: a folder the user prepared (the
    recorded cwd and script are looked up relative to it, as they were to the repository).
    ``link``: paths of the checkout that git ignores (a data folder) to link into the worktree,
    as they are now: the data fingerprints then say whether they are still what the run read."""
    env = _dict(run.environment)
    git, command = _dict(env.get("git")), _dict(env.get("command"))
    rel_cwd = _relative(command.get("cwd"), git.get("root")) or "."
    rel_script = _relative(command.get("script"), git.get("root"))
    if into is not None:
        root = os.path.abspath(into)
        if not os.path.isdir(root):
            raise ReproduceError(f"--in {into}: no such folder")
        script = os.path.join(root, rel_script) if rel_script else command.get("script")
        cwd = os.path.join(root, rel_cwd)
        return Workspace(root, cwd if os.path.isdir(cwd) else root, script, None, [f"code: the folder {root} (--in)"])
    if not git:
        raise ReproduceError(f"run {run.id[:8]} was not started from a git checkout (no commit recorded): prepare "
                             "the code yourself and pass --in DIR")
    commit = git.get("commit")
    if not commit:
        raise ReproduceError(f"run {run.id[:8]} was started in a repository without a commit: prepare the code "
                             "yourself and pass --in DIR")
    if git.get("diff_truncated"):
        raise ReproduceError(f"run {run.id[:8]}'s uncommitted diff was capped at record time ({git.get('diff_bytes')} "
                             "bytes, more than autotrack keeps): the code cannot be rebuilt; pass --in DIR")
    diff = git.get("diff") or ""
    if "\nBinary files " in "\n" + diff:
        raise ReproduceError(f"run {run.id[:8]}'s uncommitted diff changes binary files, which a text diff cannot "
                             "restore: pass --in DIR")
    if not rel_script:
        raise ReproduceError(f"run {run.id[:8]}'s script ({command.get('script')}) is not inside its repository "
                             f"({git.get('root')}): pass --in DIR")
    repo = _find_repo(git, commit)
    parent = tempfile.mkdtemp(prefix=f"autotrack-reproduce-{run.id[:8]}-")
    root = os.path.join(parent, "code")
    added = _git(["worktree", "add", "--detach", root, commit], repo)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise ReproduceError(f"git worktree add failed: {added.stderr.strip()}")
    ws = Workspace(root, os.path.join(root, rel_cwd), os.path.join(root, rel_script), repo,
                   [f"code: commit {commit[:12]} of {repo}, in a temporary worktree"])
    try:
        if diff:
            applied = _git(["apply", "--whitespace=nowarn", "-"], root, data=diff if diff.endswith("\n") else diff + "\n")
            if applied.returncode != 0:
                raise ReproduceError(f"the recorded diff does not apply to commit {commit[:12]}: {applied.stderr.strip()}")
            ws.notes.append(f"code: the recorded uncommitted diff applied ({len(diff.splitlines())} lines)")
        _copy_untracked(git, repo, root, ws.notes)
        _link(link, repo, root, ws.notes)
        os.makedirs(ws.cwd, exist_ok=True)
    except BaseException:
        ws.close()
        raise
    return ws


def _copy_untracked(git: dict[str, Any], repo: str, root: str, notes: list[str]) -> None:
    """Untracked files are not in a diff: copied from the checkout as they are now (unrecorded)."""
    copied = []
    for rel in git.get("untracked") or []:
        source = os.path.join(repo, str(rel))
        if os.path.isfile(source) and not os.path.exists(os.path.join(root, str(rel))):
            os.makedirs(os.path.dirname(os.path.join(root, str(rel))), exist_ok=True)
            shutil.copy2(source, os.path.join(root, str(rel)))
            copied.append(str(rel))
    if copied:
        notes.append(f"code: {len(copied)} untracked file(s) copied from {repo} as they are now (not recorded): "
                     + ", ".join(copied[:5]) + (" ..." if len(copied) > 5 else ""))


def _link(paths: tuple[str, ...], repo: str, root: str, notes: list[str]) -> None:
    for rel in paths:
        source = os.path.join(repo, rel)
        target = os.path.join(root, rel)
        if not os.path.exists(source):
            raise ReproduceError(f"--link {rel}: no such path in {repo}")
        if os.path.lexists(target):
            raise ReproduceError(f"--link {rel}: the recorded code has it already (it is in git)")
        os.makedirs(os.path.dirname(target) or root, exist_ok=True)
        os.symlink(os.path.abspath(source), target)
        notes.append(f"code: {rel} linked from {repo} as it is now (not recorded; writes go there)")


def ignored_paths(repo: str | None) -> list[str]:
    """Top-level paths of the checkout that git ignores: not in a worktree (a data folder?)."""
    if not repo:
        return []
    found = _git(["ls-files", "--others", "--ignored", "--exclude-standard", "--directory"], repo)
    return sorted({line.rstrip("/").split("/")[0] for line in found.stdout.splitlines() if line.strip()})


# -- command ---------------------------------------------------------------------------------
def command_for(run: RunRecord, ws: Workspace) -> list[str]:
    argv = [str(a) for a in _dict(_dict(run.environment).get("command")).get("argv") or []]
    if not argv or argv[0] in ("-c", "") or not ws.script:
        raise ReproduceError(f"run {run.id[:8]} was not started from a script (argv {argv[:1]}): nothing to run again")
    return [sys.executable, ws.script, *argv[1:]]


def child_env(run: RunRecord, uri: str, spec_path: str) -> dict[str, str]:
    from autotrack._rng import REPLAY_ENV, RESULT_ENV_VARS

    env = dict(os.environ)
    recorded = _dict(_dict(run.environment).get("command")).get("env")
    if isinstance(recorded, dict):  # recorded by autotrack 0.2+: set exactly those, unset the others
        for name in RESULT_ENV_VARS:
            if name in recorded:
                env[name] = str(recorded[name])
            else:
                env.pop(name, None)
    env["AUTOTRACK_URI"] = uri
    env[REPLAY_ENV] = spec_path
    return env


# -- the verdict -----------------------------------------------------------------------------
def _models(run: RunRecord) -> dict[str, Any]:
    return {a.name: a for a in run.artifacts if a.kind == "model"}


def compare(original: RunRecord, new: RunRecord) -> dict[str, Any]:
    """``{"verdict": "identical"|"differs", "divergence", "models", "causes", "status"}``:
    identical means every metric point bit-for-bit and every model file byte-for-byte (or its
    weights, when its bytes hold a timestamp: ``autotrack._weights``)."""
    from autotrack._explain import explain
    from autotrack._weights import same_weights

    found = explain(original, new)
    models: dict[str, str] = {}
    ma, mb = _models(original), _models(new)
    for name in sorted(set(ma) | set(mb)):
        if name not in ma or name not in mb:
            models[name] = "only in the original" if name in ma else "only in the replay"
        elif ma[name].sha256 == mb[name].sha256:
            models[name] = "same bytes"
        else:
            models[name] = "same weights" if same_weights(ma[name], mb[name]) else "differ"
    same = (found["same_results"] and all(v.startswith("same") for v in models.values())
            and new.status == "finished")
    return {"verdict": "identical" if same else "differs", "divergence": found["divergence"], "models": models,
            "causes": found["causes"], "status": [original.status, new.status]}


def reproduce(run: RunRecord, uri: str, *, into: str | None = None, strict: bool = False, link: tuple[str, ...] = (),
              say: Callable[[str], None] = print, stdout: Any = None) -> dict[str, Any]:
    """Re-run ``run``, recording into ``uri``; returns ``compare``'s answer plus ``run`` (the
    new run's id), ``environment`` (``environment_changes``) and ``notes``."""
    from autotrack._records import get_run

    changes = environment_changes(run)
    if strict and any_change(changes):
        raise ReproduceError("--strict: the environment differs from the recorded one (see above); "
                             f"'autotrack env {run.id[:8]} --requirements' writes one that matches")
    ws = prepare(run, into, link)
    try:
        argv = command_for(run, ws)
        for note in ws.notes:
            say(note)
        shown = [os.path.relpath(argv[1], ws.cwd), *argv[2:]]
        say(f"command: python {' '.join(shown)}  (in {os.path.normpath(ws.cwd)}, with the recorded random state)")
        with tempfile.TemporaryDirectory(prefix="autotrack-replay-") as tmp:
            spec = {"run": run.id, "run_index": _dict(_dict(run.environment).get("random_state")).get("run_index", 0),
                    "random_state": _dict(run.environment).get("random_state") or {},
                    "tags": {"reproduces": run.id}, "out": os.path.join(tmp, "new-run.json")}
            spec_path = os.path.join(tmp, "replay.json")
            with open(spec_path, "w", encoding="utf-8") as fh:
                json.dump(spec, fh)
            done = subprocess.run(argv, check=False, cwd=ws.cwd, env=child_env(run, uri, spec_path), stdout=stdout)
            if not os.path.exists(spec["out"]):
                store = os.path.realpath(uri) if "://" not in uri else ""
                ignored = [p for p in ignored_paths(ws.repo) if p not in link and not p.startswith(".")
                           and os.path.realpath(os.path.join(ws.repo or "", p)) != store]
                hint = (f"; git ignores {', '.join(ignored[:5])} in {ws.repo}, so the worktree lacks it: --link PATH "
                        "uses your checkout's copy") if ignored else ""
                raise ReproduceError(f"the replay (exit status {done.returncode}) recorded no run (did the script "
                                     f"start one the way it did before?){hint}")
            with open(spec["out"], encoding="utf-8") as fh:
                started = json.load(fh)
        new = get_run(started["run"], uri=started.get("uri") or uri)
        result = compare(run, new)
    finally:
        ws.close()
    result.update(run=new.id, original=run.id, environment=changes, notes=ws.notes, exit_status=done.returncode)
    return result
