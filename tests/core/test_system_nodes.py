"""System metrics under distributed training (issue 18): which process samples, under which name,
into which run. The launchers' real environment variables (torchrun, SLURM, Lightning's own
launcher), a real store, real psutil; the whole two-node case with a real Lightning DDP job is
``tests/integrations/test_lightning_namespaces_ddp.py::test_ddp_two_nodes_sample_into_rank_zeros_run``.
"""

from __future__ import annotations

import os
import socket

import pytest

import autotrack
from autotrack import _sampler, _sampler_nodes
from autotrack._sampler_nodes import NodeSampler, placement

LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
                 "NODE_RANK", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_LOCALID",
                 "SLURM_NODEID", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_JOB_ID", "SLURM_STEP_ID",
                 "SLURMD_NODENAME", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
                 "PMI_RANK", "MPI_LOCALRANKID", "AUTOTRACK_NODE")


@pytest.fixture
def launcher(monkeypatch):
    """Sets a launcher's variables on a clean slate (none inherited from the machine)."""
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: object) -> None:
        for name in LAUNCHER_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))

    return set_env


@pytest.fixture
def fast(monkeypatch):
    """Samples every 0.2 s (the user's floor is 1 s; tests need not wait for it)."""
    monkeypatch.setattr(_sampler, "MIN_SECONDS", 0.05)
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS_SECONDS", "0.2")


TORCHRUN_2x2 = dict(MASTER_ADDR="10.0.0.1", MASTER_PORT=29500, TORCHELASTIC_RUN_ID="abc", WORLD_SIZE=4,
                    LOCAL_WORLD_SIZE=2, GROUP_WORLD_SIZE=2)


@pytest.mark.parametrize("env, expected", [
    # one machine, however many processes: not a multi-node job, rank 0 samples under system/
    ({}, None),
    (dict(RANK=1, LOCAL_RANK=1, WORLD_SIZE=2, LOCAL_WORLD_SIZE=2, MASTER_ADDR="h", MASTER_PORT=1), None),
    # torchrun, 2 nodes x 2 processes
    (dict(TORCHRUN_2x2, RANK=0, LOCAL_RANK=0, GROUP_RANK=0), ("n0", 0, "torchelastic:abc", True, False)),
    (dict(TORCHRUN_2x2, RANK=1, LOCAL_RANK=1, GROUP_RANK=0), ("n0", 0, None, False, False)),
    (dict(TORCHRUN_2x2, RANK=2, LOCAL_RANK=0, GROUP_RANK=1), ("n0", 1, "torchelastic:abc", False, True)),
    (dict(TORCHRUN_2x2, RANK=3, LOCAL_RANK=1, GROUP_RANK=1), ("n0", 1, None, False, False)),
    # the node's rank from RANK // LOCAL_WORLD_SIZE when the launcher does not say it
    (dict(RANK=5, LOCAL_RANK=0, WORLD_SIZE=8, LOCAL_WORLD_SIZE=4, MASTER_ADDR="h", MASTER_PORT=7),
     ("n0", 1, "master:h:7", False, True)),
    # SLURM (srun): its node name, its job and step
    (dict(SLURM_PROCID=0, SLURM_LOCALID=0, SLURM_NODEID=0, SLURM_NNODES=2, SLURM_JOB_ID=77, SLURM_STEP_ID=0,
          SLURMD_NODENAME="gpu-a17"), ("gpu-a17", 0, "slurm:77.0", True, False)),
    (dict(SLURM_PROCID=8, SLURM_LOCALID=0, SLURM_NODEID=1, SLURM_NNODES=2, SLURM_JOB_ID=77, SLURM_STEP_ID=0,
          SLURMD_NODENAME="gpu-a18.cluster"), ("gpu-a18", 1, "slurm:77.0", False, True)),
    # Lightning's own launcher on each node (NODE_RANK, LOCAL_RANK; no RANK before the fit)
    (dict(NODE_RANK=1, LOCAL_RANK=0, WORLD_SIZE=2, MASTER_ADDR="h", MASTER_PORT=9), ("n0", 1, "master:h:9", False, True)),
])
def test_where_a_process_stands(launcher, monkeypatch, env, expected) -> None:
    launcher(**env)
    monkeypatch.setattr(_sampler_nodes, "_node_name", lambda: os.environ.get("SLURMD_NODENAME", "n0").split(".")[0])
    found = placement()
    assert (None if found is None else tuple(found)) == expected


def test_the_node_name(launcher, monkeypatch) -> None:
    launcher(AUTOTRACK_NODE="rack 3/gpu 7")
    assert placement().node == "rack_3_gpu_7"  # one safe path segment
    launcher(AUTOTRACK_NODE="gpu")  # a group's name would be taken for one: made distinct
    assert placement().node == "node-gpu"
    launcher(WORLD_SIZE=4, LOCAL_WORLD_SIZE=2, RANK=2, LOCAL_RANK=0)
    assert placement().node == socket.gethostname().split(".")[0].replace(" ", "_")


def test_every_node_samples_into_rank_zeros_run(launcher, fast, store) -> None:
    """Rank 0 of node "alpha" records the run (its own hardware under system/alpha/); local rank 0
    of node "beta" finds the run by the job's key and adds its samples, as segments of its own."""
    job = dict(MASTER_ADDR="10.0.0.1", MASTER_PORT=29500, WORLD_SIZE=2, LOCAL_WORLD_SIZE=1, GROUP_WORLD_SIZE=2)
    launcher(**job, RANK=0, LOCAL_RANK=0, GROUP_RANK=0, AUTOTRACK_NODE="alpha")
    import time

    with autotrack.start_run(uri=store) as run:
        launcher(**job, RANK=1, LOCAL_RANK=0, GROUP_RANK=1, AUTOTRACK_NODE="beta")
        beta = NodeSampler(store, placement())
        for step in range(8):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            time.sleep(0.06)
        beta.stop()  # at the node's exit: what it has is written
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished" and beta.run_id == run.id
    assert rec.environment["system_metrics"]["node"] == "alpha"
    names = set(rec.metrics)
    for node in ("alpha", "beta"):
        assert {f"system/{node}/process/cpu_percent", f"system/{node}/memory/used_bytes",
                f"system/{node}/disk/cwd/free_bytes"} <= names, sorted(names)
    assert not any(n.startswith("system/process/") for n in names)  # every node under its name, rank 0's too
    alpha, beta_points = rec.metrics["system/alpha/cpu/percent"], rec.metrics["system/beta/cpu/percent"]
    assert all(p.step is not None for p in alpha) and all(p.step is None for p in beta_points)  # beta knows no step
    start, end = rec.start_time.timestamp(), rec.end_time.timestamp()
    assert all(start - 1 <= p.timestamp <= end + 1 for p in beta_points)

    from autotrack.ui._data import run_series

    series = run_series(rec)  # the dashboard places beta's samples on the step reached at their time
    steps = series["system/beta/cpu/percent"]["step"]
    assert all(isinstance(s, int) and 0 <= s <= 7 for s in steps) and steps == sorted(steps)

    from autotrack._system_view import summary

    rows = {(r["node"], r["key"]) for r in summary(rec)}
    assert ("alpha", "process/cpu_percent") in rows and ("beta", "process/cpu_percent") in rows


def test_a_node_samples_nothing_before_the_run_exists_nor_without_a_job(launcher, fast, store) -> None:
    launcher(MASTER_ADDR="h", MASTER_PORT=1, WORLD_SIZE=2, NODE_RANK=1, LOCAL_RANK=0, AUTOTRACK_NODE="beta")
    beta = NodeSampler(store, placement())
    import time

    time.sleep(0.5)
    beta.stop()
    assert beta.run_id is None and autotrack.runs(uri=store) == []  # rank 0 never started: nothing written
    launcher(WORLD_SIZE=2, NODE_RANK=1, LOCAL_RANK=0, AUTOTRACK_NODE="beta")  # no job key: no sampler
    assert _sampler_nodes.start_node_sampler(store, None) is None


def test_autolog_starts_the_node_sampler_on_other_nodes_only(launcher, fast, store, monkeypatch) -> None:
    launcher(MASTER_ADDR="h", MASTER_PORT=2, WORLD_SIZE=4, LOCAL_WORLD_SIZE=2, RANK=3, LOCAL_RANK=1, GROUP_RANK=1)
    autotrack.autolog(uri=store)
    assert _sampler_nodes._node_sampler is None  # local rank 1: its node's rank 0 samples
    autotrack.autolog(disable=True)
    launcher(MASTER_ADDR="h", MASTER_PORT=2, WORLD_SIZE=4, LOCAL_WORLD_SIZE=2, RANK=2, LOCAL_RANK=0, GROUP_RANK=1)
    monkeypatch.setenv("AUTOTRACK_SYSTEM_METRICS", "0")
    autotrack.autolog(uri=store)
    assert _sampler_nodes._node_sampler is None  # turned off
    autotrack.autolog(disable=True)
    monkeypatch.delenv("AUTOTRACK_SYSTEM_METRICS")
    autotrack.autolog(uri=store)
    found = _sampler_nodes._node_sampler
    assert found is not None and found.place.job == "master:h:2" and found.base == 1_000_000
    autotrack.autolog(disable=True)  # stops it
    assert _sampler_nodes._node_sampler is None and found._stopped
