"""System metrics while a run trains: a thread of its own per run samples the hardware.

On by default. ``start_run(system_metrics=False)``, ``autolog(system_metrics=False)`` or
``AUTOTRACK_SYSTEM_METRICS=0`` turn it off (an explicit argument first, then autolog's, then the
variable). Every ``AUTOTRACK_SYSTEM_METRICS_SECONDS`` (default 10, at least 1) the thread reads
``autotrack._capture.system`` and hands the figures to the run's writer as one metric call under
``system/...`` names, with the wall-clock time and the training step reached at that moment.

Why it costs the training thread nothing: psutil and NVML are imported and called on this thread
only; the step is ``Run._step``, an attribute ``log_metrics`` stores anyway (no lock, no call);
the figures join the writer's queue as any metric call does. The first sample comes one interval
after the start (CPU percentages need two readings), and one more at the end of a run that got
any, so a run shorter than the interval records none. A run's probe waits a second (half the
interval at most) before reading anything once its notes are known (from an earlier probe of the
process, or without one: ``system.quick_notes``): a short fit then costs no probe (issue 20). A failure is one warning (strict mode: the
error is raised by ``Run.finish``) and the sampling goes on.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from autotrack import _starter
from autotrack._launch import Launched, launch
from autotrack._safety import report

__all__ = ["Plan", "Sampler", "plan", "interval", "wanted", "GROUPS"]

DEFAULT_SECONDS = 10.0
MIN_SECONDS = 1.0
# the first part of a series name after system/ (or after system/<node>/ in a multi-node run)
GROUPS = ("process", "cpu", "memory", "swap", "disk", "network", "gpu")
_OFF = {"0", "false", "no", "off"}
_PROBE_AFTER = 1.0  # seconds: a run's probe waits this long, once a first probe told the notes
_notes: dict[str, str] | None = None  # that first probe's notes (sources, versions): the process's


def interval() -> float:
    """``AUTOTRACK_SYSTEM_METRICS_SECONDS``: 10 by default, never below 1 (an unreadable value: 10)."""
    raw = os.environ.get("AUTOTRACK_SYSTEM_METRICS_SECONDS", "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS
    return max(MIN_SECONDS, seconds) if seconds == seconds else DEFAULT_SECONDS


def wanted(explicit: bool | None) -> tuple[bool, str]:
    """Whether to sample, and what decided it (for the run's environment)."""
    if explicit is not None:
        return bool(explicit), f"start_run(system_metrics={bool(explicit)})"
    from autotrack import _autolog

    chosen = _autolog.system_metrics_setting()
    if chosen is not None:
        return chosen, f"autolog(system_metrics={chosen})"
    raw = os.environ.get("AUTOTRACK_SYSTEM_METRICS", "").strip().lower()
    if raw in _OFF:
        return False, f"AUTOTRACK_SYSTEM_METRICS={raw}"
    return True, "the default" if not raw else f"AUTOTRACK_SYSTEM_METRICS={raw}"


class Plan:
    """What a run will sample, decided on the calling thread at ``start_run`` (environment
    variables only): on or off and why, and the name prefix (``system/`` or, on a node of a
    multi-node job, ``system/<node>/``, with the job's key for the other nodes' samplers)."""

    __slots__ = ("on", "why", "prefix", "node", "job")

    def __init__(self, on: bool, why: str, prefix: str = "system/", node: str | None = None,
                 job: str | None = None) -> None:
        self.on, self.why, self.prefix, self.node, self.job = on, why, prefix, node, job


def plan(explicit: bool | None) -> Plan:
    on, why = wanted(explicit)
    if not on:
        return Plan(False, why)
    from autotrack import _sampler_nodes as nodes

    place = nodes.placement()
    if place is None:
        return Plan(True, why)
    return Plan(True, why, f"system/{place.node}/", place.node, place.job)


class Sampler:
    """One thread: probe (imports), then a sample every ``every`` seconds until ``stop``.

    ``emit(time_ns, figures)`` takes each sample (already prefixed); ``disks`` names the folders
    whose filesystems to watch (``{"cwd": ..., "store": ...}``).
    """

    def __init__(self, name: str, emit: Callable[[int, dict[str, float]], None], prefix: str,
                 disks: dict[str, str], every: float, what: str = "sampling system metrics") -> None:
        self._emit = emit
        self.prefix = prefix
        self.every = every
        self.samples = 0
        self.error: BaseException | None = None
        self.notes: dict[str, str] = {}
        self._disks = disks
        self._what = what
        self._stop = threading.Event()
        self._probed = threading.Event()
        self._name = f"autotrack-system-{name}"
        self._thread: Launched | None = None

    def start(self) -> "Sampler":
        self._thread = launch(self._main, self._name)  # the caller does not wait for it to run (_launch)
        return self

    def stop(self, timeout: float = 10.0, wait: bool = True) -> None:
        """End the sampling (one last sample if any was taken) and wait for the thread (or, with
        ``wait=False``, let the run's writer wait for it before the run's last write)."""
        self._stop.set()
        if wait and self._thread is not None and not self._thread.is_current():
            self._thread.join(timeout)

    def describe(self, wait: float = 10.0) -> dict[str, Any]:
        """The line for the run's environment: every how often, and what each source says
        (a version, or why it gives nothing: ``absent: no NVIDIA driver loaded``)."""
        done = self._probed.wait(wait)
        out: dict[str, Any] = {"on": True, "interval_seconds": self.every, "series": self.prefix}
        out.update(self.notes if done else {"gpu": "unknown: the probe did not answer in time"})
        return out

    def _main(self) -> None:
        global _notes
        first = self.every
        if _notes is None:
            try:
                with _starter.IMPORTS:  # importlib.metadata and its tree, at a first run (see _starter)
                    from autotrack._capture import system

                    _notes = system.quick_notes()
            except Exception:  # noqa: BLE001 - then the probe tells
                _notes = None
        if _notes is not None:  # what each source says: probed by an earlier run, or known without a probe
            self.notes = dict(_notes)
            self._probed.set()
            # A run shorter than this (most fits of a loop of short fits) records no sample: it
            # then costs no probe either (psutil walks every process of the machine: ~4 ms).
            waited = min(_PROBE_AFTER, self.every / 2)
            if self._stop.wait(waited):
                return
            first -= waited
        probe = None
        try:
            with _starter.IMPORTS:  # a fork waits for these imports (see _starter)
                from autotrack._capture import system

                system.import_sources()
                probe = system.Probe(self._disks)  # imports again what import_sources could not
            self.notes = dict(probe.notes)
            _notes = dict(probe.notes)
        except Exception as exc:  # noqa: BLE001 - psutil broken on this platform: one warning
            self.notes = {"error": f"{type(exc).__name__}: {exc}"}
            self._failed(exc)
        finally:
            self._probed.set()
        if probe is None:
            return
        try:
            while not self._stop.wait(first):
                self._sample(probe)
                first = self.every
            if self.samples:
                self._sample(probe)  # the end of the run, as it was
        finally:
            try:
                probe.close()
            except Exception:  # noqa: BLE001, S110 - shutting NVML down at the end: nothing to say
                pass

    def _sample(self, probe: Any) -> None:
        try:
            figures, error = probe.read()
            if figures:
                self._emit(time.time_ns(), {self.prefix + k: v for k, v in figures.items()})
                self.samples += 1
        except Exception as exc:  # noqa: BLE001 - one warning, and the next sample is tried
            error = exc
        if error is not None:
            self._failed(error)

    def _failed(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        try:
            report(self._what, exc)
        except Exception:  # noqa: BLE001, S110 - strict mode: raised by Run.finish, not in this thread
            pass


def for_run(run: Any, chosen: Plan) -> Sampler | None:
    """Start sampling into ``run`` (None when its plan says off)."""
    if not chosen.on:
        return None
    disks = {"cwd": os.getcwd()}
    backend = run.backend
    if getattr(backend, "local", False) and getattr(backend, "root", None):
        disks["store"] = backend.root

    def emit(stamp: int, figures: dict[str, float]) -> None:
        writer = getattr(run, "_writer", None)  # not run._put: the last sample may follow finish()
        if writer is not None:
            writer.put(("m", stamp, run._step, None, figures))

    return Sampler(run.id[:8], emit, chosen.prefix, disks, interval()).start()


def description(chosen: Plan, sampler: Sampler | None) -> dict[str, Any]:
    """``environment["system_metrics"]`` of a run (asked on the environment capture's thread)."""
    if sampler is None:
        return {"on": False, "why": chosen.why}
    out = sampler.describe()
    if chosen.node:
        out["node"] = chosen.node
    return out
