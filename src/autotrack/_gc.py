"""``paused_gc()``: no garbage collection while a reader builds many objects that all stay alive.

Parsing 10,000 run documents makes about a million objects that the caller keeps; the
collector's full passes over them would be a third of the time and free nothing.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
