"""How the file store (and the HTTP client, and the spool) turn documents into bytes and back,
and hash files: one place, so every store writes the same JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

try:  # ~10x faster than json for segments (docs/benchmarks.md); the json module is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - a platform without an orjson wheel
    _orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "loads", "sha256_file"]

_CHUNK = 4 * 1024 * 1024


def dumps(obj: Any) -> bytes:
    """Compact strict JSON as UTF-8 bytes: orjson when installed, else the json module.

    The run writer encodes non-finite floats itself (``"NaN"`` strings); json would refuse one
    that slipped through, orjson writes it as ``null``. What orjson cannot encode (an int beyond
    64 bits, a float subclass, ...) goes through json, so both give the same document. Text that
    is not valid Unicode (a lone surrogate, from a file name decoded with ``surrogateescape``)
    has no UTF-8 form: it is written as a JSON ``\\udcxx`` escape, which every parser reads back.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, option=_orjson.OPT_NON_STR_KEYS)
        except TypeError:  # orjson.JSONEncodeError
            pass
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def loads(data: bytes | str) -> Any:
    """Parse a stored document: orjson when installed, else (or where orjson differs) json.

    json parses what orjson refuses (a NaN token written by another tool) and keeps integers
    beyond 64 bits exact, which orjson turns into floats. Such an integer has at least 19 digits
    in a row, and so does nothing else the writer produces (a float's repr has at most 17), so
    one C-speed search of the bytes decides: listing 10,000 run documents must not walk each
    parsed document in Python. Invalid JSON raises ValueError either way.
    """
    if _orjson is not None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if _NINETEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO):  # ~10x faster than a regex
            try:
                return _orjson.loads(raw)
            except ValueError:  # orjson.JSONDecodeError
                pass
    return json.loads(data)


_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))  # every digit -> "0", the rest " "
_NINETEEN_DIGITS = b"0" * 19  # 2**63 has 19 digits


def sha256_file(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
