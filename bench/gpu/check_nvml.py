"""Check autotrack's GPU system metrics against the real NVML, on a machine with an NVIDIA GPU.

    pip install -e '.[gpu]' torch      # nvidia-ml-py (import name pynvml) and a CUDA build of torch
    python bench/gpu/check_nvml.py [--seconds 8] [--gib 16] [--json OUT]

The test suite runs the GPU code path through a fake ``pynvml`` only (tests/core/fake_nvml); this
script is the real one. It records a run with sampling every second while a matmul loop keeps
the first visible GPU busy and holds ~``--gib`` GiB through PyTorch, reads the run back through
the public API, and checks:

1. utilisation rises: the loop's highest sample is >= 50 % and 30 points above the idle reading;
2. this process's memory on the GPU (``gpu/N/process_memory_bytes``, NVML's per-process figure)
   matches ``torch.cuda.memory_reserved()`` within 10 % (NVML adds the CUDA context, a few hundred
   MiB, hence the large allocation);
3. every other per-GPU figure (memory used/total, temperature, power and limit, clocks, throttle
   reasons) is present and plausible, and the run's environment names the GPUs, not "absent".

Prints one ``PASS``/``FAIL`` line per check; exit status 0 when all pass. In a container with its
own pid namespace NVML reports host pids: check 2 then fails with a note saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "src"))  # this checkout's autotrack, installed or not


def nvml_index(torch) -> int:  # noqa: ANN001
    """NVML's index of torch's device 0 (CUDA_VISIBLE_DEVICES may renumber), matched by UUID."""
    import pynvml

    pynvml.nvmlInit()
    try:
        uuid = str(getattr(torch.cuda.get_device_properties(0), "uuid", "") or "")
        for i in range(pynvml.nvmlDeviceGetCount()):
            found = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            found = found.decode() if isinstance(found, bytes) else found
            if uuid and found.removeprefix("GPU-") == uuid.removeprefix("GPU-"):
                return i
    finally:
        pynvml.nvmlShutdown()
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the matmul loop")
    parser.add_argument("--gib", type=float, default=16.0, help="GiB to hold through PyTorch during the loop")
    parser.add_argument("--json", help="write the figures and verdicts here")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("FAIL  no CUDA device visible to torch: nothing to check")
        return 2
    os.environ["AUTOTRACK_SYSTEM_METRICS_SECONDS"] = "1"
    import autotrack
    from autotrack._capture.system import Probe

    gpu = nvml_index(torch)
    probe = Probe({})  # the sampler's own reader, on this thread for the idle figure only
    time.sleep(1.0)
    idle = probe.read()[0].get(f"gpu/{gpu}/utilization_percent")
    probe.close()
    store = tempfile.mkdtemp(prefix="autotrack-nvml-")
    dev = torch.device("cuda", 0)
    with autotrack.start_run(name="nvml-check", uri=store, system_metrics=True) as run:
        ballast = torch.empty(int(args.gib * 2**30), dtype=torch.uint8, device=dev)  # noqa: F841 - held
        a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
        end, step = time.time() + args.seconds, 0
        while time.time() < end:
            for _ in range(20):
                a = (a @ b).clamp_(-1, 1)
            torch.cuda.synchronize()
            step += 1
            run.log_metrics({"loop": float(step)}, step=step)
        reserved = torch.cuda.memory_reserved(dev)
        time.sleep(1.2)  # one more sample with the memory held, then the last one at the end of the run
    rec = autotrack.get_run(run.id, uri=store)
    pre = f"system/gpu/{gpu}/"
    series = {n[len(pre):]: [p.value for p in pts] for n, pts in rec.metrics.items() if n.startswith(pre)}
    info = rec.environment.get("system_metrics", {})
    checks = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    util = series.get("utilization_percent", [])
    peak = max(util, default=0.0)
    check("utilisation rises during the matmul loop", peak >= 50 and peak >= (idle or 0) + 30,
          f"idle {idle} %, samples {util}")
    proc_mem = max(series.get("process_memory_bytes", []), default=0.0)
    note = "" if proc_mem else " (0: NVML lists host pids; in a pid namespace none is this process)"
    check("this process's GPU memory matches torch.cuda.memory_reserved() within 10 %",
          reserved and abs(proc_mem - reserved) <= 0.10 * reserved,
          f"NVML {proc_mem / 2**30:.2f} GiB, torch reserved {reserved / 2**30:.2f} GiB{note}")
    wanted = ("memory_used_bytes", "memory_total_bytes", "temperature_c", "power_watts", "power_limit_watts",
              "sm_clock_mhz", "memory_clock_mhz", "throttle_reasons")
    missing = [k for k in wanted if not series.get(k)]
    plausible = (not missing and 0 < max(series["memory_used_bytes"]) <= max(series["memory_total_bytes"])
                 and 10 < max(series["temperature_c"]) < 110 and 0 < max(series["power_watts"]) <= 1.2 * max(
                     series["power_limit_watts"]) and max(series["sm_clock_mhz"]) > 100)
    check("every per-GPU figure is present and plausible", plausible,
          f"missing {missing}" if missing else ", ".join(f"{k} max {max(series[k]):.4g}" for k in wanted))
    check("the run's environment names the GPUs", "via NVML" in str(info.get("gpu")), str(info.get("gpu")))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"gpu_index": gpu, "idle_util": idle, "reserved": reserved, "series": series, "info": info,
                       "checks": checks, "torch": torch.__version__, "device": torch.cuda.get_device_name(0)}, fh,
                      indent=1)
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
