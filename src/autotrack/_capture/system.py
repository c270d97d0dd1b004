"""One reading of what the hardware is doing: this process and its children, the machine, each GPU.

Used by a sampler thread only (``autotrack._sampler``): psutil and NVML are imported here, when
that thread builds a ``Probe``, never by ``import autotrack`` nor on the training thread. Every
figure is a plain float under a name relative to ``system/`` (``process/cpu_percent``,
``gpu/0/power_watts``; docs/format.md lists them). A figure a platform or a GPU does not offer
(``io_counters`` on macOS, power on some boards) is left out, once and for all; any other
failure raises, and the sampler warns once and carries on.

Counters (disk and network bytes) are what happened since the probe was made (the run's start),
so a chart starts at 0; bytes of children that have exited stay counted.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Mapping

__all__ = ["Probe", "Absent", "THROTTLE_REASONS", "import_sources", "quick_notes", "NO_PSUTIL"]

NO_PSUTIL = "absent: psutil is not installed (pip install psutil)"  # the note, with or without a probe

# NVML's clocks event ("throttle") reason bits, for people: the stored figure is the bitmask
THROTTLE_REASONS = {0x1: "idle", 0x2: "application clocks", 0x4: "power cap", 0x8: "hardware slowdown",
                    0x10: "sync boost", 0x20: "thermal (software)", 0x40: "thermal (hardware)",
                    0x80: "power brake", 0x100: "display clocks"}


def import_sources() -> None:
    """Import psutil, and NVML's bindings where a driver could use them (the sampler holds the
    fork lock meanwhile)."""
    for name in ("psutil", "pynvml"):
        if name == "pynvml" and _no_driver():
            continue
        try:
            __import__(name)
        except ImportError:
            pass


def _no_driver() -> str | None:
    """Why NVML cannot work here, known without importing its bindings (~50-90 ms of a busy
    thread's time, for nothing on the many machines without an NVIDIA GPU); bindings imported
    already (by the program) are used whatever this says."""
    if "pynvml" in sys.modules or not sys.platform.startswith("linux"):
        return None
    if os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia"):
        return None
    return "no NVIDIA driver (no /dev/nvidiactl)"


def quick_notes() -> dict[str, str] | None:
    """What a ``Probe`` would note, where it is known without building one: psutil's version from
    its metadata and no NVIDIA driver on this machine. None where only a probe can tell (a GPU
    machine, bindings already imported). A run that ends within a second then never imports
    psutil nor walks the process table (issue 20)."""
    import importlib.util

    missing = _no_driver()
    if missing is None:
        return None
    if importlib.util.find_spec("psutil") is None:
        psutil_note = NO_PSUTIL
    else:
        import importlib.metadata

        try:
            psutil_note = f"psutil {importlib.metadata.version('psutil')}"
        except importlib.metadata.PackageNotFoundError:
            return None
    return {"psutil": psutil_note, "gpu": f"absent: {missing}"}


class Absent(Exception):
    """Why a source of figures (psutil, NVML) gives none on this machine, in one line."""


class Probe:
    """Primed at construction: the first CPU percentages need a previous reading, counters a base."""

    def __init__(self, disks: Mapping[str, str]) -> None:
        self.notes: dict[str, str] = {}
        self._disks = dict(disks)
        try:
            import psutil
        except ImportError:
            self._ps: Any = None
            self.notes["psutil"] = NO_PSUTIL
        else:
            self._ps = psutil
            self.notes["psutil"] = f"psutil {psutil.__version__}"
            self._gone = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
            self._me = psutil.Process()
            self._family_seen: dict[int, Any] = {}
            self._io_base: dict[int, tuple[int, int]] = {}
            self._io_last: dict[int, tuple[int, int]] = {}
            self._io_gone = [0, 0]
            self._io = hasattr(self._me, "io_counters")
            self._net_base = self._net()
            psutil.cpu_percent(None)
            self._family(priming=True)
        try:
            self.gpus: _Nvml | None = _Nvml()
            self.notes["gpu"] = self.gpus.describe()
        except Absent as why:
            self.gpus = None
            self.notes["gpu"] = f"absent: {why}"

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> tuple[dict[str, float], Exception | None]:
        """The figures, and the error that cut the reading short (what was read before it is kept:
        a GPU that fails costs the GPU's figures, not the process's)."""
        out: dict[str, float] = {}
        pids = {os.getpid()}
        try:
            if self._ps is not None:
                pids = self._process(out)
                self._machine(out)
            if self.gpus is not None:
                self.gpus.read(out, pids)
        except Exception as exc:  # noqa: BLE001 - the sampler warns once
            return out, exc
        return out, None

    def close(self) -> None:
        if self.gpus is not None:
            self.gpus.close()

    def _family(self, priming: bool = False) -> list[Any]:
        """This process and its children (recursively), the same ``Process`` objects from one
        reading to the next: a CPU percentage is measured since the previous call on the object."""
        try:
            kids = self._me.children(recursive=True)
        except self._gone:
            kids = []
        family = [self._me]
        seen = {}
        for kid in kids:
            known = self._family_seen.get(kid.pid)
            proc = known if known is not None and known == kid else kid  # == : same pid and start time
            if proc is not known:
                try:
                    proc.cpu_percent(None)  # a child new since the last reading: primed, counted next time
                except self._gone:
                    continue
                if self._io:
                    self._io_base[proc.pid] = self._io_of(proc) if priming else (0, 0)
            seen[proc.pid] = proc
            family.append(proc)
        if priming:
            self._me.cpu_percent(None)
            if self._io:
                self._io_base[self._me.pid] = self._io_of(self._me)
        for pid in set(self._family_seen) - set(seen):  # exited: what it read and wrote stays counted
            last, base = self._io_last.pop(pid, None), self._io_base.pop(pid, (0, 0))
            if last is not None:
                self._io_gone[0] += last[0] - base[0]
                self._io_gone[1] += last[1] - base[1]
        self._family_seen = seen
        return family

    def _io_of(self, proc: Any) -> tuple[int, int]:
        try:
            io = proc.io_counters()
        except self._gone:
            return (0, 0)
        except (AttributeError, NotImplementedError, OSError):
            self._io = False
            return (0, 0)
        return (int(io.read_bytes), int(io.write_bytes))

    def _process(self, out: dict[str, float]) -> set[int]:
        cpu = rss = threads = files = 0.0
        read = write = 0
        pids = set()
        fds = hasattr(self._me, "num_fds")
        for proc in self._family():
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    files += proc.num_fds() if fds else proc.num_handles()
                if self._io:
                    now = self._io_of(proc)
                    base = self._io_base.get(proc.pid, (0, 0))
                    self._io_last[proc.pid] = now
                    read += now[0] - base[0]
                    write += now[1] - base[1]
            except self._gone:
                continue
            pids.add(proc.pid)
        out["process/cpu_percent"] = cpu
        out["process/memory_rss_bytes"] = rss
        out["process/threads"] = threads
        out["process/open_files"] = files
        if self._io:
            out["process/disk_read_bytes"] = float(read + self._io_gone[0])
            out["process/disk_write_bytes"] = float(write + self._io_gone[1])
        return pids

    def _net(self) -> tuple[int, int] | None:
        try:
            net = self._ps.net_io_counters()
        except (OSError, RuntimeError):
            return None
        return None if net is None else (int(net.bytes_recv), int(net.bytes_sent))

    def _machine(self, out: dict[str, float]) -> None:
        ps = self._ps
        out["cpu/percent"] = float(ps.cpu_percent(None))
        vm = ps.virtual_memory()
        out["memory/used_bytes"] = float(vm.used)
        out["memory/available_bytes"] = float(vm.available)
        out["memory/percent"] = float(vm.percent)
        try:
            swap = ps.swap_memory()
        except (OSError, RuntimeError):  # no swap information (some containers)
            swap = None
        if swap is not None:
            out["swap/used_bytes"] = float(swap.used)
            out["swap/percent"] = float(swap.percent)
        for label, path in self._disks.items():
            try:
                usage = ps.disk_usage(path)
            except OSError:  # the folder went away (a temporary store): nothing to say about it
                continue
            out[f"disk/{label}/used_percent"] = float(usage.percent)
            out[f"disk/{label}/free_bytes"] = float(usage.free)
        net = self._net()
        if net is not None and self._net_base is not None:
            out["network/rx_bytes"] = float(net[0] - self._net_base[0])
            out["network/tx_bytes"] = float(net[1] - self._net_base[1])


class _Nvml:
    """The GPUs NVIDIA's management library sees (all of the machine's, whatever
    ``CUDA_VISIBLE_DEVICES`` says: a run that uses GPU 3 shows GPU 3 busy, the others idle)."""

    def __init__(self) -> None:
        missing = _no_driver()
        if missing:
            raise Absent(missing)
        try:
            import pynvml  # nvidia-ml-py, NVIDIA's own bindings
        except ImportError:
            raise Absent("nvidia-ml-py is not installed (pip install 'autotrack-ml[gpu]')") from None
        self.nv = nv = pynvml
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise Absent(_why(nv, exc)) from None
        try:
            count = nv.nvmlDeviceGetCount()
            if not count:
                raise Absent("no NVIDIA GPU (NVML found none)")
            self.handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.names = [_text(nv.nvmlDeviceGetName(h)) for h in self.handles]
            self.driver = _text(nv.nvmlSystemGetDriverVersion())
        except BaseException:
            nv.nvmlShutdown()
            raise
        self._unsupported: set[str] = set()
        events = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        self._events = events or getattr(nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None)

    def describe(self) -> str:
        kinds: dict[str, int] = {}
        for name in self.names:
            kinds[name] = kinds.get(name, 0) + 1
        gpus = ", ".join(f"{n} x {name}" if n > 1 else name for name, n in kinds.items())
        return f"{gpus} via NVML (driver {self.driver})"

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except self.nv.NVMLError:
            pass

    def read(self, out: dict[str, float], pids: set[int]) -> None:
        nv = self.nv
        for i, h in enumerate(self.handles):
            pre = f"gpu/{i}/"
            self._put(out, pre + "utilization_percent", lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu)
            mem = self._get(pre + "memory", lambda: nv.nvmlDeviceGetMemoryInfo(h))
            if mem is not None:
                out[pre + "memory_used_bytes"] = float(mem.used)
                out[pre + "memory_total_bytes"] = float(mem.total)
            self._put(out, pre + "temperature_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
            self._put(out, pre + "power_watts", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0)  # milliwatts
            self._put(out, pre + "power_limit_watts", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)
            self._put(out, pre + "sm_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
            self._put(out, pre + "memory_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM))
            if self._events is not None:
                self._put(out, pre + "throttle_reasons", lambda: self._events(h))
            self._put(out, pre + "process_memory_bytes", lambda: self._process_memory(h, pids))

    def _process_memory(self, handle: Any, pids: set[int]) -> float:
        """GPU memory of this process and its children. NVML names processes by their pid on the
        host: in a container with its own pid namespace none matches, and this reads 0."""
        nv, total, counted = self.nv, 0, set()
        for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(nv, call, None)
            if fn is None:
                continue
            for proc in fn(handle):
                used = getattr(proc, "usedGpuMemory", None)
                if proc.pid in pids and proc.pid not in counted and used is not None:
                    counted.add(proc.pid)
                    total += int(used)
        return float(total)

    def _get(self, key: str, fn: Callable[[], Any]) -> Any:
        if key in self._unsupported:
            return None
        try:
            return fn()
        except self.nv.NVMLError as exc:
            if getattr(exc, "value", None) in (self.nv.NVML_ERROR_NOT_SUPPORTED, getattr(
                    self.nv, "NVML_ERROR_FUNCTION_NOT_FOUND", -1)):
                self._unsupported.add(key)  # this board does not offer it: never asked again
                return None
            raise

    def _put(self, out: dict[str, float], key: str, fn: Callable[[], Any]) -> None:
        value = self._get(key, fn)
        if value is not None:
            out[key] = float(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _why(nv: Any, exc: Exception) -> str:
    code = getattr(exc, "value", None)
    if code == getattr(nv, "NVML_ERROR_LIBRARY_NOT_FOUND", None):
        return "no NVIDIA driver (NVML's library, libnvidia-ml, was not found)"
    if code == getattr(nv, "NVML_ERROR_DRIVER_NOT_LOADED", None):
        return "no NVIDIA driver loaded"
    if code == getattr(nv, "NVML_ERROR_NO_PERMISSION", None):
        return "no permission to use NVML"
    return f"NVML did not start ({type(exc).__name__}: {exc})"
