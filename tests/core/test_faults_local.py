"""Faults around a run that are not the store's: logging after the end, forked children,
files that cannot be hard-linked or vanish at once, and a segment that cannot be encoded."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
import warnings

import pytest

import autotrack
from autotrack._safety import AutotrackWarning

from .helpers import python


def test_logging_after_finish_warns_once_and_flush_answers_at_once(store, lenient):
    with autotrack.start_run(uri=store) as run:
        run.log_metric("loss", 1.0, step=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(5):
            run.log_metric("loss", 0.5, step=i + 1)
        run.log_params({"late": 1})
    texts = [str(w.message) for w in caught if issubclass(w.category, AutotrackWarning)]
    assert len(texts) == 1 and "has ended (finished)" in texts[0] and "not recorded" in texts[0]
    started = time.monotonic()
    assert run.flush(timeout=30) is True  # everything up to the end was delivered
    assert time.monotonic() - started < 0.5
    rec = autotrack.get_run(run.id, uri=store)
    assert [p.step for p in rec.metrics["loss"]] == [0] and rec.params == {}


def test_logging_after_finish_is_an_error_in_strict_mode(store):
    with autotrack.start_run(uri=store) as run:
        pass
    with pytest.raises(RuntimeError, match="has ended"):
        run.log_metric("loss", 1.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_exits_at_once_and_records_nothing_of_the_parent(store, tmp_path):
    proc = python(f"""
        import os, sys, time, warnings, autotrack
        run = autotrack.start_run(uri={store!r})
        run.log_metric("loss", 1.0, step=0)
        pid = os.fork()
        if pid == 0:  # the child: logs into the inherited run, then exits normally (atexit runs)
            started = time.monotonic()
            run.log_metric("loss", 99.0, step=1)
            assert autotrack.active_run() is None
            assert run.flush(5) is False
            with autotrack.start_run(uri={store!r}, name="child-own") as own:
                own.log_metric("x", 1.0, step=0)
            print("child", round(time.monotonic() - started, 2), flush=True)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        run.log_metric("loss", 2.0, step=2)
        run.finish()
        print("parent done", flush=True)
    """, env={"AUTOTRACK_EXIT_TIMEOUT": "60", "AUTOTRACK_STRICT": "0"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    child_line = [line for line in proc.stdout.splitlines() if line.startswith("child")][0]
    assert float(child_line.split()[1]) < 5
    assert "AutotrackWarning" not in proc.stderr, proc.stderr
    runs = {r.name: r for r in autotrack.runs(uri=store)}
    parent = next(r for name, r in runs.items() if name != "child-own")
    assert parent.status == "finished" and [p.value for p in parent.metrics["loss"]] == [1.0, 2.0]
    assert runs["child-own"].status == "finished" and runs["child-own"].final_metrics == {"x": 1.0}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_workers_do_not_wait_for_the_parents_writer(store):
    proc = python(f"""
        import multiprocessing as mp, time, autotrack
        def work(i):
            return i * 2
        run = autotrack.start_run(uri={store!r})
        started = time.monotonic()
        with mp.get_context("fork").Pool(2) as pool:
            assert pool.map(work, range(8)) == [i * 2 for i in range(8)]
        run.log_metric("took", time.monotonic() - started, step=0)
        run.finish()
    """, env={"AUTOTRACK_EXIT_TIMEOUT": "60"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rec = autotrack.last_run(store)
    assert rec.status == "finished" and rec.final_metrics["took"] < 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_lock_autotrack_keeps_for_the_process_is_free_in_a_forked_child():
    """A child forked while another thread holds one of our process-wide locks got it held for
    good: its own run's environment capture waited on the package-scan lock (20-60 s, then the
    run's end gave up on it), its warnings on the warn-once table's. Every such lock (module
    level, on a class, on a module-level object) is held by a thread here, and the child must
    find each free (``_forksafe``). ``_starter.IMPORTS`` is left out: the fork waits for it."""
    proc = python("""
        import _thread, importlib, os, pkgutil, sys, threading, autotrack
        from autotrack import _starter
        for m in pkgutil.walk_packages(autotrack.__path__, "autotrack."):
            parts = m.name.split(".")  # the framework adapters import their framework: their helpers only
            if parts[1] != "integrations" or len(parts) == 2 or parts[2] in ("_common", "_gbm_common", "_tune_ray"):
                importlib.import_module(m.name)
        kinds = (type(_thread.allocate_lock()), type(_thread.RLock()))
        def locks():
            found = {}
            for name, module in list(sys.modules.items()):
                if name.split(".")[0] != "autotrack":
                    continue
                for attr, value in list(vars(module).items()):
                    places = [(attr, value)]
                    if (getattr(value, "__module__", "") == name and isinstance(value, type)) or (
                            type(value).__module__.startswith("autotrack") and hasattr(value, "__dict__")):
                        places += [(f"{attr}.{a}", v) for a, v in list(vars(value).items())]
                    for label, each in places:
                        if isinstance(each, kinds) and each is not _starter.IMPORTS:
                            found[f"{name}.{label}"] = each
            return found
        held = locks()
        ready = threading.Event()
        def hold():
            for lock in held.values():
                lock.acquire()
            ready.set()
            threading.Event().wait()
        threading.Thread(target=hold, daemon=True).start()
        ready.wait()
        pid = os.fork()
        if pid == 0:
            stuck = sorted(name for name, lock in locks().items() if not lock.acquire(True, 0.2))
            print("stuck:", " ".join(stuck), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        print("held:", " ".join(sorted(held)), flush=True)
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines())
    held = lines["held"].split()
    assert "autotrack._capture.environment._packages_lock" in held and "autotrack._safety._lock" in held
    assert "autotrack._capture.environment._GIT._lock" in held and len(held) >= 10, held
    assert lines["stuck"].split() == []


def test_a_first_run_imports_nothing_on_its_threads_that_a_fork_would_not_wait_for(store):
    """In a fresh process (nothing imported yet, unlike the test session, where
    tests/conftest.py checks every test the same way), every module a run's threads import
    is imported while holding ``_starter.IMPORTS``, which ``os.fork`` waits for. The system
    metrics sampler imported ``autotrack._capture.system`` and ``importlib.metadata`` (and its
    tree) without it: a child forked meanwhile hung at its first import of any of them."""
    proc = python(f"""
        import sys, threading, autotrack
        from autotrack import _starter
        _starter.IMPORTS = threading.RLock()  # as now; on the code before, a Lock, which cannot tell its owner
        unguarded = []
        def hook(event, args):
            thread = threading.current_thread().name
            if event == "import" and thread.startswith("autotrack-") and not _starter.IMPORTS._is_owned():
                unguarded.append(f"{{thread.split('-')[1]}}: {{args[0]}}")
        sys.addaudithook(hook)
        run = autotrack.start_run(uri={store!r})
        run.log_metric("loss", 1.0, step=0)
        run.finish()
        assert run.flush(30)
        print("unguarded:", " ".join(unguarded))
    """, env={"AUTOTRACK_SYSTEM_METRICS_SECONDS": "0.2"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "unguarded:", proc.stdout


def _staging_leftovers() -> list[str]:
    tmp = tempfile.gettempdir()
    return [n for n in os.listdir(tmp) if n.startswith((".autotrack-staging-", "autotrack-staging-"))
            and n.endswith(f"-{os.getpid()}")]


def test_staging_folders_of_dead_processes_are_swept(store, tmp_path, monkeypatch):
    """A process killed by SIGKILL leaves its staging folder; the next process on this machine
    removes it (and never another machine's, in a shared folder)."""
    from autotrack import _staging

    dead_pid = int(python("import os; print(os.getpid())").stdout)
    tmp = tempfile.gettempdir()
    dead = os.path.join(tmp, f".autotrack-staging-{_staging._host()}-{dead_pid}")
    other_host = os.path.join(tmp, f".autotrack-staging-elsewhere-{dead_pid}")
    for folder in (dead, other_host):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "pinned"), "wb") as fh:
            fh.write(b"x")
    monkeypatch.setattr(_staging, "_by_device", {})  # as in a new process
    (tmp_path / "x.bin").write_bytes(b"x")
    try:
        with autotrack.start_run(uri=store) as run:
            run.log_artifact(tmp_path / "x.bin")
        assert not os.path.exists(dead) and os.path.exists(other_host)
    finally:
        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(other_host, ignore_errors=True)


def test_a_file_that_cannot_be_linked_is_copied_and_nothing_is_left_behind(store, tmp_path, monkeypatch):
    def no_links(src, dst, *args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    with autotrack.start_run(uri=store) as run:
        with tempfile.TemporaryDirectory() as folder:  # as four adapters log their models
            path = os.path.join(folder, "model.bin")
            with open(path, "wb") as fh:
                fh.write(b"model bytes" * 100)
            run.log_artifact(path, kind="model")
        # the folder is gone before the writer thread reads the file
    (art,) = autotrack.get_run(run.id, uri=store).artifacts
    assert art.read_bytes() == b"model bytes" * 100
    assert _staging_leftovers() == []


def test_no_staging_folder_in_the_users_folders(store, tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    with autotrack.start_run(uri=store) as run:
        for i in range(3):
            f = ckpts / f"epoch={i}.ckpt"
            f.write_bytes(b"w" * (i + 10))
            run.log_artifact(f, kind="checkpoint")
        run.flush()
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]
    assert not [p for p in tmp_path.rglob(".autotrack-staging*")]
    assert _staging_leftovers() == []


def test_many_runs_leave_no_staging_folders(store, tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"a")
    for _ in range(5):
        with autotrack.start_run(uri=store) as run:
            run.log_artifact(f)
    assert _staging_leftovers() == []


def test_a_reserved_staging_path_survives_another_runs_unstage(tmp_path):
    """``reserve()`` handed out a path in the staging folder and the writer made the file later;
    meanwhile another run's writer unstaged the folder's last file and removed the folder, empty,
    and the model could not be written (FileNotFoundError; seen in bench perrun, a loop of
    scikit-learn fits, each model written by the writer thread). The reserved file now exists."""
    from autotrack import _staging

    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    reserved = _staging.reserve()
    staged, ours = _staging.stage(str(other))
    assert ours and os.path.dirname(staged) == os.path.dirname(reserved)
    _staging.unstage(staged)  # the other run's artifact is stored
    with open(reserved, "wb") as fh:  # the writer makes the reserved file
        fh.write(b"model")
    _staging.unstage(reserved)
    assert _staging_leftovers() == []


def test_a_segment_that_cannot_be_encoded_costs_only_its_bad_events(store, lenient):
    """Values are checked at the call; if something unencodable still reached the writer (a bug),
    it costs those events (warned, counted), never the run."""
    with autotrack.start_run(uri=store) as run:
        run.log_params({"good": 1})
        run._put(("params", time.time(), {"bad": object(), "fine": 2}))  # past the call's checks
        run.log_metric("loss", 0.5, step=0)
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == "finished"
    assert rec.params == {"good": 1, "fine": 2} and rec.final_metrics == {"loss": 0.5}
    assert autotrack.error_counts().get("encoding a segment")


def test_one_cause_one_warning_saying_what_happens_to_the_data(tmp_path, lenient, monkeypatch):
    """A dead store fails every call (run document, segments, artifact, heartbeat): one warning for
    the cause, one for what was saved at the end, no source line of autotrack's in either."""
    from tests.faulty_store import WRITES, faulty

    monkeypatch.setenv("AUTOTRACK_EXIT_TIMEOUT", "1")
    monkeypatch.setenv("AUTOTRACK_HEARTBEAT_SECONDS", "0.1")
    uri, faults = faulty(str(tmp_path / "store"))
    faults.refuse |= WRITES
    model = tmp_path / "m.bin"
    model.write_bytes(b"m")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autotrack.start_run(uri=uri) as run:
            run.log_metric("loss", 1.0, step=0)
            run.log_artifact(model)
            run.flush(timeout=1)
            time.sleep(0.5)
    ours = [w for w in caught if issubclass(w.category, AutotrackWarning)]
    texts = [str(w.message) for w in ours]
    assert len(ours) == 2, texts
    assert "kept and retried" in texts[0] and "autotrack sync" in texts[0]
    assert "saved to" in texts[1] and "1 artifact(s)" in texts[1]
    assert all(w.filename == "autotrack" for w in ours)  # from the writer thread: no source line
    assert warnings.formatwarning(ours[0].message, ours[0].category, ours[0].filename, ours[0].lineno).count("\n") == 1
