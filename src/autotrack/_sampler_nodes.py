"""System metrics of every node of a multi-node job, into the one run that global rank 0 records.

Only global rank 0 records a run; the other nodes' hardware would go unseen. The simplest scheme
that keeps one writer per file and needs nothing from the training framework:

- **Which job.** A key every node reads from its launcher's environment: ``TORCHELASTIC_RUN_ID``
  (torchrun's rendezvous id, unless ``none``), else ``SLURM_JOB_ID`` (with ``SLURM_STEP_ID``), else
  ``MASTER_ADDR:MASTER_PORT``. Rank 0's run document carries it as ``job``.
- **Which node.** Its rank among the nodes (``GROUP_RANK``, ``NODE_RANK``, ``SLURM_NODEID``, else
  ``RANK // LOCAL_WORLD_SIZE``) and its name (``AUTOTRACK_NODE``, else ``SLURMD_NODENAME``, else the
  host name): every node's series are ``system/<name>/...``, rank 0's own included.
- **Into the run.** On every other node, local rank 0's ``autolog()`` starts a ``NodeSampler``: it
  looks in the store for the running run whose ``job`` is its key (backing off from the interval
  to a minute), then writes its samples as segments of that run numbered from ``node rank x
  1,000,000``: new immutable files, numbers rank 0's writer never reaches (a million segments is
  weeks of writing), in the order readers apply. Every minute, and at exit. It checks every five
  minutes that the run still runs, and looks for the job's next run when it ended.

Limits (docs/api.md says them too): a node's samples have no step (it does not know rank 0's):
readers place them by time; at most 99 nodes; a node whose process restarts alone within one run
would reuse its numbers (a file store replaces those files, the server refuses them); what a
node cannot deliver is dropped with a warning, not spooled; a node's "why no GPU metrics" is not
in the run's environment (rank 0's is); without a job key the other nodes record nothing.
"""

from __future__ import annotations

import atexit
import os
import time

from autotrack import _forksafe

TYPE_CHECKING = False  # not ``typing`` (nor ``re``): autolog() imports this module on every machine
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["Placement", "NodeSampler", "placement", "start_node_sampler", "SEQ_BLOCK", "MAX_NODES"]

SEQ_BLOCK = 1_000_000  # node n writes segments n * SEQ_BLOCK + k
MAX_NODES = 99  # segment numbers have 8 digits
_LOOK_MAX = 60.0
_CHECK_EVERY = 300.0
_FLUSH_EVERY = 60.0
_KEEP = 1_000  # samples kept while the store refuses them; older ones are dropped
_node_sampler: "NodeSampler | None" = None
_lock = _forksafe.lock()  # not ``threading`` (_forksafe): its import is most of autolog()'s in a bare interpreter


class Placement:
    """Where this process stands in a multi-node job."""

    __slots__ = ("node", "node_rank", "job", "rank_zero", "node_leader")

    def __init__(self, node: str, node_rank: int | None, job: str | None, rank_zero: bool, node_leader: bool) -> None:
        self.node = node  # the name in system/<node>/...
        self.node_rank = node_rank
        self.job = job  # set on global rank 0 (for its run document) and on other nodes' local rank 0
        self.rank_zero = rank_zero  # this process is global rank 0: it records the run
        self.node_leader = node_leader  # local rank 0 of a node other than rank 0's: it runs a NodeSampler

    def __iter__(self):  # noqa: ANN204 - (node, node_rank, job, rank_zero, node_leader), as a tuple would
        return iter([getattr(self, k) for k in self.__slots__])

    def __repr__(self) -> str:
        return "Placement(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def _int(*names: str) -> int | None:
    for name in names:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                return int(raw)
            except ValueError:
                continue
    return None


def _node_name() -> str:
    name = os.environ.get("AUTOTRACK_NODE") or os.environ.get("SLURMD_NODENAME")
    if not name:
        try:
            name = os.uname().nodename.split(".")[0]
        except AttributeError:  # Windows
            import platform

            name = platform.node().split(".")[0]
    import re  # only in a multi-node job

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "node"
    from autotrack._sampler import GROUPS

    return f"node-{name}" if name in GROUPS else name


def job_key() -> str | None:
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "").strip()
    if run_id and run_id != "none":
        return f"torchelastic:{run_id}"
    slurm = os.environ.get("SLURM_JOB_ID", "").strip()
    if slurm:
        step = os.environ.get("SLURM_STEP_ID", "").strip()
        return f"slurm:{slurm}" + (f".{step}" if step else "")
    addr, port = os.environ.get("MASTER_ADDR", "").strip(), os.environ.get("MASTER_PORT", "").strip()
    return f"master:{addr}:{port}" if addr and port else None


def placement() -> Placement | None:
    """Where this process stands in a multi-node job, or None when it is not part of one."""
    rank = _int("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
    local = _int("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")
    local_size = _int("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE")
    node_rank = _int("GROUP_RANK", "NODE_RANK", "SLURM_NODEID")
    if node_rank is None and rank is not None and local_size:
        node_rank = rank // local_size
    nodes = _int("GROUP_WORLD_SIZE", "SLURM_NNODES", "SLURM_JOB_NUM_NODES")
    world = _int("WORLD_SIZE")
    if nodes is None and world and local_size:
        nodes = -(-world // local_size)
    if not (os.environ.get("AUTOTRACK_NODE") or (nodes or 1) > 1 or (node_rank or 0) > 0):
        return None
    rank_zero = (rank or 0) == 0 and (node_rank or 0) == 0 and (local or 0) == 0
    leader = not rank_zero and (local or 0) == 0 and node_rank is not None and 0 < node_rank <= MAX_NODES
    return Placement(_node_name(), node_rank, job_key() if rank_zero or leader else None, rank_zero, leader)


def start_node_sampler(uri: str | None, explicit: bool | None) -> "NodeSampler | None":
    """From ``autolog()``: on local rank 0 of a node other than rank 0's, sample this node into
    the job's run (once per process). Elsewhere, or with system metrics off: nothing."""
    global _node_sampler
    place = placement()
    if place is None or not place.node_leader or place.job is None:
        return None  # the common case, a single machine: decided without importing the sampler (logging)
    from autotrack._sampler import wanted

    if not wanted(explicit)[0]:
        return None
    with _lock:
        if _node_sampler is None:
            from autotrack._config import resolve_uri

            _node_sampler = NodeSampler(resolve_uri(uri), place)
            atexit.register(_node_sampler.stop)
        return _node_sampler


def stop_node_sampler() -> None:
    global _node_sampler
    with _lock:
        found, _node_sampler = _node_sampler, None
    if found is not None:
        found.stop()


class NodeSampler:
    """This node's samples, delivered as segments of the job's run (see the module's docstring)."""

    def __init__(self, uri: str, place: Placement) -> None:
        from autotrack._sampler import Sampler, interval

        self.uri, self.place = uri, place
        self.run_id: str | None = None
        self.base = (place.node_rank or 0) * SEQ_BLOCK
        self.seq = self.base
        self.every = interval()
        self._backend: Any = None
        self._buffer: list[tuple[Any, ...]] = []
        self._started = time.time()
        self._next_look = 0.0
        self._wait = self.every
        self._flushed = self._checked = time.monotonic()
        self._stopped = False
        disks = {"cwd": os.getcwd()}
        self._sampler = Sampler(f"node-{place.node}", self._emit, f"system/{place.node}/", disks, self.every,
                                what="sampling this node's system metrics").start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._sampler.stop()
        self._flush()

    # -- on the sampler's thread -------------------------------------------------------------
    def _emit(self, stamp: int, figures: dict[str, float]) -> None:
        now = time.monotonic()
        if self.run_id is None and now >= self._next_look:
            self.run_id = self._look()
            self._next_look = now + self._wait
            self._wait = min(_LOOK_MAX, self._wait * 2)
            self._checked = now
        if self.run_id is None:
            return  # rank 0 has not started the run yet
        self._buffer.append(("m", stamp, None, None, figures))
        del self._buffer[:-_KEEP]
        if now - self._flushed >= _FLUSH_EVERY:
            self._flush()
        if now - self._checked >= _CHECK_EVERY:
            self._checked = now
            if self.run_id not in {d.get("id") for d in self._running()}:
                self._flush()
                self.run_id, self.seq, self._wait = None, self.base, self.every  # the job's next run, if any

    def _store(self) -> Any:
        if self._backend is None:
            from autotrack.backends.base import backend_for

            self._backend = backend_for(self.uri)
        return self._backend

    def _running(self) -> list[dict[str, Any]]:
        """The job's running runs, newest first (a stale heartbeat is a dead run)."""
        from datetime import datetime

        found = []
        for doc in self._store().list_runs():
            if not isinstance(doc, dict) or doc.get("job") != self.place.job or doc.get("status") != "running":
                continue
            beat, every = doc.get("heartbeat"), doc.get("heartbeat_interval") or 15.0
            if isinstance(beat, (int, float)) and isinstance(every, (int, float)) and time.time() - beat > 4 * every:
                continue
            try:
                start = datetime.fromisoformat(str(doc.get("start_time"))).timestamp()
            except ValueError:
                continue
            if start >= self._started - 600:  # a run of an earlier job with the same key is not ours
                found.append((start, doc))
        return [doc for _, doc in sorted(found, key=lambda item: item[0], reverse=True)]

    def _look(self) -> str | None:
        try:
            found = self._running()
        except Exception as exc:  # noqa: BLE001 - the store is down: looked for again later
            self._failed(exc)
            return None
        return str(found[0]["id"]) if found else None

    def _flush(self) -> None:
        self._flushed = time.monotonic()
        if not self._buffer or self.run_id is None:
            return
        if self.seq >= self.base + SEQ_BLOCK:
            self._buffer.clear()
            return
        from autotrack._segment import Segment

        segment = Segment()
        segment.add_calls(self._buffer)
        try:
            self._store().append(self.run_id, self.seq, segment.to_doc(self.seq, self.run_id))
        except Exception as exc:  # noqa: BLE001 - kept (bounded) and tried again at the next flush
            self._failed(exc)
            return
        self._buffer = []
        self.seq += 1

    def _failed(self, exc: BaseException) -> None:
        from autotrack._safety import report

        try:
            report(f"writing node {self.place.node}'s system metrics to the store", exc)
        except Exception:  # noqa: BLE001, S110 - strict mode: nothing to raise into from here
            pass
