"""The Backend protocol and the scheme registry (after fsspec's ``known_implementations``).

A backend stores three things: a small *run document* per run (identity, status, heartbeat;
rewritten whole, atomically, only by the run's own process), immutable numbered *segments* of
events per run, and content-addressed *artifacts*. That is all the writer and the readers need,
so a new backend (HTTP, a database) is seven methods, checked by one conformance suite. A
backend raises when a call fails; retrying and spooling are the writer's, the same for all.

Lookup order for a URI's scheme: backends registered here (built-ins and
``register_backend``), then the ``autotrack.backends`` entry-point group, then any protocol
fsspec can open (served by the file store). Local paths (``file``) skip the entry-point scan:
it reads every installed distribution's metadata (~50 ms at each run start) and no plugin can
sensibly take plain paths over; they skip fsspec too (~100-150 ms to import), which the file
store needs only for other protocols. Implementations are dotted paths imported on first
use, so a missing optional package is a one-line "install X" error, not an import-time crash.
"""

from __future__ import annotations

import importlib
import os
from types import MappingProxyType
from typing import IO, Any, Mapping, Protocol, runtime_checkable

from autotrack import _forksafe
from autotrack._errors import BackendUnavailableError, ConfigError

__all__ = ["Backend", "backend_for", "check_uri", "register_backend", "registered_backends", "scheme_of"]

ENTRY_POINT_GROUP = "autotrack.backends"


@runtime_checkable
class Backend(Protocol):
    """What the writer and the readers need from a store. Every method may raise ``OSError``."""

    uri: str

    def create_run(self, doc: dict[str, Any]) -> None:
        """Create the run's home and write its first run document."""

    def update_run(self, run_id: str, doc: dict[str, Any]) -> None:
        """Replace the run document (status, heartbeat, end time) atomically."""

    def append(self, run_id: str, seq: int, segment: dict[str, Any]) -> None:
        """Store segment ``seq`` of the run; segments are never modified once written."""

    def put_artifact(self, path: str, run_id: str | None = None) -> tuple[str, int]:
        """Store a local file by content; return (sha256, size). Known content is not copied.

        With ``run_id``, first record that the run references the content, so that no other
        run's release can free it (``_refs``). Optional, for freeing bytes (a backend without
        it keeps every byte): ``release_artifact(run_id, sha256) -> bool``, which drops the
        run's reference and frees the bytes only when no run references them any more.
        """

    def list_runs(self) -> list[dict[str, Any]]:
        """All run documents; one that cannot be read or parsed comes back as a marker,
        ``{"id": <folder>, "corrupt": {"file": ..., "reason": ...}}``, never dropped or raised."""

    def read_segments(self, run_id: str) -> list[dict[str, Any]]:
        """The run's segments in ``seq`` order; an unreadable one as a marker,
        ``{"seq": <n>, "corrupt": {"file": ..., "reason": ...}}``. Readers check every document
        against ``autotrack._schema`` whatever the backend."""

    def open_artifact(self, sha256: str) -> IO[bytes]:
        """A binary reader of the stored content (raises FileNotFoundError if absent)."""


# scheme -> (dotted path "module:Class", install hint for a missing dependency)
_BUILTIN: dict[str, tuple[str, str]] = {
    scheme: ("autotrack.backends.http:HttpBackend", "pip install 'autotrack-ml[server]'") for scheme in ("http", "https")
}
_registry: dict[str, Any] = {}
_instances: dict[str, Backend] = {}
_lock = _forksafe.lock()


def scheme_of(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    if sep and len(head) > 1:
        return head.lower()
    return "file"


def register_backend(scheme: str, backend: Any, clobber: bool = False) -> None:
    """Serve ``scheme://`` URIs with ``backend`` (a class taking ``uri``, or a "module:Class" path)."""
    scheme = scheme.lower()
    if not clobber and (scheme in _registry or scheme in _BUILTIN):
        raise ConfigError(f"a backend for {scheme}:// is already registered (pass clobber=True to replace it)")
    if isinstance(backend, type):
        _validate(backend, scheme)
    elif not isinstance(backend, str) and not callable(backend):
        raise ConfigError(f"backend for {scheme}:// must be a class, a factory or a 'module:Class' path")
    _registry[scheme] = backend
    with _lock:
        for key in [k for k in _instances if scheme_of(k) == scheme]:
            del _instances[key]


_METHODS = ("create_run", "update_run", "append", "put_artifact", "list_runs", "read_segments", "open_artifact")


def _validate(backend: Any, scheme: str) -> None:
    """Fail at registration (or first use), naming the plugin, not in the middle of a run."""
    missing = [m for m in _METHODS if not callable(getattr(backend, m, None))]
    if missing:
        raise ConfigError(f"backend {backend!r} for {scheme}:// lacks {', '.join(missing)}")


def registered_backends() -> Mapping[str, Any]:
    """Read-only view of the schemes served by something other than the fsspec file store."""
    merged = {k: v[0] for k, v in _BUILTIN.items()}
    merged.update(_registry)
    return MappingProxyType(merged)


def _load(target: Any, scheme: str, hint: str = "") -> Any:
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = f": {hint}" if hint else ""
        raise BackendUnavailableError(f"the {scheme}:// backend needs {exc.name or module_name}{extra}") from exc
    return getattr(module, attr)


def _from_entry_points(scheme: str) -> Any:
    from importlib.metadata import entry_points  # imported here: ~10-20 ms, for plugin schemes only

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() == scheme:
            return ep.load()
    return None


def _resolve_class(scheme: str) -> Any:
    if scheme in _registry:
        return _load(_registry[scheme], scheme)
    if scheme in _BUILTIN:
        target, hint = _BUILTIN[scheme]
        return _load(target, scheme, hint)
    plugin = _from_entry_points(scheme) if scheme != "file" else None
    if plugin is not None:
        return plugin
    from autotrack.backends.file import FileStore, check_protocol

    if scheme != "file":  # a local path needs no fsspec check (nor fsspec's ~100 ms import)
        try:
            check_protocol(scheme)
        except BackendUnavailableError:
            raise
        except ConfigError:
            meant = _close_scheme(scheme)
            if meant is None:
                raise
            raise ConfigError(f"unknown URI scheme {scheme}://: did you mean {meant}://? (no autotrack backend "
                              "is registered for it and fsspec cannot open it)") from None
    return FileStore


def _close_scheme(scheme: str) -> str | None:
    """The known scheme a typo most likely meant (``htp`` -> ``http``): a registered backend,
    an installed plugin's, or a protocol fsspec knows, installed or not."""
    import difflib

    known = set(_BUILTIN) | set(_registry) | {"file", "memory", "s3", "gs", "gcs", "az", "abfs"}
    try:
        from fsspec.registry import known_implementations

        known |= set(known_implementations)
    except ImportError:  # pragma: no cover - fsspec is a dependency
        pass
    try:
        from importlib.metadata import entry_points

        known |= {ep.name.lower() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # noqa: BLE001, S110 - a broken distribution's metadata must not hide the error reported
        pass
    close = difflib.get_close_matches(scheme, sorted(known), n=1, cutoff=0.5)
    return close[0] if close else None


_usable_schemes: set[str] = set()


def check_uri(uri: str | os.PathLike[str]) -> None:
    """Raise ``ConfigError`` now for a URI no backend can serve (an unknown or mistyped scheme, a
    missing optional package), so a bad setting stops a script before training, not at its first
    fit. Nothing is opened or created; a scheme found usable is not looked up again."""
    scheme = scheme_of(os.fspath(uri))
    if scheme == "file" or scheme in _usable_schemes:
        return
    _resolve_class(scheme)
    _usable_schemes.add(scheme)


def backend_for(uri: str) -> Backend:
    """The backend serving ``uri`` (one shared instance per URI in this process)."""
    uri = str(uri)
    if scheme_of(uri) == "file" and "://" not in uri:
        uri = os.path.abspath(os.path.expanduser(uri))  # "./runs" means the cwd of the call
    with _lock:
        found = _instances.get(uri)
    if found is not None:
        return found
    scheme = scheme_of(uri)
    instance = _resolve_class(scheme)(uri)
    _validate(instance, scheme)
    with _lock:
        return _instances.setdefault(uri, instance)


def _after_fork_in_child() -> None:
    """A forked child's runs get stores of their own: an HTTP store keeps its connections open
    between requests, and the child reusing one would put both processes' requests and answers
    on one socket; any store may hold state a thread of the parent was changing."""
    _instances.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
