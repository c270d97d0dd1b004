"""Small helpers shared by core tests: running a Python snippet in a fresh interpreter."""

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
