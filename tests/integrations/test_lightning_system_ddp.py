"""System metrics of a real two-node Lightning DDP job (issue 18): two processes on this machine,
each launched as one node would be (``NODE_RANK``, ``LOCAL_RANK=0``, gloo on CPU), each node's
hardware recorded under its own name, into the one run that global rank 0 records."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

import autotrack

pytest.importorskip("lightning")

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(os.path.dirname(TESTS), "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_nodes_sample_into_rank_zeros_run(store, tmp_path) -> None:
    script = tmp_path / "train_two_nodes.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {TESTS!r})
        import autotrack
        import lightning as L
        from integrations.lightning_models import loaders, module_class

        class Slow(L.Callback):  # a fit long enough for the other node to find the run and sample
            def on_train_batch_end(self, *args, **kwargs):
                time.sleep(0.4)

        autotrack.autolog(uri={store!r}, experiment="ddp2")
        L.seed_everything(1)
        train, val = loaders()
        trainer = L.Trainer(max_epochs=3, accelerator="cpu", devices=1, num_nodes=2, strategy="ddp", logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            callbacks=[Slow()], default_root_dir=sys.argv[1])
        trainer.fit(module_class(L.pytorch)(), train, val)
    """))
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()), WORLD_SIZE="2", LOCAL_RANK="0", AUTOTRACK_SYSTEM_METRICS_SECONDS="1")
    for name in ("RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_NODEID"):
        env.pop(name, None)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"node{n}")], cwd=tmp_path,
                              env=dict(env, NODE_RANK=str(n), AUTOTRACK_NODE=node), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n, node in enumerate(("alpha", "beta"))]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outs]
    (run,) = autotrack.runs(uri=store)  # one run, from global rank 0
    assert run.status == "finished" and run.framework == "lightning" and run.experiment == "ddp2"
    assert [p.epoch for p in run.metrics["val_loss"]] == [0, 1, 2]
    assert run.environment["system_metrics"]["node"] == "alpha"
    for node in ("alpha", "beta"):
        for key in ("process/cpu_percent", "process/memory_rss_bytes", "memory/used_bytes", "disk/cwd/free_bytes"):
            assert run.metrics.get(f"system/{node}/{key}"), (node, key, sorted(run.metrics))
    assert not [n for n in run.metrics if n.startswith("system/process/")]  # every node under its own name
    beta = run.metrics["system/beta/process/memory_rss_bytes"]
    assert all(p.value > 50 * 2**20 for p in beta)  # the other node's process: torch and Lightning loaded
    assert all(run.start_time.timestamp() - 1 <= p.timestamp <= run.end_time.timestamp() + 5 for p in beta)
