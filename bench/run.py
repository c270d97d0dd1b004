"""Run the autotrack benchmarks: ``python bench/run.py [--quick] [--only NAME[,NAME]] [--json OUT]``.

Workloads: import, hotpath, training, scale, checkpoints, http, registry, system, search, perrun
(docs/benchmarks.md). Every figure is measured against a baseline in the same run, interleaved,
as medians and ratios, and ends in ``VERDICT PASS|MISS|SKIP`` lines. The exit status is 0
unless a workload crashed: a MISS is a measurement (this machine may be noisy), not an error.

Peers (MLflow, W&B offline, DVCLive) are extra columns when importable, from the environment
(``pip install 'autotrack-ml[bench]'``) or from a folder named by ``AUTOTRACK_BENCH_PEERS``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

WORKLOADS = ("import", "hotpath", "training", "scale", "checkpoints", "http", "registry", "system", "search", "perrun")


def machine() -> dict[str, object]:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {"autotrack": version("autotrack-ml")}  # our distribution; PyPI's "autotrack" is another project
    versions.update((name, version(name)) for name in ("lightning", "torch", "keras", "tensorflow-cpu",
                                                       "scikit-learn", "xgboost-cpu", "xgboost", "lightgbm", "catboost",
                                                       "optuna", "optuna-integration", "ray", "skops", "wrapt"))
    for peer in _common.PEERS:  # from their metadata: importing them here (mlflow, wandb: threads, a large
        # heap) made this process's in-process workloads slower (the hot path: 4.9 against 2 µs a call)
        versions[peer] = version(peer) if _common.installed(peer) else None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cpus": os.cpu_count(), "versions": versions}


def _compile_autotrack() -> str:
    """Write autotrack's ``.pyc`` files, as ``pip install`` does for autotrack and for every peer.

    From a source checkout with ``PYTHONDONTWRITEBYTECODE=1`` (this project's machines set it),
    every child process would otherwise compile autotrack's modules from source again: ~70 ms
    of ``compile()`` a process that no installed user pays, and no peer either (issue 20)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("autotrack")
    if spec is None or not spec.submodule_search_locations:
        return ""
    folder = list(spec.submodule_search_locations)[0]
    try:
        compileall.compile_dir(folder, quiet=1)
    except OSError as exc:  # a read-only install: then it was compiled at install
        return f"not written: {exc}"
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (~1-2 minutes)")
    parser.add_argument("--only", help=f"comma-separated workloads among {', '.join(WORKLOADS)}; "
                                       "training also takes training:lightning,training:keras,...")
    parser.add_argument("--repeats", type=int, metavar="N", help="interleaved repeats of the training, system and "
                                                                  "search workloads (default: 5, 2 with --quick)")
    parser.add_argument("--json", metavar="OUT", help="write every figure and verdict to this JSON file")
    args = parser.parse_args(argv)
    chosen = [w.strip() for w in args.only.split(",")] if args.only else list(WORKLOADS)
    names = {w.split(":")[0] for w in chosen}
    unknown = names - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    training_only = [w.split(":", 1)[1] for w in chosen if w.startswith("training:")] or None
    compiled = _compile_autotrack()
    info = machine()
    print(f"autotrack benchmarks ({'quick' if args.quick else 'full'}): Python {info['python']}, {info['cpus']} CPUs, "
          f"{info['cpu']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))
    print(f"peers: {', '.join(_common.peers()) or 'none installed'}")
    if compiled:
        print(f"compiled autotrack's bytecode first ({compiled}), as pip does at install")
    crashed = []
    started = time.time()
    for name in WORKLOADS:
        if name not in names:
            continue
        try:
            module = __import__(f"_{name}")
            if name == "training":
                module.run(args.quick, training_only, args.repeats)
            elif name in ("system", "search", "perrun"):
                module.run(args.quick, args.repeats)
            else:
                module.run(args.quick)
        except Exception:  # noqa: BLE001 - report, go on with the next workload
            crashed.append(name)
            print(f"  ERROR {name} crashed:\n" + traceback.format_exc(), flush=True)
    verdicts = [r for r in _common.RESULTS if r.get("verdict") in ("PASS", "MISS", "SKIP")]
    print(f"\n== summary ({time.time() - started:.0f} s) ==")
    for r in verdicts:
        print(f"  {r['verdict']:4}  {r['workload']}: {r.get('goal', r.get('detail'))}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"quick": args.quick, "machine": info, "results": _common.RESULTS, "crashed": crashed}, fh,
                      indent=1, default=str)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
