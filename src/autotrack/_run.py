"""``Run``: the one object adapters and users talk to while a run is being recorded.

A run's end is explicit: ``finish(status)`` with ``finished``, ``failed`` (with the traceback)
or ``killed``; the context manager, the SIGTERM handler and the exit hook (``_lifecycle``) all
call it, never a ``__del__``. Everything a call records goes to the run's background writer;
the calling thread converts values and appends one tuple, nothing more.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time
import traceback
import uuid
import weakref
from types import TracebackType
from typing import Any, Callable, Mapping

from autotrack import _events, _forksafe, _lifecycle, _rng, _sampler
from autotrack._capture import seeds as _seeds
from autotrack._config import env_flag, resolve_destination
from autotrack._safety import guard, report, strict
from autotrack._staging import stage
from autotrack._values import check_metrics, flatten, text, to_epoch, to_json, to_step
from autotrack._writer import Writer
from autotrack.backends.base import backend_for

__all__ = ["Run", "start_run", "active_run", "active_runs", "deactivate", "status_for", "ARTIFACT_KINDS", "STATUSES"]

ARTIFACT_KINDS = ("file", "checkpoint", "model", "data")
STATUSES = ("running", "finished", "failed", "killed")

_time_ns = time.time_ns  # the hot path's one clock read (integer ns: cheap to turn into the stored ms)
_stack: list["Run"] = []
_stack_lock = _forksafe.lock()


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


class Run:
    """A run being recorded. Create one with :func:`autotrack.start_run` (or let an adapter)."""

    def __init__(
        self,
        *,
        name: str | None = None,
        uri: str | None = None,
        experiment: str | None = None,
        framework: str | None = None,
        parent_id: str | None = None,
        system_metrics: bool | None = None,
    ) -> None:
        name = None if name is None else text(name, "the run name")
        experiment = None if experiment is None else text(experiment, "the experiment")
        self.uri, self.experiment = resolve_destination(uri, experiment)
        self.backend = backend_for(self.uri)
        self.id = uuid.uuid4().hex
        self.framework = framework
        self.parent_id = parent_id
        self.name = name or f"{framework or 'run'}-{self.id[:6]}"
        self.status = "running"
        self._auto_step = 0
        self._step = 0  # the latest step logged: what the system metrics sampler reads (_sampler)
        self._sampling = _sampler.plan(system_metrics)
        self._sampler: _sampler.Sampler | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.open_fit: str | None = None  # set by an adapter while a fit it began runs (see _lifecycle)
        heartbeat = _float_env("AUTOTRACK_HEARTBEAT_SECONDS", 15.0)
        doc = {
            "format": 1,
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "parent_id": parent_id,
            "framework": framework,
            "status": "running",
            "start_time": _now_iso(),
            "end_time": None,
            "heartbeat": time.time(),
            "heartbeat_interval": heartbeat,
            "pid": os.getpid(),
        }
        if self._sampling.job:  # the other nodes of a multi-node job find this run by it (_sampler_nodes)
            doc["job"] = self._sampling.job
        self._sampler = _sampler.for_run(self, self._sampling)  # before the writer: its capture describes it
        self._rng_start = _rng.at_run_start()  # the random state at this moment (restored first in a replay)
        self._writer = self._new_writer(doc, on_start=lambda: _capture_environment(self.backend, self))
        _live.add(self)
        seeds = _seeds.seeds_snapshot()
        if seeds:
            self._put(("seeds", time.time(), seeds))
        _rng.after_run_start(self, self._rng_start)  # a replay: tagged reproduces=<id>

    def _new_writer(self, doc: dict[str, Any], **kwargs: Any) -> Writer:
        writer = Writer(self.backend, doc, flush_interval=_float_env("AUTOTRACK_FLUSH_SECONDS", 2.0),
                        heartbeat_interval=doc["heartbeat_interval"], **kwargs)
        self._put = writer.put
        return writer

    def reopen(self) -> "Run":
        """Continue a finished run of this process (e.g. ``trainer.test()`` right after ``fit``).

        New events go to new segments after the old ones; the run is ``running`` again until
        the next ``finish``, which sets its status anew.
        """
        with self._lock:
            if self.status == "running":
                return self
            self.status = "running"
        doc = dict(self._writer.doc, status="running", end_time=None)
        self._writer = self._new_writer(doc, first_seq=self._writer.next_seq)
        self._put(("status", {"status": "running", "end_time": None, "error": None}))
        self._sampler = _sampler.for_run(self, self._sampling)
        with _stack_lock:
            _stack.append(self)
        return self

    # -- recording -----------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Nested keys are joined with ``/``; a key logged again keeps the latest (and the history)."""
        with guard("logging params"):
            self._put(("params", time.time(), flatten(params)))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, epoch: int | float | None = None) -> None:
        """Hot path: no I/O. ``step`` defaults to a per-run counter of calls without a step.

        Values are made Python numbers here, once, and anything the store could not hold (a key
        that is not a string, a value that is not a number, a step that is not an integer) is
        refused here too: a warning naming it (a TypeError in strict mode), the rest of the
        call recorded. So nothing a caller passes can reach the writer and cost the run.
        """
        values = dict(metrics)  # a copy: the caller may reuse its dict
        refused = None
        kind = "m"
        for key, value in values.items():
            if (type(value) is not float and type(value) is not int) or type(key) is not str:
                values, refused, deferred = check_metrics(values)
                if deferred:
                    kind = "mt"  # tensors: made numbers on the writer thread
                break
        if step is None:
            step = self._auto_step
            self._auto_step += 1
        elif type(step) is not int:
            try:
                step = to_step(step)
            except TypeError as exc:
                return report("recording a metric step", TypeError(f"{exc}; the call was not recorded"), None)
        if epoch is not None and type(epoch) is not int:
            try:
                epoch = to_epoch(epoch)
            except TypeError as exc:
                return report("recording a metric epoch", TypeError(f"{exc}; the call was not recorded"), None)
        self._step = step
        if values:
            self._put((kind, _time_ns(), step, epoch, values))
        if refused:
            for exc in refused:
                report(f"recording {str(exc).split(' must ')[0]}", exc, None)

    def log_metric(self, name: str, value: Any, step: int | None = None, epoch: int | None = None) -> None:
        self.log_metrics({name: value}, step=step, epoch=epoch)

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        kind: str = "file",
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a file (or every file of a directory) as it is now.

        The content is pinned with a hard link (cheap, no copy) so that a later delete by the
        user does not lose it; hashing and copying happen on the writer thread.
        """
        if kind not in ARTIFACT_KINDS:
            raise ValueError(f"artifact kind must be one of {ARTIFACT_KINDS}, not {kind!r}")
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file to log as an artifact: {path}")
        base = name or os.path.basename(os.path.normpath(path))
        meta = to_json(dict(metadata or {}))
        now = time.time()
        if os.path.isdir(path):
            for folder, _dirs, files in os.walk(path):
                for fname in sorted(files):
                    full = os.path.join(folder, fname)
                    rel = os.path.relpath(full, path).replace(os.sep, "/")
                    self._queue_artifact(full, f"{base}/{rel}", kind, dict(meta, group=base), now)
        else:
            self._queue_artifact(path, base, kind, meta, now)

    def _queue_artifact(self, path: str, name: str, kind: str, meta: dict[str, Any], now: float) -> None:
        own = (self.backend.root,) if getattr(self.backend, "local", False) else ()
        pinned, owned = stage(path, *own)
        self._put(("artifact", {
            "name": name, "kind": kind, "metadata": meta, "time": now,
            "source": os.path.abspath(path), "_read_from": pinned, "_staged": owned,
        }))

    def _log_made(self, name: str, kind: str, metadata: Mapping[str, Any], write: Callable[[str], None]) -> None:
        """An artifact whose file the writer thread makes, ``write(path)``: an adapter has read on
        the calling thread what must be read there (a snapshot of a model) and leaves the writing
        of the file to the writer. A ``write`` that raises is reported as the writer's failures are;
        nothing is recorded for it."""
        self._put(("artifact", {"name": name, "kind": kind, "metadata": to_json(dict(metadata)), "time": time.time(),
                                "source": None, "_write": write}))

    def update_artifact(self, name: str, metadata: Mapping[str, Any]) -> None:
        """Add or change metadata of an artifact already logged (e.g. a checkpoint superseded)."""
        with guard("updating an artifact"):
            self._put(("artifact_update", {"name": text(name, "the artifact name"), "metadata": to_json(dict(metadata)),
                                           "time": time.time()}))

    def release_artifact(self, name: str, superseded_by: str | None = None) -> None:
        """Mark an artifact superseded (e.g. a checkpoint rotated out) and let go of its bytes.

        The store frees them only once no artifact of any run references the same content (a
        deterministic re-run logs identical bytes); opening a freed one later raises
        ``ArtifactNotFoundError`` naming ``superseded_by``.
        """
        with guard("releasing an artifact"):
            self._put(("release", text(name, "the artifact name"), time.time(),
                       None if superseded_by is None else text(superseded_by, "superseded_by")))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with guard("setting tags"):
            self._put(("tags", time.time(), {str(k): to_json(v) for k, v in tags.items()}))

    def log_seeds(self, seeds: Mapping[str, Any]) -> None:
        with guard("logging seeds"):
            self._put(("seeds", time.time(), {str(k): to_json(v) for k, v in seeds.items()}))

    def log_data(self, name: str, data: Any, **extra: Any) -> None:
        """Fingerprint a dataset (shape, dtype, content hash) now, before anyone mutates it."""
        with guard("fingerprinting data"):
            from autotrack._capture.data import fingerprint

            info = fingerprint(data)
            info.update(to_json(extra))
            self._put(("data", time.time(), str(name), to_json(info)))

    def set_framework(self, framework: str) -> None:
        self.framework = framework
        self._writer.update_doc(framework=framework)

    # -- ending --------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything recorded so far. True once the store has all of it; False if the
        store refused any of it or did not take it within ``timeout`` (it is kept, retried, and
        spooled at the end if it never gets through). After ``finish`` it answers at once."""
        if self._pid != os.getpid():
            return False  # a forked child records nothing of its parent's run
        return self._writer.flush(timeout)

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        """End the run (idempotent). ``status``: finished, failed or killed."""
        if status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {STATUSES[1:]}, not {status!r}")
        with self._lock:
            if self.status != "running" or self._pid != os.getpid():
                return
            self.status = status
        try:  # adapters' last words (totals) while the run still takes them (_events)
            _events.emit("run_finishing", self, status)
        except Exception as exc:  # noqa: BLE001 - strict mode only: raised once the run has ended
            hook_error: BaseException | None = exc
        else:
            hook_error = None
        sampler = self._sampler
        writer = self._writer
        # a failing store or sampler (a warning said so) is waited for, as is strict mode: the rest is spooled now
        wait = writer.error is not None or getattr(sampler, "error", None) is not None or strict() or \
            env_flag("AUTOTRACK_FINISH_WAIT")
        if sampler is not None:
            sampler.stop(wait=wait)  # its last sample goes in before the run's last write
            writer.before_end = sampler.stop
        end = _now_iso()
        writer.put(("status", {"status": status, "end_time": end, "error": error}))
        writer.update_doc(status=status, end_time=end)
        self._put = self._ended
        deactivate(self)
        # The store is not waited for (docs/api.md, "How runs end"; _pending) unless said above; strict
        # mode's promise is to raise the writer's errors here. What it cannot deliver, it spools and says.
        writer.close(_float_env("AUTOTRACK_EXIT_TIMEOUT", 60.0), wait=wait)
        error = writer.error or (sampler.error if sampler is not None else None) or hook_error
        if strict() and error is not None:
            raise error

    def _ended(self, item: tuple[Any, ...]) -> None:
        """What ``_put`` becomes once the run has ended: nothing is queued for a writer that is gone."""
        what = {"m": "metrics", "artifact": "an artifact", "release": "an artifact release"}.get(item[0], item[0])
        report("recording after the run ended", RuntimeError(
            f"run {self.id[:8]} has ended ({self.status}): {what} logged after that were not recorded "
            "(log inside the run, or start a new one)"), stacklevel=None)  # the user's line

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        status, error = status_for(exc)
        self.finish(status, error)
        return False  # the user's exception propagates unchanged

    def __repr__(self) -> str:
        return f"<autotrack.Run {self.id[:8]} {self.name!r} {self.status}>"


def status_for(exc: BaseException | None) -> tuple[str, str | None]:
    """How an exception ends a run: Ctrl-C and signals are ``killed``, the rest ``failed``."""
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
        return "finished", None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, (KeyboardInterrupt, _lifecycle.Terminated)):
        return "killed", text
    return "failed", text


def _capture_environment(backend: Any, run: Run) -> dict[str, Any]:
    from autotrack import _starter

    with _starter.IMPORTS:  # a fork waits for these imports (see _starter)
        import importlib.metadata  # noqa: F401 - used by the capture

        from autotrack._capture.environment import capture_environment
        from autotrack._spool import spool_dir

    own = [spool_dir()] + ([backend.root] if getattr(backend, "local", False) else [])
    env = capture_environment(exclude=own)
    env["system_metrics"] = _sampler.description(run._sampling, run._sampler)  # waits for its probe
    _rng.add_to_environment(env, run._rng_start)  # random state, result-changing variables (autotrack reproduce)
    return {"environment": to_json(env)}


_live: "weakref.WeakSet[Run]" = weakref.WeakSet()


def _nothing(item: tuple[Any, ...]) -> None:
    return None


def _after_fork_in_child() -> None:
    """A forked child (a multiprocessing worker) inherits its parent's runs but not their writer
    threads: it records nothing into them, and exits without waiting for them, unless it
    starts a run of its own."""
    _stack.clear()
    for run in list(_live):
        run._put = _nothing
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def deactivate(run: Run) -> None:
    """``run`` stops being an active run (it keeps recording): nothing started later joins it or
    becomes its child, and the exit hook no longer ends it, so whoever deactivates it ends it (a
    search's parent run, a callback's run left open after its training)."""
    with _stack_lock:
        if run in _stack:
            _stack.remove(run)


def active_run() -> Run | None:
    """The run being recorded in this process (the innermost one), or None."""
    with _stack_lock:
        return _stack[-1] if _stack else None


def active_runs() -> list[Run]:
    with _stack_lock:
        return list(_stack)


def _on_seed(source: str, value: Any) -> None:
    run = active_run()
    if run is not None:
        run.log_seeds({source: value})


_seeds.add_listener(_on_seed)


def start_run(
    name: str | None = None,
    uri: str | None = None,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    framework: str | None = None,
    parent_id: str | None = None,
    system_metrics: bool | None = None,
) -> Run:
    """Start recording a run; use it as a context manager. Inside another run it becomes a child.
    ``system_metrics``: sample the hardware under ``system/...`` (None: autolog's setting, else
    ``AUTOTRACK_SYSTEM_METRICS``, else on; see ``_sampler``)."""
    if _lifecycle.disabled():
        from autotrack._noop import NoopRun

        return NoopRun()  # type: ignore[return-value]
    _events.emit("run_starting")  # e.g. a plain-PyTorch loop's run ends here (integrations.torch)
    _seeds.install_seed_hooks()
    parent = active_run()
    if parent_id is None and parent is not None:
        parent_id = parent.id
    run = Run(name=name, uri=uri or (parent.uri if parent else None), experiment=experiment or (parent.experiment if parent else None),
              framework=framework, parent_id=parent_id, system_metrics=system_metrics)
    if params:
        run.log_params(params)
    if tags:
        run.set_tags(tags)
    with _stack_lock:
        _stack.append(run)
    _lifecycle.install(active_runs)
    return run
