"""CI quick mode of the benchmarks (bench/run.py): a regression shows in the log, noise never fails.

Only crashes fail this test: a MISS verdict is a measurement on a possibly noisy machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_quick_import_and_hotpath(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_")}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick", "--only", "import,hotpath",
                           "--json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    print(proc.stdout)  # the figures stay visible in the CI log (pytest -s or on failure)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    verdicts = [line for line in proc.stdout.splitlines() if "VERDICT " in line]
    assert any("import:" in line for line in verdicts), proc.stdout
    assert any("hotpath:" in line for line in verdicts), proc.stdout
    assert all(("PASS" in line) or ("MISS" in line) or ("SKIP" in line) for line in verdicts)
    assert out.exists()
