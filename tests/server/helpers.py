"""Real server processes on loopback for the server tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ServerProcess", "child_env", "free_port", "TOKEN"]

TOKEN = "test-token-3f2a"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: not strict (a client must survive a dead server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOTRACK_STRICT", "AUTOTRACK_TOKEN", "AUTOTRACK_URI")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class ServerProcess:
    """``autotrack serve`` (or any command serving /api/v1/health) as a subprocess."""

    def __init__(self, store: str, port: int | None = None, token: str | None = TOKEN, *args: str,
                 command: list[str] | None = None, log: Path | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command or [sys.executable, "-m", "autotrack", "serve", "--uri", store, "--host", "127.0.0.1",
                                   "--port", str(self.port), "--log-level", "warning", *args]
        self.log = log
        self.proc: subprocess.Popen[Any] | None = None

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        env = child_env(**({"AUTOTRACK_TOKEN": self.token} if self.token else {}))
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        # its own process group: SIGKILL reaches uvicorn's worker processes too
        self.proc = subprocess.Popen(self.command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.command}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start in time")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def kill(self) -> None:
        """SIGKILL the whole server (no graceful shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
