"""Threads started without the training thread waiting for them.

``Thread.start()`` returns only once the new thread has run its first instructions; that
hand-over waits for the GIL, up to the interpreter's switch interval (5 ms) while another
thread computes. ``start_run`` starts two threads (the run's writer and its system-metrics
sampler), so a loop of short fits paid 2-9 ms a run for nothing (issue 20). Here one long-lived
thread per process does the starting: the caller only queues the thread.

``Launched.join`` (and ``alive``) wait for the start first, so a caller that ends a run at once
still waits for its writer to have run. The launcher blocks SIGTERM and SIGINT, and so every
thread it starts (and they start) does: the kernel then delivers them to the main thread. After a fork the child gets a new launcher on its first
use (the parent's thread does not exist there).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, Callable

from autotrack import _forksafe

__all__ = ["Launched", "launch"]

_queue: "queue.SimpleQueue[Launched | None]" = queue.SimpleQueue()
_lock = _forksafe.lock()
_launcher: threading.Thread | None = None


class Launched:
    """A thread queued for starting; ``started`` is set once ``Thread.start()`` returned (or failed)."""

    __slots__ = ("thread", "started", "error")

    def __init__(self, target: Callable[[], Any], name: str) -> None:
        self.thread = threading.Thread(target=target, name=name, daemon=True)
        self.started = threading.Event()
        self.error: BaseException | None = None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the start, then for the thread, ``timeout`` seconds in all (None: no limit)."""
        end = None if timeout is None else time.monotonic() + timeout
        if not self.started.wait(timeout):
            return
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(None if end is None else max(0.0, end - time.monotonic()))

    def alive(self) -> bool:
        """Queued or running: a thread not started yet is not "dead" (it will run)."""
        return (not self.started.is_set() and self.error is None) or self.thread.is_alive()

    def is_current(self) -> bool:
        return self.thread is threading.current_thread()


def _run() -> None:
    # SIGTERM and SIGINT must reach the main thread, where Python runs their handlers: delivered
    # to another thread, they leave a main thread blocked in sleep() or a C call asleep until it
    # wakes by itself (a scheduler's SIGTERM then seemed ignored). Every thread autotrack starts
    # descends from this one and inherits the mask.
    try:
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    except (AttributeError, ValueError, OSError):  # Windows: no thread signal masks
        pass
    while True:
        item = _queue.get()
        if item is None:
            return
        try:
            item.thread.start()
        except BaseException as exc:  # noqa: BLE001 - out of threads: the caller's join/alive say so
            item.error = exc
        finally:
            item.started.set()


def launch(target: Callable[[], Any], name: str) -> Launched:
    """Queue ``target`` to run on a new daemon thread; returns at once."""
    global _launcher
    item = Launched(target, name)
    if _launcher is None or not _launcher.is_alive():
        with _lock:
            if _launcher is None or not _launcher.is_alive():
                thread = threading.Thread(target=_run, name="autotrack-launcher", daemon=True)
                thread.start()  # once per process: the only start anyone waits for
                _launcher = thread
    _queue.put(item)
    return item


def _after_fork_in_child() -> None:
    global _launcher, _queue
    _launcher, _queue = None, queue.SimpleQueue()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
