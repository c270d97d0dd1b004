"""Snapshot of where a run happened, so a result can be reproduced or explained later.

Captured once per run on a background thread: it may take ~100 ms, but it must never hang
(every subprocess has a timeout) and never raise (every probe degrades to None / empty).
It never imports an ML framework: importing one would cost seconds and could change the
user's program (CUDA initialisation, TF logging, thread pools).
"""

from __future__ import annotations

import codecs
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from autotrack import _forksafe
from autotrack._capture.gitcache import GitCache, once

__all__ = ["capture_environment", "capture_git", "GIT_DIFF_CAP_BYTES"]

# A diff can be as large as a vendored data file; past this it is noise that bloats every run.
GIT_DIFF_CAP_BYTES = 512 * 1024

_UNTRACKED_MAX = 1000
_GIT_TIMEOUT_S = 10.0
_NVIDIA_SMI_TIMEOUT_S = 5.0

_FRAMEWORKS = (
    "torch", "lightning", "pytorch-lightning", "torchmetrics", "tensorflow", "tensorflow-cpu",
    "keras", "tf-keras", "scikit-learn", "xgboost", "xgboost-cpu", "lightgbm", "catboost", "optuna", "ray",
    "transformers", "accelerate", "peft", "datasets", "tokenizers", "safetensors", "jax", "jaxlib", "numpy", "pandas", "scipy",
)


def _safe(fn: Callable[[], Any], default: Any = None) -> Any:
    """One broken probe (odd /proc, exotic platform) must not cost the rest of the snapshot."""
    try:
        return fn()
    except Exception:
        return default


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_packages_cache: dict[tuple[str, ...], dict[str, str]] = {}
_packages_lock = _forksafe.lock()


def _header(text: str) -> tuple[str | None, str | None]:
    """Name and Version from a METADATA/PKG-INFO text: only the header block, no email parser
    (``importlib.metadata``'s parses the whole file, twice per package: ~1 ms each)."""
    name = version = None
    for line in text.split("\n", 200)[:200]:
        if not line.strip():
            break  # end of the headers; the description follows
        if line[:5].lower() == "name:":
            name = line[5:].strip()
        elif line[:8].lower() == "version:":
            version = line[8:].strip()
        if name and version:
            break
    return name, version


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(64 * 1024)
    except OSError:
        return None


def _scan_dir(entry: str) -> list[tuple[str, str]] | None:
    """(name, version) of the distributions found in one ``sys.path`` folder, as
    ``importlib.metadata`` would find them; None where only it can tell (zip files)."""
    folder = entry or "."
    if not os.path.isdir(folder):
        return None if os.path.exists(folder) else []
    try:
        children = os.listdir(folder)
    except OSError:
        return []
    found = []
    if folder.lower().endswith(".egg") and "EGG-INFO" in children:
        children = ["EGG-INFO"]
    for child in children:
        low = child.lower()
        if low.endswith(".dist-info"):
            text = _read(os.path.join(folder, child, "METADATA"))
        elif low.endswith(".egg-info") or low == "egg-info":
            path = os.path.join(folder, child)
            text = _read(os.path.join(path, "PKG-INFO")) if os.path.isdir(path) else _read(path)
        else:
            continue
        name, version = _header(text or "")
        if name:
            found.append((name, version or "unknown"))
    return found


def _packages() -> dict[str, str]:
    """Read from metadata only, so that listing a package never imports it.

    Cached per ``sys.path``: a process that starts many runs (a grid search) pays once. The
    folders on ``sys.path`` are read directly (their headers only): ~10x cheaper than
    ``importlib.metadata.distributions()``, which stays the fallback for zipped entries.
    """
    key_path = tuple(sys.path)
    cached = _packages_cache.get(key_path)
    if cached is not None:
        return dict(cached)
    with _packages_lock:  # runs started while the first scan goes on wait for it, not scan again
        cached = _packages_cache.get(key_path)
        if cached is not None:
            return dict(cached)
        return _scan_packages(key_path)


def _scan_packages(key_path: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in key_path:
        dists = _safe(lambda: _scan_dir(entry), [])
        if dists is None:
            return _packages_from_metadata(key_path)
        for name, version in dists:
            # The first hit follows sys.path order, i.e. the copy an import would actually load.
            found.setdefault(_normalise(name), version)
    return _cache(key_path, found)


def _packages_from_metadata(key_path: tuple[str, ...]) -> dict[str, str]:
    import importlib.metadata

    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        text = _safe(lambda: dist.read_text("METADATA") or dist.read_text("PKG-INFO"))
        name, version = _header(text or "")
        if name:
            found.setdefault(_normalise(name), version or "unknown")
    return _cache(key_path, found)


def _cache(key_path: tuple[str, ...], found: dict[str, str]) -> dict[str, str]:
    result = dict(sorted(found.items()))
    _packages_cache.clear()
    _packages_cache[key_path] = result
    return dict(result)


def _frameworks(packages: dict[str, str]) -> dict[str, str]:
    out = {name: packages[name] for name in _FRAMEWORKS if name in packages}
    # Our distribution is autotrack-ml; "autotrack" on PyPI is an unrelated project.
    version = packages.get("autotrack-ml")
    if version is None:
        # Running from a source tree: the package is already imported (we live inside it).
        version = getattr(sys.modules.get("autotrack"), "__version__", None)
    out["autotrack"] = str(version) if version else "unknown"
    return out


def _proc_field(path: str, key: str) -> str | None:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(key):
                return line.split(":", 1)[1].strip() or None
    return None


def _cpu() -> dict[str, Any]:
    model = _safe(lambda: _proc_field("/proc/cpuinfo", "model name")) or _safe(platform.processor)
    usable = None
    if hasattr(os, "sched_getaffinity"):
        # Containers and schedulers often grant fewer cores than the machine has.
        usable = _safe(lambda: len(os.sched_getaffinity(0)))
    return {"model": model or None, "count": os.cpu_count(), "usable": usable}


def _memory() -> dict[str, Any]:
    total = _safe(lambda: int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) * 1024)
    if total is None:
        total = _safe(lambda: os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return {"total_bytes": total}


def _gpus_torch() -> list[dict[str, Any]] | None:
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    # Only ask torch once CUDA is initialised: initialising it from here would cost GPU memory
    # and break fork-based launchers (Lightning's ddp_fork refuses an initialised CUDA).
    if cuda is None or not cuda.is_initialized() or not cuda.is_available():
        return None
    version = getattr(getattr(torch, "version", None), "cuda", None)
    gpus = []
    for i in range(cuda.device_count()):
        props = cuda.get_device_properties(i)
        gpus.append({"name": str(props.name), "memory_bytes": int(props.total_memory),
                     "driver": None, "cuda": version, "source": "torch"})
    return gpus


def _gpus_tensorflow() -> list[dict[str, Any]] | None:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    # Listing physical devices does not allocate GPU memory, so memory growth can still be set.
    build = _safe(lambda: dict(tf.sysconfig.get_build_info()), {})
    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = _safe(lambda: tf.config.experimental.get_device_details(dev), {}) or {}
        gpus.append({"name": details.get("device_name") or dev.name, "memory_bytes": None,
                     "driver": None, "cuda": build.get("cuda_version"), "source": "tensorflow"})
    return gpus


def _gpus_nvidia_smi() -> list[dict[str, Any]]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    proc = subprocess.run(  # a wedged driver can hang nvidia-smi, hence the timeout
        [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=_NVIDIA_SMI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        return []
    torch_cuda = getattr(getattr(sys.modules.get("torch"), "version", None), "cuda", None)
    gpus = []
    for line in proc.stdout.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]  # the name is the only free text
        if len(parts) < 3 or not parts[0]:
            continue
        mib = _safe(lambda: int(float(parts[1])))  # "[N/A]" on some virtual GPUs
        gpus.append({"name": parts[0], "memory_bytes": None if mib is None else mib << 20,
                     "driver": parts[2] or None, "cuda": torch_cuda, "source": "nvidia-smi"})
    return gpus


def _gpus() -> list[dict[str, Any]]:
    """Frameworks know what the process actually sees; nvidia-smi covers the rest."""
    # nvidia-smi's answer once per PATH (not per run: resolving it is a stat per PATH entry)
    for probe in (_gpus_torch, _gpus_tensorflow, lambda: once(f"nvidia-smi {os.environ.get('PATH')}", _gpus_nvidia_smi)):
        gpus = _safe(probe)
        if gpus:
            return gpus
    return []


def _script() -> str | None:
    argv0 = (getattr(sys, "argv", None) or [""])[0]
    if argv0 and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return None


def _git(args: list[str], cwd: str) -> str | None:
    """Run git so it can neither prompt, page, lock the index nor call user diff tools."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0",
               GIT_PAGER="cat")
    try:
        proc = subprocess.run(["git", "--no-pager", *args], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=_GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def _strip_credentials(url: str) -> str:
    """Tokens embedded in https remotes must not end up in a shared run store."""
    parts = _safe(lambda: urlsplit(url))
    if parts is None or not parts.scheme or "@" not in parts.netloc:
        return url  # includes scp-style git@host:path, whose "git" user is not a secret
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _remote(cwd: str, branch: str | None) -> str | None:
    """The branch's upstream remote, else ``origin``, else the first; one git call for all."""
    raw = _git(["config", "-z", "--get-regexp", r"^(remote\..+\.url|branch\..+\.remote)$"], cwd) or ""
    urls: dict[str, str] = {}
    upstream = None
    for item in raw.split("\0"):
        key, _, value = item.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            urls.setdefault(key[len("remote."):-len(".url")], value.strip())
        elif branch and key == f"branch.{branch}.remote":
            upstream = value.strip()
    name = next((n for n in (upstream, "origin", *urls) if n and n in urls), None)
    url = urls.get(name) if name else None
    return _strip_credentials(url) if url else None


def _status(cwd: str, spec: list[str]) -> tuple[str | None, str | None, bool, list[str]]:
    """(commit, branch, dirty, untracked) from one ``git status --porcelain=v2 --branch``."""
    raw = _git(["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", *spec], cwd) or ""
    entries = raw.split("\0")
    commit = branch = None
    dirty, untracked, i = False, [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith("# branch.oid "):
            commit = entry[len("# branch.oid "):].strip()
            commit = None if commit == "(initial)" else commit or None
        elif entry.startswith("# branch.head "):
            branch = entry[len("# branch.head "):].strip()
            branch = None if branch == "(detached)" else branch or None
        elif entry.startswith("#") or not entry:
            continue
        else:
            dirty = True
            if entry.startswith("? ") and len(untracked) < _UNTRACKED_MAX:
                untracked.append(entry[2:])
            elif entry.startswith("2 "):
                i += 1  # renames and copies carry their old path next
    return commit, branch, dirty, untracked


def _cap(raw: str) -> tuple[str, bool]:
    data = raw.encode("utf-8")
    cap = GIT_DIFF_CAP_BYTES  # read at call time so tests (and users) can lower it
    if len(data) <= cap:
        return raw, False
    cut = data[:cap]
    newline = cut.rfind(b"\n")
    if newline > 0:
        cut = cut[: newline + 1]
    # final=False drops a multi-byte character split by the cut instead of mangling it.
    return codecs.getincrementaldecoder("utf-8")("replace").decode(cut, final=False), True


def _pathspec(root: str, exclude: Sequence[str]) -> list[str]:
    """Leave autotrack's own store out: a default ``./autotrack-runs`` inside the repo would
    otherwise mark every run dirty, with the run's own files as its untracked changes."""
    specs = []
    for path in exclude:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
        if rel != "." and not rel.startswith(".."):
            specs.append(f":(top,exclude){rel}")
    return ["--", ":(top)"] + specs if specs else []


def capture_git(path: str, exclude: Sequence[str] = ()) -> dict[str, Any] | None:
    """Which code produced a run: commit, branch, remote and the uncommitted diff.

    None when git is missing or path is outside a repository; never raises, because a git
    oddity must not cost the user their run. ``exclude``: local paths (the store) to ignore.
    """
    try:
        if shutil.which("git") is None:
            return None
        cwd = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        root = _git(["rev-parse", "--show-toplevel"], cwd)
        if not root or not root.strip():
            return None
        spec = _pathspec(root.strip(), exclude)
        # four git processes in all (they compete with training for the cores)
        commit, branch, dirty, untracked = _status(cwd, spec)
        diff_args = ["HEAD"] if commit else ["--cached"]
        diff = _git(["diff", "--no-color", "--no-ext-diff", "--no-textconv", *diff_args, *spec],
                    cwd) or ""
        text, truncated = _cap(diff)
        return {
            "root": root.strip(),
            "commit": commit,
            "branch": branch,
            "remote": _remote(cwd, branch),
            "dirty": dirty,
            "diff": text,
            "diff_truncated": truncated,
            "diff_bytes": len(diff.encode("utf-8")),
            "untracked": untracked,
        }
    except Exception:
        return None


_GIT = GitCache()  # git facts, read again only when HEAD, the index or a changed file moved (gitcache)


def _fixed() -> dict[str, Any]:
    return {  # per process
        "python": {"version": _safe(platform.python_version), "implementation": _safe(platform.python_implementation),
                   "executable": sys.executable},
        "platform": {"system": _safe(platform.system), "release": _safe(platform.release),
                     "machine": _safe(platform.machine), "platform": _safe(platform.platform)},
        "hostname": _safe(socket.gethostname),
        "cpu": _safe(_cpu, {"model": None, "count": None, "usable": None}),
        "memory": _safe(_memory, {"total_bytes": None}),
    }


def capture_environment(script_dir: str | None = None, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Everything needed to explain a run later, as plain JSON types for any backend.

    The git repository is looked up next to the training script rather than the cwd, because
    scripts are often launched from elsewhere (a scheduler, a notebook server, a home dir).
    """
    started, cpu = time.perf_counter(), time.thread_time()
    script = _safe(_script)
    git_dir = script_dir or (os.path.dirname(script) if script else None) or _safe(os.getcwd)
    packages = _safe(_packages, {})
    fixed = once("fixed", _fixed)  # what cannot change within a process: read by its first run only
    env: dict[str, Any] = {
        "python": dict(fixed["python"]),
        "platform": dict(fixed["platform"]),
        "hostname": fixed["hostname"],
        "hardware": {
            "cpu": dict(fixed["cpu"]),
            "memory": dict(fixed["memory"]),
            "gpus": _gpus(),
        },
        "packages": packages,
        "frameworks": _safe(lambda: _frameworks(packages), {}),
        "git": _GIT.get(git_dir, exclude, capture_git, [script or ""]) if git_dir else None,
        "command": {
            "argv": [str(a) for a in getattr(sys, "argv", [])],
            "cwd": _safe(os.getcwd),
            "script": script,
            "executable": sys.executable,
        },
    }
    env["capture_seconds"] = time.perf_counter() - started
    # its thread's CPU time: the wall time above also counts waiting for the GIL, which a training
    # thread busy in Python holds up to 5 ms at a time after each of the capture's small reads
    env["capture_cpu_seconds"] = time.thread_time() - cpu
    return env
