"""How runs end when the process does: exit, unhandled exception, SIGTERM, SIGKILL."""

from __future__ import annotations

import os
import signal
import time

import pytest

import autotrack

from .helpers import python

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def test_exit_without_finish_flushes_and_finishes(store):
    proc = python(f"""
        import autotrack
        run = autotrack.start_run(uri={store!r})
        for i in range(500):
            run.log_metrics({{"loss": i}}, step=i)
        # no finish(), no flush(): the exit hook must deliver everything
    """, env={"AUTOTRACK_FLUSH_SECONDS": "60"})
    assert proc.returncode == 0, proc.stderr
    rec = autotrack.last_run(store)
    assert rec.status == "finished"
    assert len(rec.metrics["loss"]) == 500


def test_unhandled_exception_without_context_manager_is_failed(store):
    proc = python(f"""
        import autotrack
        run = autotrack.start_run(uri={store!r})
        run.log_metrics({{"loss": 1.0}})
        raise RuntimeError("diverged")
    """)
    assert proc.returncode == 1 and "RuntimeError: diverged" in proc.stderr
    rec = autotrack.last_run(store)
    assert rec.status == "failed"
    assert "RuntimeError: diverged" in rec.error


def _training_child(store):
    """A process with a run open, in a loop, once it said it is ready."""
    proc = python(f"""
        import time, autotrack
        run = autotrack.start_run(uri={store!r})
        run.log_metrics({{"loss": 1.0}}, step=0)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """, wait=False)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_sigterm_marks_killed_and_still_dies_by_sigterm(store):
    proc = _training_child(store)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert proc.returncode == -signal.SIGTERM
    rec = autotrack.last_run(store)
    assert rec.status == "killed"
    assert "SIGTERM" in rec.error
    assert rec.metrics["loss"][0].value == 1.0


def test_ctrl_c_in_a_script_marks_killed(store):
    proc = _training_child(store)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    rec = autotrack.last_run(store)
    assert rec.status == "killed" and "KeyboardInterrupt" in rec.error
    assert rec.metrics["loss"][0].value == 1.0


def test_sigterm_chains_to_the_users_handler(store):
    proc = python(f"""
        import signal, sys, time, autotrack
        def handler(signum, frame):
            print("user handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
        run = autotrack.start_run(uri={store!r})
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """, wait=False)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3 and "user handler ran" in out
    assert autotrack.last_run(store).status == "killed"


def test_sigkill_leaves_a_readable_run_reported_killed_once_stale(store):
    proc = python(f"""
        import os, signal, autotrack
        run = autotrack.start_run(uri={store!r}, params={{"lr": 0.1}})
        for i in range(100):
            run.log_metrics({{"loss": i}}, step=i)
        run.flush()
        run.log_metrics({{"loss": -1}}, step=999)  # after the last flush: may be lost
        os.kill(os.getpid(), signal.SIGKILL)
    """, env={"AUTOTRACK_HEARTBEAT_SECONDS": "0.25", "AUTOTRACK_FLUSH_SECONDS": "60"})
    assert proc.returncode == -signal.SIGKILL
    rec = autotrack.last_run(store)
    assert rec.params == {"lr": 0.1}
    assert [p.step for p in rec.metrics["loss"]][:100] == list(range(100))
    deadline = time.time() + 10
    while autotrack.last_run(store).status != "killed":
        assert time.time() < deadline, "a dead run was never reported killed"
        time.sleep(0.2)


def test_live_run_in_another_process_is_running(store):
    proc = python(f"""
        import time, autotrack
        run = autotrack.start_run(uri={store!r})
        run.flush()
        print("ready", flush=True)
        time.sleep(3)
    """, env={"AUTOTRACK_HEARTBEAT_SECONDS": "0.25"}, wait=False)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # several heartbeat intervals: a live heartbeat keeps it "running"
    assert autotrack.last_run(store).status == "running"
    proc.wait(30)
    assert autotrack.last_run(store).status == "finished"


def test_a_fit_an_adapter_began_and_never_ended_is_not_finished_at_exit(store):
    """A framework without an exception hook (Keras, XGBoost, the Trainer) never tells the adapter
    that a fit raised; if the program handles the exception and exits normally, the run is failed."""
    proc = python(f"""
        from autotrack.integrations._common import FitRecorder, resolve_options
        rec = FitRecorder("keras", resolve_options(uri={store!r}))
        rec.begin()
        rec.metrics({{"loss": 1.0}}, step=0)
        try:
            raise RuntimeError("diverged inside fit")  # the fit raised; the adapter never knew
        except RuntimeError:
            pass
    """)
    assert proc.returncode == 0, proc.stderr
    rec = autotrack.last_run(store)
    assert rec.status == "failed" and "keras fit did not complete" in rec.error
    assert rec.final_metrics == {"loss": 1.0}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_dies_of_sigterm_as_it_would_without_autotrack(store):
    """A ``fork`` child (a ``multiprocessing`` worker) inherited our Python-level SIGTERM handler.
    ``Pool.terminate()`` (which ``with Pool() as p:`` calls on exit) SIGTERMs workers blocked in a
    semaphore wait: a Python handler runs only if the signal lands inside that wait, and one that
    lands just before it is never run, so the worker slept on and the pool's ``join`` hung
    (~2 in 100 under load; CPython issue 78178, dagster issue 25749). The child records nothing
    of its parent's runs, so it gets back what it had without us (default, or the user's own
    handler); a child that starts its own run gets ours again, and its run ends ``killed``."""
    proc = python(f"""
        import os, signal, sys, autotrack
        def users(signum, frame):
            sys.exit(7)
        run = autotrack.start_run(uri={store!r})
        def child(expected, own_run):
            pid = os.fork()
            if pid == 0:
                ok = signal.getsignal(signal.SIGTERM) is expected
                if own_run:
                    autotrack.start_run(uri={store!r}, name="child-own").log_metric("x", 1.0, step=0)
                    ok = ok and signal.getsignal(signal.SIGTERM) is not expected
                    os.kill(os.getpid(), signal.SIGTERM)  # marks its run killed, then dies of it
                os._exit(0 if ok else 1)
            return os.waitpid(pid, 0)[1]
        print("default", child(signal.SIG_DFL, False), flush=True)
        print("own run", child(signal.SIG_DFL, True), flush=True)
        run.finish()
        signal.signal(signal.SIGTERM, users)  # installed after ours: a child keeps the user's
        print("user's", child(users, False), flush=True)
    """, env={"AUTOTRACK_EXIT_TIMEOUT": "60"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    statuses = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert os.waitstatus_to_exitcode(int(statuses["default"])) == 0
    assert os.waitstatus_to_exitcode(int(statuses["own run"])) == -signal.SIGTERM
    assert os.waitstatus_to_exitcode(int(statuses["user's"])) == 0
    runs = {r.name: r for r in autotrack.runs(uri=store)}
    assert runs["child-own"].status == "killed" and "SIGTERM" in runs["child-own"].error
    assert runs["child-own"].metrics["x"][0].value == 1.0
