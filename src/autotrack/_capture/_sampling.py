"""Sampling within a budget, for data fingerprints (``data``): which spans of a long buffer to
read, and the JSON text of a sample of a large Python container.

Both are deterministic (the same input always gives the same sample, so the same hash) and
bounded (the work depends on the budget, never on the size or the nesting of the input).
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

__all__ = ["BLOCKS", "spans", "json_size", "sampled_json"]

BLOCKS = 64  # evenly spaced blocks read between the two ends of a sampled buffer


def spans(n: int, edge: int, block: int) -> list[tuple[int, int]]:
    """``[0, edge)``, ``BLOCKS`` evenly spaced blocks between, ``[n - edge, n)``; may be empty or overlap."""
    lo = min(edge, n)
    hi = max(n - edge, lo)
    free = max(hi - lo - block, 0)
    starts = [lo + free * i // (BLOCKS - 1) for i in range(BLOCKS if hi > lo else 0)]
    return [(0, lo), *[(s, min(s + block, hi)) for s in starts], (hi, n)]


def json_size(obj: Any, cap: int) -> int:
    """How many values ``obj`` holds (a string one per 64 characters), counted to just past ``cap``."""
    count, stack = 1, [obj]
    while stack and count <= cap:
        x = stack.pop()
        if isinstance(x, str):
            count += len(x) >> 6
        elif isinstance(x, (list, tuple, dict)):
            count += len(x) * (2 if isinstance(x, dict) else 1)  # counted as pushed: the stack stays within cap
            if count <= cap:
                stack.extend(x)
                if isinstance(x, dict):
                    stack.extend(x.values())
    return count


def sampled_json(x: Any, budget: int) -> str:
    """JSON text of ``x`` if it holds at most ``budget`` values, else of a sample of about that many:
    items spread over ``x`` (how many from a probe of three), each sampled in turn if bigger than
    the probe said. The budget is shared out, never multiplied, down the levels: deterministic and
    bounded whatever the size or nesting."""
    if json_size(x, budget) <= budget:
        return json.dumps(x, sort_keys=True)
    if isinstance(x, str):
        half = max(budget, 1) * 32
        return f"{json.dumps(x[:half])}...{len(x)}...{json.dumps(x[-half:])}"
    if budget <= 1 or not isinstance(x, (list, tuple, dict)):
        return json.dumps(f"<{type(x).__name__} of {len(x)}>")
    n = len(x)
    if isinstance(x, dict):  # no positions in a dict: its first and last items, in insertion order
        ends = [next(iter(x.items())), next(reversed(x.items()))]
        k = max(1, budget // (3 + max(json_size(v, budget // 8) for _, v in ends)) // 2)
        items = list(x.items()) if n <= 2 * k else [*islice(x.items(), k), *list(islice(reversed(x.items()), k))[::-1]]
        return f"{{{n}|{sampled_json([list(kv) for kv in items], budget)}}}"
    per = max(json_size(x[i], budget // 8) for i in {0, n // 2, n - 1})  # > budget / 8: sample 8 or so
    m = min(n, max(2, budget // (per + 1)))
    if m <= 4 * BLOCKS:  # a few items: evenly spaced, first and last among them
        picks = [i * (n - 1) // (m - 1) for i in range(m)] if m > 1 else [0]
        return f"[{n}|" + ",".join(sampled_json(x[i], budget // m) for i in picks) + "]"
    parts = [(a, b) for a, b in spans(n, m // 4, max(1, m // (2 * BLOCKS))) if b > a]
    total = sum(b - a for a, b in parts)
    return f"[{n}|" + ",".join(sampled_json(list(x[a:b]), budget * (b - a) // total) for a, b in parts) + "]"
