"""System metrics (issue 18): a thread per run samples the process, the machine and each GPU.

Real psutil on this machine throughout; NVML through ``tests/core/fake_nvml/pynvml.py``, the one
fake the issue allows, for the GPU code path on machines without one (bench/gpu/check_nvml.py
checks the real NVML on a GPU machine). Everything is read back through the public API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from types import SimpleNamespace

import pytest

import autotrack
from autotrack import _sampler
from autotrack._capture import system
from autotrack._diff import diff_runs
from autotrack.cli import main
from tests.core.fake_nvml import pynvml as fake
from tests.core.helpers import python

FAKE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_nvml")
CHILD_MB = 200
MiB, GiB = 2**20, 2**30
EVERY = 0.3  # seconds between samples in these tests (a user's floor is 1 s: _sampler.MIN_SECONDS)


def _sampler_threads(run=None) -> list[str]:
    if run is not None and run._sampler is not None:  # started by the launcher thread (_launch): soon
        assert run._sampler._thread.started.wait(5)
    return [t.name for t in threading.enumerate() if t.name.startswith("autotrack-system-")]


@pytest.fixture
def fast(monkeypatch):
    """Samples every ``EVERY`` seconds, below the users' floor, so that tests need not wait."""
    monkeypatch.setattr(_sampler, "MIN_SECONDS", 0.05)
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS_SECONDS", str(EVERY))


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """One run of ~1.2 s sampled every 0.3 s, with a child process holding 200 MiB, on a
    machine whose NVML is the fake (two GPUs; this process and the child use GPU 0)."""
    import psutil

    mp = pytest.MonkeyPatch()
    mp.setattr(_sampler, "MIN_SECONDS", 0.05)
    mp.setenv("AUTOTRACK_SYSTEM_METRICS_SECONDS", str(EVERY))
    mp.setenv("AUTOTRACK_STRICT", "1")
    mp.setitem(sys.modules, "pynvml", fake)
    mp.setattr(_sampler, "_notes", None)  # probed anew (module scope: before the per-test reset)
    store = str(tmp_path_factory.mktemp("system") / "store")
    child = subprocess.Popen([sys.executable, "-c", f"import time; b = b'x' * ({CHILD_MB} * 2**20); "
                              "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        fake.reset(procs=[[(os.getpid(), 5 * GiB), (child.pid, GiB), (4_000_000, 7 * GiB)], []])
        own_rss = psutil.Process().memory_info().rss
        with autotrack.start_run(name="sampled", uri=store) as run:
            assert _sampler_threads(run) == [f"autotrack-system-{run.id[:8]}"]
            for step in range(30):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step * 10)
                time.sleep(0.04)
        assert _sampler_threads() == []  # stopped with the run
        calls = {k: set(v) for k, v in fake.STATE["calls"].items()}
        initialised = fake.STATE["initialised"]
    finally:
        child.kill()
        child.wait()
        mp.undo()
        fake.reset()
    return SimpleNamespace(record=autotrack.get_run(run.id, uri=store), store=store, own_rss=own_rss,
                           calls=calls, initialised=initialised)


def _values(rec, name: str) -> list[float]:
    return [p.value for p in rec.metrics[name]]


def test_process_and_machine_figures_are_plausible(sampled) -> None:
    import psutil

    rec = sampled.record
    names = set(rec.metrics)
    expected = {"process/cpu_percent", "process/memory_rss_bytes", "process/threads", "process/open_files",
                "process/disk_read_bytes", "process/disk_write_bytes", "cpu/percent", "memory/used_bytes",
                "memory/available_bytes", "memory/percent", "swap/used_bytes", "swap/percent",
                "disk/cwd/used_percent", "disk/cwd/free_bytes", "disk/store/used_percent", "disk/store/free_bytes"}
    assert {"system/" + n for n in expected} <= names
    assert len(rec.metrics["system/process/cpu_percent"]) >= 3  # 0.3 s, 0.6 s, (0.9 s) and the end
    cores, total = os.cpu_count() or 1, psutil.virtual_memory().total
    assert all(0 <= v <= 100 * cores for v in _values(rec, "system/process/cpu_percent"))
    assert all(0 <= v <= 100 for v in _values(rec, "system/cpu/percent"))
    for name in ("system/memory/used_bytes", "system/memory/available_bytes", "system/process/memory_rss_bytes"):
        assert all(0 < v <= total for v in _values(rec, name)), name
    assert all(v >= 3 for v in _values(rec, "system/process/threads"))  # main, writer, sampler (+ the child's)
    assert all(v >= 3 for v in _values(rec, "system/process/open_files"))  # at least stdin, stdout, stderr
    for name in ("system/memory/percent", "system/swap/percent", "system/disk/cwd/used_percent"):
        assert all(0 <= v <= 100 for v in _values(rec, name)), name
    assert all(v > 0 for v in _values(rec, "system/disk/store/free_bytes"))
    for name in ("system/process/disk_write_bytes", "system/process/disk_read_bytes"):  # counted since the start
        values = _values(rec, name)
        assert values == sorted(values) and values[0] >= 0, name
    if "system/network/rx_bytes" in names:
        assert all(v >= 0 for v in _values(rec, "system/network/rx_bytes"))
    env = rec.environment["system_metrics"]
    assert env["on"] is True and env["interval_seconds"] == EVERY and env["series"] == "system/"
    assert env["psutil"] == f"psutil {psutil.__version__}"


def test_a_child_process_memory_is_counted(sampled) -> None:
    peak = max(_values(sampled.record, "system/process/memory_rss_bytes"))
    assert peak >= sampled.own_rss + 0.9 * CHILD_MB * MiB


def test_each_sample_has_its_time_and_the_step_reached(sampled) -> None:
    rec = sampled.record
    logged = {p.step: p.timestamp for p in rec.metrics["loss"]}
    points = list(rec.metrics["system/process/cpu_percent"])
    steps = [p.step for p in points]
    assert steps == sorted(steps) and all(s in logged for s in steps) and len(set(steps)) >= 2
    start, end = rec.start_time.timestamp(), rec.end_time.timestamp()
    for p in points:
        assert p.epoch is None and start - 0.01 <= p.timestamp <= end + 0.01
        assert p.timestamp >= logged[p.step]  # the step had been reached when the sample was taken
    stamps = [p.timestamp for p in points]
    gaps = [b - a for a, b in zip(stamps, stamps[1:-1])]  # the last: at the end of the run
    # Never two samples closer than the interval (the sampler waits it out after each); a sample
    # may come late on a loaded machine (a read waits for the GIL at each of its ~100 system
    # calls: one stall of 0.5 s failed CI), so only the typical gap is held to the interval.
    assert gaps and all(g > 0.9 * EVERY for g in gaps), gaps
    assert sorted(gaps)[len(gaps) // 2] < 2.5 * EVERY, gaps


def test_gpu_figures_come_from_nvml_on_the_sampler_thread(sampled) -> None:
    rec = sampled.record
    last = {name: points[-1].value for name, points in rec.metrics.items()}
    g0 = "system/gpu/0/"
    assert last[g0 + "utilization_percent"] == 80 and last["system/gpu/1/utilization_percent"] == 3
    assert last[g0 + "memory_used_bytes"] == 30 * GiB and last[g0 + "memory_total_bytes"] == 141 * GiB
    assert last[g0 + "temperature_c"] == 61 and last[g0 + "power_watts"] == 450.0
    assert last[g0 + "power_limit_watts"] == 700.0
    assert last[g0 + "sm_clock_mhz"] == 1980 and last[g0 + "memory_clock_mhz"] == 3201
    assert last[g0 + "throttle_reasons"] == 4  # power cap
    assert last[g0 + "process_memory_bytes"] == 6 * GiB  # this process and its child, not the stranger
    assert last["system/gpu/1/process_memory_bytes"] == 0
    assert rec.environment["system_metrics"]["gpu"] == "2 x Fake H200 via NVML (driver 999.01)"
    threads = set().union(*sampled.calls.values())
    assert threads and all(name.startswith("autotrack-system-") for name in threads), threads
    assert sampled.initialised == 0  # NVML shut down at the end


def test_a_field_the_board_lacks_is_left_out_and_asked_once(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fake.reset(unsupported={"nvmlDeviceGetPowerUsage"})
    try:
        probe = system.Probe({})
        first, error = probe.read()
        second, _ = probe.read()
        probe.close()
    finally:
        fake.reset()
    assert error is None and "gpu/0/power_watts" not in first and "gpu/0/power_watts" not in second
    assert first["gpu/0/power_limit_watts"] == 700.0 and first["process/threads"] >= 1


@pytest.mark.parametrize("setup, reason", [
    ({"init_error": fake.NVML_ERROR_LIBRARY_NOT_FOUND}, "no NVIDIA driver (NVML's library, libnvidia-ml, was not found)"),
    ({"init_error": fake.NVML_ERROR_DRIVER_NOT_LOADED}, "no NVIDIA driver loaded"),
    ({"init_error": fake.NVML_ERROR_NO_PERMISSION}, "no permission to use NVML"),
    ({"count": 0}, "no NVIDIA GPU (NVML found none)"),
])
def test_why_gpu_metrics_are_absent(monkeypatch, setup, reason) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fake.reset(**setup)
    try:
        probe = system.Probe({})
        figures, error = probe.read()
    finally:
        fake.reset()
    assert probe.notes["gpu"] == "absent: " + reason
    assert error is None and "process/cpu_percent" in figures and not any(k.startswith("gpu/") for k in figures)


def test_why_gpu_metrics_are_absent_without_the_bindings_or_a_driver(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    monkeypatch.setattr(system, "_no_driver", lambda: None)  # on a machine with a driver
    assert system.Probe({}).notes["gpu"] == "absent: nvidia-ml-py is not installed (pip install 'autotrack-ml[gpu]')"
    monkeypatch.undo()
    if os.path.exists("/dev/nvidiactl") or not sys.platform.startswith("linux"):
        pytest.skip("this machine has an NVIDIA driver")
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    assert system.Probe({}).notes["gpu"] == "absent: no NVIDIA driver (no /dev/nvidiactl)"
    assert "pynvml" not in sys.modules  # not imported for nothing


def test_without_psutil_a_run_says_why_and_records_no_figures(monkeypatch, store) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    probe = system.Probe({"cwd": "."})
    assert probe.notes["psutil"] == "absent: psutil is not installed (pip install psutil)"
    assert probe.read() == ({}, None)
    with autotrack.start_run(uri=store) as run:
        pass
    assert autotrack.get_run(run.id, uri=store).environment["system_metrics"]["psutil"].startswith("absent: psutil")


def test_a_sampler_failure_is_one_warning_and_the_run_goes_on(monkeypatch, lenient, fast, store) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fake.reset(fail={"nvmlDeviceGetUtilizationRates"})
    before = autotrack.error_counts().get("sampling system metrics", 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with autotrack.start_run(uri=store) as run:
                for step in range(18):
                    run.log_metrics({"loss": float(step)}, step=step)
                    time.sleep(0.03)
    finally:
        fake.reset()
    ours = [w for w in caught if issubclass(w.category, autotrack.AutotrackWarning)]
    assert len(ours) == 1 and "sampling system metrics failed (NVMLError: Unknown Error)" in str(ours[0].message)
    assert autotrack.error_counts()["sampling system metrics"] - before >= 2  # every sample failed, counted
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished" and len(rec.metrics["loss"]) == 18
    assert len(rec.metrics["system/process/cpu_percent"]) >= 2  # what was read before the GPU failed is kept
    assert "system/gpu/0/utilization_percent" not in rec.metrics


def test_strict_mode_raises_the_samplers_error_when_the_run_ends(monkeypatch, fast, store) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fake.reset(fail={"nvmlDeviceGetTemperature"})
    try:
        with pytest.raises(fake.NVMLError):
            with autotrack.start_run(uri=store) as run:
                time.sleep(EVERY + 0.1)
    finally:
        fake.reset()
    assert autotrack.get_run(run.id, uri=store).status == "finished"


def _system_env(run) -> dict:
    run.finish()
    return autotrack.get_run(run.id, uri=run.uri).environment["system_metrics"]


def test_on_by_default_and_each_switch(monkeypatch, store) -> None:
    run = autotrack.start_run(uri=store)
    assert _sampler_threads(run) == [f"autotrack-system-{run.id[:8]}"]
    env = _system_env(run)
    assert env["on"] is True and env["interval_seconds"] == 10.0 and env["gpu"].startswith("absent: ")

    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS", "0")
    run = autotrack.start_run(uri=store)
    assert run._sampler is None and _sampler_threads() == []
    assert _system_env(run) == {"on": False, "why": "AUTOTRACK_SYSTEM_METRICS=0"}
    run = autotrack.start_run(uri=store, system_metrics=True)  # the explicit argument wins
    assert run._sampler is not None and _system_env(run)["on"] is True
    monkeypatch.delenv("AUTOTRACK_SYSTEM_METRICS")

    run = autotrack.start_run(uri=store, system_metrics=False)
    assert _system_env(run) == {"on": False, "why": "start_run(system_metrics=False)"}
    autotrack.autolog(uri=store, system_metrics=False)
    run = autotrack.start_run(uri=store)  # as an adapter starts one: autolog's setting
    assert _system_env(run) == {"on": False, "why": "autolog(system_metrics=False)"}
    autotrack.autolog(disable=True)
    run = autotrack.start_run(uri=store)
    assert _system_env(run)["on"] is True
    with pytest.raises(ValueError, match="system_metrics must be True, False or None"):
        autotrack.autolog(system_metrics="no")


@pytest.mark.parametrize("raw, seconds", [("", 10.0), ("30", 30.0), ("2.5", 2.5), ("0.1", 1.0), ("0", 1.0),
                                          ("-5", 1.0), ("soon", 10.0), ("nan", 10.0)])
def test_the_interval_setting(monkeypatch, raw, seconds) -> None:
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS_SECONDS", raw)
    assert _sampler.interval() == seconds


def test_psutil_and_nvml_are_imported_on_the_sampler_thread_only(tmp_path) -> None:
    code = f"""
        import importlib.abc, json, sys, threading, time
        imported = {{}}

        class Spy(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name in ("psutil", "pynvml"):
                    imported.setdefault(name, threading.current_thread().name)
                return None

        sys.meta_path.insert(0, Spy())
        import autotrack
        from autotrack import _sampler
        from autotrack._capture import system
        system._no_driver = lambda: None  # the fake bindings on the path stand for a machine with a GPU
        _sampler.MIN_SECONDS = 0.05
        with autotrack.start_run(uri={str(tmp_path / "store")!r}) as run:
            for step in range(5):
                run.log_metrics({{"loss": 1.0}}, step=step)
                time.sleep(0.1)
        rec = autotrack.get_run(run.id, uri={str(tmp_path / "store")!r})
        print(json.dumps({{"imported": imported, "run": run.id, "gpu": rec.environment["system_metrics"]["gpu"],
                          "points": len(rec.metrics["system/gpu/0/utilization_percent"])}}))
    """
    env = {"PYTHONPATH": FAKE_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "AUTOTRACK_SYSTEM_METRICS_SECONDS": "0.2"}
    proc = python(code, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    thread = f"autotrack-system-{out['run'][:8]}"
    assert out["imported"] == {"psutil": thread, "pynvml": thread}
    assert out["gpu"].startswith("2 x Fake H200") and out["points"] >= 1


def test_show_has_a_system_section(sampled, capsys) -> None:
    assert main(["show", sampled.record.id, "--uri", sampled.store]) == 0
    out = capsys.readouterr().out
    metrics = out.split("\nmetrics\n", 1)[1].split("\nsystem\n", 1)[0]
    assert "loss" in metrics and "system/" not in metrics  # the run's own metrics apart
    system_part = out.split("\nsystem\n", 1)[1].split("\nenvironment\n", 1)[0]
    assert f"every {EVERY:g} s;" in system_part and "GPU: 2 x Fake H200 via NVML (driver 999.01)" in system_part
    lines = {line.split()[0]: line.split()[1:] for line in system_part.splitlines() if line.strip()}
    assert lines["gpu/0/utilization_percent"][:4] == ["80", "%", "80", "%"]  # mean, max
    assert lines["gpu/0/power_watts"][:2] == ["450", "W"]
    assert lines["gpu/0/throttle_reasons"][:2] == ["power", "cap"]
    peaks = {" ".join(line.split()) for line in system_part.splitlines() if line.startswith("peak ")}
    assert "peak GPU 0 memory of the process 6.0 GiB" in peaks
    assert any(line.startswith("peak process memory (RSS, with children) ") for line in peaks)
    assert list(lines).index("process/cpu_percent") < list(lines).index("cpu/percent") < list(lines).index(
        "gpu/0/utilization_percent")  # the process first, then the machine, then GPUs


def _run_with(store: str, name: str, figures: list[dict[str, float]]):
    """A run whose system series are given (logged as any metric: the reader does not care who)."""
    with autotrack.start_run(name=name, uri=store, system_metrics=False) as run:
        run.log_metrics({"val_loss": 0.5}, step=0)
        for step, values in enumerate(figures):
            run.log_metrics({f"system/{k}": v for k, v in values.items()}, step=step)
    return autotrack.get_run(run.id, uri=store)


def test_diff_says_what_the_hardware_did_differently(store, capsys) -> None:
    fast = _run_with(store, "fast", [{"gpu/0/utilization_percent": u, "gpu/0/process_memory_bytes": 20 * GiB,
                                      "process/memory_rss_bytes": 1 * GiB, "process/cpu_percent": 100.0,
                                      "swap/used_bytes": 0.0, "gpu/0/throttle_reasons": 0.0} for u in (91.0, 93.0)])
    slow = _run_with(store, "slow", [{"gpu/0/utilization_percent": u, "gpu/0/process_memory_bytes": 20 * GiB,
                                      "process/memory_rss_bytes": 3.5 * GiB, "process/cpu_percent": 110.0,
                                      "swap/used_bytes": s, "gpu/0/throttle_reasons": 4.0 + 1}
                                     for u, s in ((30.0, 0.0), (40.0, 2 * GiB))])
    found = diff_runs(fast, slow)
    assert "metrics" not in found  # val_loss is the same; the system series are not compared one by one
    b = slow.id[:8]
    assert found["system"] == {
        f"run {b}'s GPU utilisation 35 % vs 92 %: input-bound?": ("92 %", "35 %"),
        f"run {b}'s peak process memory 3.5 GiB vs 1.0 GiB": ("1.0 GiB", "3.5 GiB"),
        f"run {b} swapped (2.0 GiB more swap used during the run)": ("0 B", "2.0 GiB"),
        f"run {b}'s GPUs slowed down: power cap": ("none", "power cap"),
    }
    assert not diff_runs(fast, fast)  # the same run: nothing to say
    assert main(["diff", fast.id, slow.id, "--uri", store]) == 0
    out = capsys.readouterr().out
    assert f"run {b}'s GPU utilisation 35 % vs 92 %: input-bound?" in out and "system" in out


def test_dashboard_api_has_the_system_section_on_the_training_step(sampled) -> None:
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from autotrack.server.app import create_app

    rec = sampled.record
    api = TestClient(create_app(sampled.store, read_only=True), base_url="http://127.0.0.1")
    sys_part = api.get(f"/ui/api/runs/{rec.id}").json()["system"]
    assert sys_part["info"].startswith(f"every {EVERY:g} s;")
    assert sys_part["peaks"][0][0] == "process memory (RSS, with children)"
    row = next(r for r in sys_part["rows"] if r["name"] == "system/gpu/0/power_watts")
    assert row["mean"] == "450 W" and row["count"] >= 3
    series = api.get(f"/ui/api/runs/{rec.id}/series").json()
    cpu = series["system/process/cpu_percent"]
    assert cpu["step"] == [p.step for p in rec.metrics["system/process/cpu_percent"]]  # charts share the x axis
    assert set(cpu["step"]) <= set(series["loss"]["step"])
    page = api.get("/ui/api/runs").json()
    keys = [k["key"] for k in page["metric_keys"]]
    assert keys[0] == "loss" and all(k.startswith("system/") for k in keys[1:])  # the run's own first


def test_sampling_costs_the_run_nothing_when_short(store) -> None:
    """A run shorter than the interval gets no sample (nor a thread left behind), and every
    call made on the training thread is what it was: the step stored is the only addition."""
    with autotrack.start_run(uri=store) as run:
        run.log_metrics({"loss": 1.0}, step=7)
        assert run._step == 7
    assert _sampler_threads() == []
    assert not [n for n in autotrack.get_run(run.id, uri=store).metrics if n.startswith("system/")]
