"""Why two runs differ: the recorded causes, ranked, and where their metrics part ways.

``diff_runs`` lists everything that differs; this module answers the question a user asks of
that list: which of it can explain a different result. Causes come in a fixed order, the most
decisive first (a changed param or line of code explains a result outright; a different thread
count only might): params, code, data, seeds and random state, packages that compute (the
frameworks and their numerics, not every package), hardware and threads, nondeterministic
kernels. It is pure: it reads the two records (and, for a code change between two commits,
asks the local git repository for the diff when it has both commits) and returns plain data.
"""

from __future__ import annotations

import math
import os
import re
import struct
import subprocess
from typing import Any

from autotrack._diff import code_diff, same_value
from autotrack._records import RunRecord

__all__ = ["CAUSES", "MATTERING_PACKAGES", "TIMING_SUFFIXES", "divergence", "explain", "is_timing"]

CAUSES = ("params", "code", "data", "random", "packages", "hardware", "nondeterminism")

# Packages whose version changes numbers: the frameworks, their kernels and numerics.
MATTERING_PACKAGES = (
    "numpy", "scipy", "pandas", "torch", "torchvision", "torchaudio", "lightning", "pytorch-lightning",
    "torchmetrics", "tensorflow", "tensorflow-cpu", "tf-keras", "keras", "jax", "jaxlib", "scikit-learn",
    "xgboost", "xgboost-cpu", "lightgbm", "catboost", "transformers", "accelerate", "tokenizers", "datasets",
    "safetensors", "peft", "numba", "mkl", "intel-openmp", "nvidia-cudnn-cu12", "nvidia-cublas-cu12",
    "triton", "onnxruntime", "opencv-python", "pillow",
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _env(run: RunRecord) -> dict[str, Any]:
    return _dict(run.environment)


def _bits(value: Any) -> Any:
    """A metric value as its bits: 0.1 from two runs is the same only if every bit is."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack("<d", value)
    return value


# Metrics that time the machine (transformers' ``train_runtime``, ``train_samples_per_second``):
# measurements of the hardware, never the same twice, so never counted as a result that diverged.
TIMING_SUFFIXES = ("_runtime", "_per_second", "_time", "_seconds", "_duration", "_throughput")


def is_timing(name: str) -> bool:
    return name.startswith("system/") or name.lower().endswith(TIMING_SUFFIXES)


def divergence(a: RunRecord, b: RunRecord, skip_timing: bool = True) -> dict[str, dict[str, Any]]:
    """Per metric name whose points are not bit-for-bit the same: the first point that differs
    (``step``, ``epoch``, the two values; a metric one run lacks has ``missing``). System metrics
    and timings (``is_timing``) are left out unless ``skip_timing`` is False."""
    out: dict[str, dict[str, Any]] = {}
    ma, mb = a.metrics, b.metrics
    for name in sorted(set(ma) | set(mb)):
        if skip_timing and is_timing(name):
            continue  # the hardware's own figures never repeat; they are not results
        if name not in ma or name not in mb:
            out[name] = {"missing": "a" if name not in ma else "b"}
            continue
        pa, pb = list(ma[name]), list(mb[name])
        for i in range(max(len(pa), len(pb))):
            x = pa[i] if i < len(pa) else None
            y = pb[i] if i < len(pb) else None
            if x is None or y is None or (x.step, x.epoch, _bits(x.value)) != (y.step, y.epoch, _bits(y.value)):
                ref = x or y
                out[name] = {"index": i, "step": ref.step, "epoch": ref.epoch,
                             "a": None if x is None else x.value, "b": None if y is None else y.value}
                break
    return out


def _cause(kind: str, summary: str, **details: Any) -> dict[str, Any]:
    return {"cause": kind, "summary": summary, **details}


def _params(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    keys = sorted(set(a.params) | set(b.params))
    changed = {k: [a.params.get(k), b.params.get(k)] for k in keys if not same_value(a.params.get(k), b.params.get(k))}
    if not changed:
        return None
    shown = ", ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in list(changed.items())[:3])
    more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
    return _cause("params", f"params changed: {shown}{more}", changed=changed)


_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")


def _commit_diff(root: Any, c1: Any, c2: Any) -> str | None:
    """``git diff c1 c2`` from the repository the runs were recorded in, when it is here. A
    commit is used only when it is one (hex): a recorded ``--output=FILE`` is not an option."""
    if not isinstance(root, str) or not os.path.isdir(root):
        return None
    if not all(isinstance(c, str) and _COMMIT.fullmatch(c) for c in (c1, c2)):
        return None
    try:
        done = subprocess.run(["git", "-C", root, "diff", "--no-color", "--no-ext-diff", c1, c2],
                              check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _code(a: RunRecord, b: RunRecord, repository: bool = True) -> dict[str, Any] | None:
    ga, gb = _dict(_env(a).get("git")), _dict(_env(b).get("git"))
    if not ga and not gb:
        return None
    parts, details = [], {}
    if ga.get("commit") != gb.get("commit"):
        parts.append(f"commit {str(ga.get('commit'))[:10]} -> {str(gb.get('commit'))[:10]}")
        if repository and ga.get("commit") and gb.get("commit"):
            details["commits_diff"] = _commit_diff(gb.get("root") or ga.get("root"), ga["commit"], gb["commit"])
    recorded = code_diff(a, b)
    if recorded is not None and not recorded["same"]:
        da, db = ga.get("diff") or "", gb.get("diff") or ""
        if not da:  # A's tree was clean: B's uncommitted changes are the change, as git shows them
            parts.append(f"B has uncommitted changes ({len(db.splitlines())} diff lines)")
            details["uncommitted_diff"] = db
        elif not db:
            parts.append("A had uncommitted changes B lacks (A's diff shown; B undoes it)")
            details["uncommitted_diff"] = da
        else:  # both dirty: how the two diffs differ ("-+x" is a line A added that B does not)
            parts.append("the uncommitted changes differ (a diff of the two diffs)")
            details["uncommitted_diff"] = recorded["unified"]
    if not parts:
        return None
    return _cause("code", "code changed: " + "; ".join(parts), **details)


def _data(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    from autotrack._diff import DATA_FIELDS

    changed = {}
    for name in sorted(set(a.data) | set(b.data)):
        pa, pb = _dict(a.data.get(name)), _dict(b.data.get(name))
        fields = [f for f in DATA_FIELDS if not same_value(pa.get(f), pb.get(f))]
        if fields or (name in a.data) != (name in b.data):
            changed[name] = fields or ["presence"]
    if not changed:
        return None
    return _cause("data", "data changed: " + ", ".join(f"{n} ({', '.join(f)})" for n, f in changed.items()),
                  changed=changed)


def _random(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    from autotrack._rng import resolved

    seeds = {k: [a.seeds.get(k), b.seeds.get(k)] for k in sorted(set(a.seeds) | set(b.seeds))
             if k != "torch.initial_seed" and not same_value(a.seeds.get(k), b.seeds.get(k))}
    ra, rb = _env(a).get("random_state"), _env(b).get("random_state")
    states = []
    if isinstance(ra, dict) and isinstance(rb, dict):
        for point in ("autolog", "run_start"):
            sa, sb = resolved(ra, point), resolved(rb, point)
            states += [f"{name} at {point.replace('_', ' ')}" for name in sorted(set(sa) & set(sb)) if sa[name] != sb[name]]
    torch_seed = [a.seeds.get("torch.initial_seed"), b.seeds.get("torch.initial_seed")]
    if not same_value(*torch_seed):
        seeds["torch.initial_seed"] = torch_seed
    if not seeds and not states:
        return None
    parts = [f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in seeds.items()] + ([f"random state differs ({', '.join(states)})"]
                                                                         if states else [])
    return _cause("random", "seeds or random state differ: " + "; ".join(parts), seeds=seeds, states=states)


def _packages(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    pa, pb = _dict(_env(a).get("packages")), _dict(_env(b).get("packages"))
    if not pa or not pb:
        return None
    changed = {n: [pa.get(n), pb.get(n)] for n in MATTERING_PACKAGES if (n in pa or n in pb) and pa.get(n) != pb.get(n)}
    ver = [_dict(_env(r).get("python")).get("version") for r in (a, b)]
    if ver[0] and ver[1] and ver[0] != ver[1]:
        changed["python"] = ver
    if not changed:
        return None
    return _cause("packages", "package versions differ: " + ", ".join(f"{n} {v[0]} -> {v[1]}" for n, v in changed.items()),
                  changed=changed)


def _hardware(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    def facts(run: RunRecord) -> dict[str, Any]:
        env = _env(run)
        hw = _dict(env.get("hardware"))
        gpus = hw.get("gpus") if isinstance(hw.get("gpus"), list) else []
        threads = {f"{k} threads": v.get("threads") for k, v in _dict(env.get("determinism")).items()
                   if isinstance(v, dict) and "threads" in v}
        cmd_env = _dict(_dict(env.get("command")).get("env"))
        return {"cpu": _dict(hw.get("cpu")).get("model"), "usable cores": _dict(hw.get("cpu")).get("usable"),
                "gpus": [g.get("name") for g in gpus if isinstance(g, dict)],
                "machine": _dict(env.get("platform")).get("machine"), **threads,
                **{k: v for k, v in cmd_env.items() if k != "PYTHONHASHSEED"}}
    fa, fb = facts(a), facts(b)
    changed = {k: [fa.get(k), fb.get(k)] for k in sorted(set(fa) | set(fb)) if not same_value(fa.get(k), fb.get(k))}
    hashseed = [_dict(_dict(_env(r).get("command")).get("env")).get("PYTHONHASHSEED") for r in (a, b)]
    if hashseed[0] != hashseed[1]:
        changed["PYTHONHASHSEED"] = hashseed
    if not changed:
        return None
    return _cause("hardware", "hardware, threads or settings differ: "
                  + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in changed.items()), changed=changed)


_TF_SEEDS = {"tf.random.set_seed", "tf.global_seed", "keras.utils.set_random_seed", "keras.global_seed",
             "autotrack.seed_everything"}


def _nondeterminism(a: RunRecord, b: RunRecord) -> dict[str, Any] | None:
    sides: dict[str, list[str]] = {}  # what may vary run to run -> the runs it applies to
    for side, run in (("A", a), ("B", b)):
        det = _dict(_env(run).get("determinism"))
        gpus = _dict(_env(run).get("hardware")).get("gpus")
        torch, tf = _dict(det.get("torch")), _dict(det.get("tensorflow"))
        found = []
        if gpus and torch and not torch.get("deterministic_algorithms"):
            found.append("torch deterministic algorithms off on a GPU")
        if gpus and tf and not tf.get("op_determinism"):
            found.append("TensorFlow op determinism off on a GPU")
        if "tensorflow" in det and not set(run.seeds) & _TF_SEEDS:
            found.append("TensorFlow without a global seed (its unseeded ops, Keras' shuffle among them, draw from "
                         "the OS: tf.random.set_seed or keras.utils.set_random_seed)")
        for flag in found:
            sides.setdefault(flag, []).append(side)
    if not sides:
        return None
    flags = [f"{'both' if len(who) == 2 else who[0]}: {flag}" for flag, who in sides.items()]
    return _cause("nondeterminism", "nondeterminism possible: " + "; ".join(flags), flags=flags)


def explain(a: RunRecord, b: RunRecord, repository: bool = True) -> dict[str, Any]:
    """``{"causes": [...], "divergence": {...}, "same_results": bool}``: ``causes`` in the order of
    ``CAUSES``, each ``{"cause", "summary", ...details}``; ``divergence`` as ``divergence()``.
    ``repository=False``: never ask a local git repository for the diff between two commits (a
    server: the recorded path is the client's, and the server's files are not the runs' to show)."""
    causes = []
    for find in (_params, _code, _data, _random, _packages, _hardware, _nondeterminism):
        found = find(a, b, repository) if find is _code else find(a, b)
        if found is not None:
            causes.append(found)
    diverged = divergence(a, b)
    return {"causes": causes, "divergence": diverged, "same_results": not diverged}
