"""Small helpers shared by the tests: running a Python snippet in a fresh interpreter; the one run
a store holds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


def python(code: str, *, env: dict[str, str] | None = None, wait: bool = True, timeout: float = 60, **kw):
    """Run ``code`` in a new interpreter with autotrack importable; returns CompletedProcess or Popen."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = SRC + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    args = [sys.executable, "-c", textwrap.dedent(code)]
    if not wait:
        return subprocess.Popen(args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    return subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=timeout, **kw)


def only_run(store: str):
    """The single run in ``store`` (an adapter that made two runs, or none, fails here, naming them)."""
    import autotrack

    runs = autotrack.runs(uri=store)
    assert len(runs) == 1, [(r.name, r.framework, r.status) for r in runs]
    return runs[0]


def training_thread_file_calls(script: str, *parts: str) -> str:
    """``script`` for ``python()``, after code that defines ``watch()``: from then on, ``seen``
    lists the files opened, folders made and trees removed by the main thread whose path holds
    any of ``parts`` (what an adapter should leave to the run's writer thread)."""
    return textwrap.dedent(f"""
        import sys as _sys, threading as _threading
        seen = []
        def _hook(event, args):
            if _threading.current_thread() is _threading.main_thread() and event in ("open", "os.mkdir", "shutil.rmtree"):
                if any(part in str(args[0]) for part in {parts!r}):
                    seen.append((event, str(args[0])))
        def watch():
            _sys.addaudithook(_hook)
    """) + textwrap.dedent(script)
