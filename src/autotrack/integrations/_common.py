"""What every framework adapter shares: settings, one run per fit, safe patching, checkpoints.

Adapters own their framework's names and quirks; this module owns the policy that must be the
same everywhere: explicit callback arguments beat ``autolog()`` settings, which beat defaults;
a run the user started is joined, never ended, by an adapter; only the outermost fit of nested
fits records; patches are undone exactly by ``autolog(disable=True)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from typing import Any, Callable, Iterator, Mapping

import wrapt

from autotrack import _events
from autotrack._autolog import AutologConfig as Options
from autotrack._autolog import check_register_as
from autotrack._autolog import current_config
from autotrack._autolog import is_on as autolog_on
from autotrack._noop import NoopRun
from autotrack._run import Run, active_run, start_run, status_for
from autotrack._safety import guard

__all__ = ["Options", "resolve_options", "explicit_options", "FitRecorder", "FitSession", "Patcher", "outermost",
           "env_rank_zero", "CheckpointTracker", "autolog_on", "writes", "log_json"]

_UNSET: Any = object()
_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def resolve_options(**explicit: Any) -> Options:
    """Callback arguments given explicitly > ``autolog()`` settings > defaults."""
    config = current_config()
    values = {}
    for field in dataclasses.fields(Options):
        value = explicit.get(field.name, _UNSET)
        if value is _UNSET or value is None and field.name in ("uri", "experiment"):
            value = getattr(config, field.name) if config is not None else field.default
        values[field.name] = value
    if values["log_checkpoints"] not in (True, False, "all"):
        raise ValueError(f"log_checkpoints must be True, False or 'all', not {values['log_checkpoints']!r}")
    n = values["log_every_n_steps"]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"log_every_n_steps must be a positive int or None, not {n!r}")
    check_register_as(values["register_as"])
    if values["register_as"] and not values["log_models"] and not values["log_checkpoints"]:
        raise ValueError(f"register_as={values['register_as']!r} needs log_models or log_checkpoints: with both "
                         "off no fit has a model to register")
    if explicit.get("uri") is not None:  # a mistyped scheme: a ConfigError when the callback is made
        from autotrack.backends.base import check_uri

        check_uri(explicit["uri"])
    return Options(**values)


def explicit_options(**given: Any) -> dict[str, Any]:
    """The settings a callback was given (``None`` = not given), checked at construction so a
    bad value fails when the callback is made, not at the first epoch."""
    chosen = {k: v for k, v in given.items() if v is not None}
    resolve_options(**chosen)
    return chosen


def env_rank_zero() -> bool:
    """Rank from the launcher's environment, for frameworks that do not say it themselves."""
    for var in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        value = os.environ.get(var)
        if value not in (None, ""):
            try:
                return int(value) == 0  # type: ignore[arg-type]
            except ValueError:
                return True
    return True


class FitRecorder:
    """One ``fit``/``train`` call as recorded: the one object an adapter's callback and its
    autolog wrapper both talk to.

    ``begin`` joins the active run (a run the user started) or starts one; whoever began the
    recording ends it (``end``), and the other side -- a callback whose fit a wrapper began --
    only records into it. Every recording method is a no-op when nothing is recorded (another
    rank, ``AUTOTRACK_DISABLE``, an inner fit) and is guarded: it never raises into training.
    Checkpoints go through a ``CheckpointTracker`` made on first use when the options ask for
    them; the final model only when ``log_models`` is on.
    """

    def __init__(self, framework: str, options: Options, *, record: bool = True, evaluation: bool = False) -> None:
        self.framework = framework
        self.options = options
        self.record = record
        self.evaluation = evaluation  # an evaluate()/test(): it trains no model, so register_as registers nothing
        self.run: Run | NoopRun = NoopRun()
        self.owned = False  # the run was started (or reopened) here, and is ended here
        self.ended = False
        self._tracker: CheckpointTracker | None = None
        self._model: str | None = None  # the artifact name of the model this fit logged (register_as)

    # -- life --------------------------------------------------------------------------------
    def begin(self, name: str | None = None, *, reopen: Run | None = None) -> Run | NoopRun:
        """Start recording: into ``reopen`` (a finished run of this process, continued: an
        ``evaluate()`` after ``fit``), else the active run, else a new run."""
        if not self.record:
            return self.run
        _events.emit("fit_beginning", self)  # e.g. a plain-PyTorch loop's run ends (integrations.torch)
        current = active_run()
        if reopen is not None and current is None and reopen.status != "running":
            self.run, self.owned = reopen.reopen(), True
        elif current is not None:
            self.run, self.owned = current, False
            if current.framework is None:
                current.set_framework(self.framework)
        else:
            self.run = start_run(name=name, uri=self.options.uri, experiment=self.options.experiment,
                                 framework=self.framework)
            self.owned = True
        if self.owned:
            self.run.open_fit = self.framework  # until end(): a program ending first reads "failed"
        return self.run

    def end(self, exc: BaseException | None = None, status: str | None = None) -> None:
        """Finish the run if this recorder started it (a joined run is left to its owner); the
        status follows ``exc`` (``failed`` with its traceback, ``killed`` for Ctrl-C)."""
        self.ended = True
        computed, error = status_for(exc)
        registering = bool(self.options.register_as) and (status or computed) == "finished" and not self.evaluation
        if self.owned:
            self.owned = False
            self.run.open_fit = None
            self.run.finish(status or computed, error)
        elif registering and not isinstance(self.run, NoopRun):
            self.run.flush()  # a joined run: what this fit logged must be in the store to be registered
        if registering:
            self._register(self.options.register_as)

    def _register(self, model_name: str) -> None:
        """``register_as``: the fit's model (else its best checkpoint) as a new version of
        ``model_name``, once the run's final flush put its bytes and sha256 in the store. With
        ``log_models=False`` a fit without a checkpoint is a warning (a fit that saved no model,
        a ``Trainer.test()``, registers nothing); a registry failure is one warning, never a
        failed fit."""
        if not self.record or isinstance(self.run, NoopRun):
            return
        artifact, kind = self._model, "model"
        if artifact is None and self._tracker is not None:
            artifact, kind = self._tracker.registrable(), "checkpoint"
        if artifact is None:
            if self.options.log_models:  # a fit that saved no model (a Trainer.test(), an evaluate())
                return
            import warnings

            from autotrack._safety import AutotrackWarning

            warnings.warn(f"autotrack: register_as={model_name!r}: run {self.run.id[:8]} logged no model and no "
                          "checkpoint (log_models=False?), so no version was registered", AutotrackWarning,
                          stacklevel=2)
            return
        try:
            from autotrack._registry import register_model

            register_model(model_name, self.run.id, artifact, uri=self.run.uri,
                           metadata={"registered_by": "register_as", "framework": self.framework, "from": kind})
        except Exception as exc:  # noqa: BLE001 - the fit is over and recorded; only the version is missing
            from autotrack._safety import report

            report(f"{self.framework}: registering the model", exc, stacklevel=None, message=(
                f"autotrack: registering run {self.run.id[:8]}'s {artifact} as a version of {model_name!r} failed "
                f"({type(exc).__name__}: {exc}); the run is recorded. Register it later with: autotrack model "
                f"register {model_name} {self.run.id[:8]} {artifact}"))

    @property
    def active(self) -> bool:
        return self.record and not self.ended and not isinstance(self.run, NoopRun)

    # -- what a fit is made of ----------------------------------------------------------------
    def params(self, values: Mapping[str, Any]) -> None:
        if self.active and values:
            with guard(f"{self.framework}: recording params"):
                self.run.log_params(values)

    def metrics(self, values: Mapping[str, Any], step: int | None = None, epoch: int | float | None = None) -> None:
        if self.active and values:
            self.run.log_metrics(values, step=step, epoch=epoch)  # refuses bad values itself

    def data(self, name: str, obj: Any, **extra: Any) -> None:
        if self.active and obj is not None:
            with guard(f"{self.framework}: fingerprinting data"):
                self.run.log_data(name, obj, **extra)

    def seeds(self, values: Mapping[str, Any]) -> None:
        if self.active and values:
            self.run.log_seeds(values)

    def tags(self, values: Mapping[str, Any]) -> None:
        if self.active and values:
            self.run.set_tags(values)

    # -- files ---------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> CheckpointTracker | None:
        """The checkpoint tracker, or None when checkpoints are not recorded."""
        if self._tracker is None and self.active and self.options.log_checkpoints:
            self._tracker = CheckpointTracker(self.run, keep_all=self.options.log_checkpoints == "all")
        return self._tracker if self.active else None

    def checkpoint(self, path: str, metadata: Mapping[str, Any] | None = None) -> str | None:
        """A checkpoint file or folder just written by the framework; its artifact name."""
        tracker = self.checkpoints
        if tracker is None:
            return None
        with guard(f"{self.framework}: recording a checkpoint"):
            return tracker.saved(os.fspath(path), dict(metadata or {}))
        return None

    def checkpoint_removed(self, path: str) -> None:
        tracker = self.checkpoints
        if tracker is not None:
            with guard(f"{self.framework}: recording a removed checkpoint"):
                tracker.removed(os.fspath(path))

    def best_checkpoint(self, path: str | None, extra: Mapping[str, Any] | None = None) -> None:
        tracker = self.checkpoints
        if tracker is not None and path:
            with guard(f"{self.framework}: marking the best checkpoint"):
                tracker.mark_best(os.fspath(path), dict(extra or {}))

    def model(self, path: str, *, name: str | None = None, metadata: Mapping[str, Any] | None = None) -> None:
        """The trained model (a file or folder the adapter just wrote), when ``log_models`` is on."""
        if self.active and self.options.log_models:
            with guard(f"{self.framework}: recording the model"):
                self.run.log_artifact(path, name=name, kind="model", metadata=dict(metadata or {}))
                self._model = _main_file(os.fspath(path), name)


    def model_made(self, name: str, write: Callable[[str], None], metadata: Mapping[str, Any] | None = None) -> None:
        """The trained model as a file the writer thread makes, ``write(path)``, from what the
        adapter has read on this thread (``_keras_save``); when ``log_models`` is on."""
        if self.active and self.options.log_models:
            with guard(f"{self.framework}: recording the model"):
                self.run._log_made(name, "model", dict(metadata or {}), write)
                self._model = name


FitSession = FitRecorder  # the name adapters used before; same object


def writes(data: Any) -> Callable[[str], None]:
    """A ``write(path)`` for ``Run._log_made`` / ``FitRecorder.model_made``: ``data`` (bytes made
    on the training thread: a pickle, a serialised model, a CSV) into the file the run's writer
    thread makes. The training thread then makes no file, folder, link or removal: each system
    call there can hand the GIL to a background thread for up to 5 ms."""
    def write(path: str) -> None:
        with open(path, "wb") as fh:
            fh.write(data)
    return write


def log_json(recorder: FitRecorder, name: str, content: Any, metadata: Mapping[str, Any]) -> None:
    """A small JSON file artifact (feature importances): made here, written by the run's writer."""
    if recorder.active:
        data = json.dumps(content, indent=1, sort_keys=True).encode("utf-8")
        recorder.run._log_made(name, "file", dict(metadata), writes(data))


def _main_file(path: str, name: str | None = None) -> str:
    """The artifact name of a model logged from ``path``: itself for a file; for a folder (a
    transformers model, Keras parts) its largest file, the weights, as a version pins one file."""
    base = name or os.path.basename(os.path.normpath(path))
    if not os.path.isdir(path):
        return base
    sizes = [(os.path.getsize(os.path.join(folder, f)), os.path.relpath(os.path.join(folder, f), path))
             for folder, _dirs, files in os.walk(path) for f in files]
    if not sizes:
        return base
    size, rel = max(sizes, key=lambda s: (s[0], s[1]))
    return f"{base}/{rel.replace(os.sep, '/')}"


_depth = threading.local()


@contextlib.contextmanager
def outermost(key: str) -> Iterator[bool]:
    """True only for the outermost of nested calls with this key (a Pipeline's inner fits)."""
    level = getattr(_depth, key, 0)
    setattr(_depth, key, level + 1)
    try:
        yield level == 0
    finally:
        setattr(_depth, key, level)


class Patcher:
    """Wraps framework functions with wrapt and can put every original back."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any]] = []
        self._inherited: set[tuple[int, str]] = set()  # patched where they were only inherited

    def wrap(self, owner: Any, attr: str, wrapper: Callable[..., Any]) -> None:
        original = owner.__dict__.get(attr, getattr(owner, attr)) if isinstance(owner, type) else getattr(owner, attr)
        if isinstance(original, _PROXY):
            return  # already wrapped (wrapt 2 proxies are no longer ObjectProxy subclasses)
        if attr not in getattr(owner, "__dict__", {}):
            self._inherited.add((id(owner), attr))
        wrapt.wrap_function_wrapper(owner, attr, wrapper)
        self._applied.append((owner, attr, original))

    def undo(self) -> None:
        """Every patched attribute as it was: put back, or removed where it was only inherited
        (a copy left in a subclass or an instance would not be the original any more)."""
        while self._applied:
            owner, attr, original = self._applied.pop()
            with guard("removing a patch"):
                if (id(owner), attr) in self._inherited:
                    self._inherited.discard((id(owner), attr))
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, original)

    def __bool__(self) -> bool:
        return bool(self._applied)


class CheckpointTracker:
    """Checkpoint files recorded as they are written, with which is best and which superseded.

    A checkpoint is logged at once (a crash later loses nothing). When the framework deletes
    one (top-k rotation) it is marked ``superseded``, and unless ``keep_all`` (the user's
    ``log_checkpoints="all"``) its stored bytes are freed. The ``best`` mark moves to whichever
    checkpoint the framework calls best.
    """

    def __init__(self, run: Run | NoopRun, keep_all: bool = False, prefix: str = "checkpoints/") -> None:
        self.run = run
        self.keep_all = keep_all
        self.prefix = prefix
        self.names: dict[str, str] = {}  # absolute path -> artifact name
        self.best: str | None = None
        self.latest: str | None = None  # the checkpoint logged last

    def name_for(self, path: str) -> str:
        return self.names.get(os.path.abspath(path)) or self.prefix + os.path.basename(os.path.normpath(path))

    def saved(self, path: str, metadata: dict[str, Any]) -> str | None:
        if not os.path.exists(path):
            return None
        name = self.prefix + os.path.basename(os.path.normpath(path))
        if self.names.get(os.path.abspath(path)) == name and not self.keep_all:
            self.run.release_artifact(name, superseded_by=name)  # written again in place (last.ckpt): its new version
        self.names[os.path.abspath(path)] = name
        self.run.log_artifact(path, name=name, kind="checkpoint", metadata=metadata)
        self.latest = name
        return name

    def removed(self, path: str) -> None:
        """The framework deleted a checkpoint: superseded; its bytes go unless keep_all."""
        name = self.names.pop(os.path.abspath(path), None)
        if name is None:
            return
        if self.keep_all:
            self.run.update_artifact(name, {"superseded": True, "kept": True})
        else:
            newer = next((n for n in (self.best, self.latest) if n is not None and n != name), None)
            self.run.release_artifact(name, superseded_by=newer)

    def registrable(self) -> str | None:
        """The checkpoint ``register_as`` registers: the best one, else the last logged (its
        largest file, for a checkpoint folder)."""
        name = self.best or self.latest
        if name is None:
            return None
        path = next((p for p, n in self.names.items() if n == name), None)
        return _main_file(path, name) if path is not None and os.path.isdir(path) else name

    def mark_best(self, path: str | None, extra: dict[str, Any] | None = None) -> None:
        if not path:
            return
        name = self.name_for(path)
        if name == self.best:
            return
        if self.best is not None:
            self.run.update_artifact(self.best, {"best": False})
        self.best = name
        self.run.update_artifact(name, {"best": True, **(extra or {})})
