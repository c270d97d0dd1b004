"""A stand-in for nvidia-ml-py's ``pynvml``: two GPUs whose figures a test sets in ``STATE``.

The only fake in the suite (the issue allows this one): machines without an NVIDIA GPU still run
the GPU code path. It mirrors the parts of the real module autotrack calls, with the same names,
constants and error type, and records which thread called it.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999

_MESSAGES = {3: "Not Supported", 4: "Insufficient Permissions", 9: "Driver Not Loaded",
             12: "NVML Shared Library Not Found", 999: "Unknown Error"}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML error {self.value}")


def reset(**changes):
    """Back to two busy-ish GPUs; ``changes`` override entries."""
    STATE.clear()
    STATE.update({
        "init_error": None, "count": 2, "names": ["Fake H200", "Fake H200"], "driver": "999.01",
        "util": [80, 3], "used": [30 * 2**30, 2**30], "total": [141 * 2**30, 141 * 2**30],
        "temp": [61, 35], "power_mw": [450_000, 70_000], "limit_mw": [700_000, 700_000],
        "sm": [1980, 345], "mem_clock": [3201, 3201], "reasons": [0x4, 0x1],
        "procs": [[], []],  # per GPU: [(pid, used bytes)]
        "unsupported": set(),  # function names that raise NOT_SUPPORTED
        "fail": set(),  # function names that raise NVML_ERROR_UNKNOWN
        "calls": {},  # function name -> set of thread names that called it
        "initialised": 0,
    })
    STATE.update(changes)


STATE: dict = {}
reset()


def _call(name: str) -> None:
    STATE["calls"].setdefault(name, set()).add(threading.current_thread().name)
    if name in STATE["unsupported"]:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    if name in STATE["fail"]:
        raise NVMLError(NVML_ERROR_UNKNOWN)


def nvmlInit() -> None:
    _call("nvmlInit")
    if STATE["init_error"] is not None:
        raise NVMLError(STATE["init_error"])
    STATE["initialised"] += 1


def nvmlShutdown() -> None:
    _call("nvmlShutdown")
    STATE["initialised"] -= 1


def nvmlDeviceGetCount() -> int:
    _call("nvmlDeviceGetCount")
    return STATE["count"]


def nvmlDeviceGetHandleByIndex(i: int) -> int:
    _call("nvmlDeviceGetHandleByIndex")
    return i


def nvmlDeviceGetName(h: int) -> str:
    _call("nvmlDeviceGetName")
    return STATE["names"][h]


def nvmlSystemGetDriverVersion() -> bytes:
    _call("nvmlSystemGetDriverVersion")
    return STATE["driver"].encode()  # old bindings return bytes


def nvmlDeviceGetUtilizationRates(h: int):
    _call("nvmlDeviceGetUtilizationRates")
    return SimpleNamespace(gpu=STATE["util"][h], memory=10)


def nvmlDeviceGetMemoryInfo(h: int):
    _call("nvmlDeviceGetMemoryInfo")
    return SimpleNamespace(used=STATE["used"][h], total=STATE["total"][h], free=STATE["total"][h] - STATE["used"][h])


def nvmlDeviceGetTemperature(h: int, sensor: int) -> int:
    _call("nvmlDeviceGetTemperature")
    assert sensor == NVML_TEMPERATURE_GPU
    return STATE["temp"][h]


def nvmlDeviceGetPowerUsage(h: int) -> int:
    _call("nvmlDeviceGetPowerUsage")
    return STATE["power_mw"][h]


def nvmlDeviceGetEnforcedPowerLimit(h: int) -> int:
    _call("nvmlDeviceGetEnforcedPowerLimit")
    return STATE["limit_mw"][h]


def nvmlDeviceGetClockInfo(h: int, kind: int) -> int:
    _call("nvmlDeviceGetClockInfo")
    return STATE["sm"][h] if kind == NVML_CLOCK_SM else STATE["mem_clock"][h]


def nvmlDeviceGetCurrentClocksEventReasons(h: int) -> int:
    _call("nvmlDeviceGetCurrentClocksEventReasons")
    return STATE["reasons"][h]


def nvmlDeviceGetComputeRunningProcesses(h: int):
    _call("nvmlDeviceGetComputeRunningProcesses")
    return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in STATE["procs"][h]]


def nvmlDeviceGetGraphicsRunningProcesses(h: int):
    _call("nvmlDeviceGetGraphicsRunningProcesses")
    return []
