"""A run's artifacts on their way to the store: stored, retried, released, or spooled.

Owned by the run's writer (``_writer``) and used only from its thread (or from the thread that
ends the run in its place). An artifact is recorded in the run's segment as soon as its content
is known, stored or not; until the store confirms the bytes it stays in ``pending``, its content
pinned (``_staging``), and is retried with the segments, then spooled at the end if the store
never takes it. Every store call goes through ``call`` (the writer's ``_call``).
"""

from __future__ import annotations

from typing import Any, Callable

from autotrack._segment import Segment
from autotrack._staging import reserve, unstage

__all__ = ["Uploads"]


class _Artifact:
    """An artifact logged and not yet confirmed stored; ``path`` holds its pinned content."""

    __slots__ = ("request", "path", "owned", "sha", "size")

    def __init__(self, request: dict[str, Any], path: str, owned: bool) -> None:
        self.request, self.path, self.owned = request, path, owned
        self.sha: str | None = None
        self.size = 0


def _sha256_file(path: str) -> tuple[str, int]:
    from autotrack.backends._codec import sha256_file

    return sha256_file(path)


def _takes_run_id(put_artifact: Callable[..., Any]) -> bool:
    """Backends written before reference records take ``put_artifact(path)`` only (they keep
    every byte: without ``release_artifact``, nothing is ever freed)."""
    import inspect

    try:
        params = inspect.signature(put_artifact).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


class Uploads:
    def __init__(self, backend: Any, run_id: str, call: Callable[..., Any],
                 failed: Callable[[str, BaseException], None], out_of_time: Callable[[], bool]) -> None:
        self.backend, self.run_id = backend, run_id
        self._call, self._failed, self._out_of_time = call, failed, out_of_time
        self.pending: list[_Artifact] = []  # logged, not yet stored
        self._stored: dict[str, str] = {}  # artifact name -> sha256, as recorded by this run
        self._groups: dict[str, list[str]] = {}  # directory logged as one name -> its files' names
        self._takes_run: bool | None = None

    def take(self, request: dict[str, Any], segment: Segment) -> None:
        """Store one logged artifact (a request from ``Run.log_artifact``) and record it; one the
        writer makes (``Run._log_made``) is written first, into a staging folder of ours."""
        write = request.pop("_write", None)
        if write is not None:
            path = None
            try:
                path = reserve()  # an empty file of ours, which write() overwrites
                write(path)  # a local file: made even when the store is out of time, then spooled
            except Exception as exc:  # noqa: BLE001 - reported; the rest of the run goes on
                if path is not None:
                    unstage(path)
                self._failed("writing an artifact", exc)
                return
            request["_read_from"], request["_staged"] = path, True
        entry = _Artifact(request, request.pop("_read_from"), request.pop("_staged", False))
        self.pending.append(entry)  # until the store has it: retried, or spooled at the end
        exc = self._put(entry)
        if exc is not None:
            try:
                entry.sha, entry.size = self._call(_sha256_file, entry.path)
            except OSError as err:  # the content is gone (a file not ours, deleted): nothing to keep
                self.pending.remove(entry)
                self._failed("reading an artifact", err)
                return
            self._failed("storing an artifact", exc)
        self._record(segment, entry)

    def _record(self, segment: Segment, entry: _Artifact) -> None:
        request = entry.request
        request["sha256"], request["size"] = entry.sha, entry.size
        self._stored[request["name"]] = entry.sha  # type: ignore[assignment]
        group = request["metadata"].get("group")
        if group is not None:
            self._groups.setdefault(group, []).append(request["name"])
        segment.artifacts.append(request)
        segment.events += 1

    def _put(self, entry: _Artifact) -> Exception | None:
        if self._out_of_time():
            return TimeoutError("out of time to deliver (AUTOTRACK_EXIT_TIMEOUT)")
        try:
            if self._takes_run is None:
                self._takes_run = _takes_run_id(self.backend.put_artifact)
            args = (entry.path, self.run_id) if self._takes_run else (entry.path,)
            sha, size = self._call(self.backend.put_artifact, *args)
        except Exception as exc:  # noqa: BLE001 - kept for the next try
            return exc
        if entry.sha is not None and sha != entry.sha:
            return OSError(f"the store keeps {entry.path} as sha256 {sha}, recorded as {entry.sha}")
        entry.sha, entry.size = sha, size
        self.pending.remove(entry)
        if entry.owned:
            unstage(entry.path)
        return None

    def retry(self) -> None:
        for entry in list(self.pending):
            if self._put(entry) is not None:
                return

    def release(self, segment: Segment, name: str, ts: float, superseded_by: str | None = None) -> None:
        """Let go of the bytes of an artifact this run no longer needs (a rotated checkpoint).

        ``name`` is one artifact or a directory logged as one (each of its files). The store
        frees the bytes only when no artifact of any run still references them (reference
        records, see ``backends/_refs.py``); the records stay, marked ``kept`` or not.
        """
        members = self._groups.pop(name, None) or [name]
        shas = {member: self._stored.pop(member, None) for member in members}
        release = getattr(self.backend, "release_artifact", None)
        freed: set[str] = set()
        for sha in set(shas.values()) - {None} - set(self._stored.values()):
            for entry in [e for e in self.pending if e.sha == sha]:  # never delivered: no upload needed now
                self.pending.remove(entry)
                if entry.owned:
                    unstage(entry.path)
            if release is None or self._out_of_time():
                continue
            try:
                if self._call(release, self.run_id, sha):
                    freed.add(sha)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - the bytes stay: nothing lost
                self._failed("releasing a superseded artifact", exc)
        for member, sha in shas.items():
            segment.artifact_updates.append({"name": member, "time": ts, "metadata": {
                "superseded": True, "kept": sha not in freed, "superseded_by": superseded_by}})
            segment.events += 1

    def spool(self, spool: Any, segment: Segment) -> int:
        """Save the bytes of every artifact not stored yet; returns how many."""
        for entry in list(self.pending):
            if entry.sha is None:  # taken over while being stored: record it now
                entry.sha, entry.size = _sha256_file(entry.path)
                self._record(segment, entry)
            spool.artifact(entry.sha, entry.path, entry.owned)
            if entry.owned:
                unstage(entry.path)  # moved into the spool: its staging folder may go
        return len(self.pending)
