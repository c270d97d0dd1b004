"""Whether two model files hold the same weights when their bytes differ.

Some formats write the moment of saving into the file: a ``.keras`` archive's ``metadata.json``
has ``date_saved`` (and its ``config.json`` the ``id()`` of shared objects), a ``torch.save``
archive a random ``.data/serialization_id``. Two replays of
one training then differ in bytes and not in anything they compute. Both formats are zip
archives: comparing every member but those is comparing the weights, without importing a
framework. Any other format whose bytes differ is reported as differing.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

__all__ = ["VOLATILE_MEMBERS", "same_weights"]

# zip members that record when or by which process a file was saved, not what it holds
VOLATILE_MEMBERS = ("metadata.json", ".data/serialization_id")
# in a .keras config: the id() of a shared object in the saving process, different every time
_OBJECT_ID = re.compile(rb'"shared_object_id": \d+')


def _members(data: bytes) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {info.filename: _OBJECT_ID.sub(b"", archive.read(info)) if info.filename.endswith(".json")
                    else archive.read(info) for info in archive.infolist()
                    if not info.filename.endswith(VOLATILE_MEMBERS)}
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def same_weights(a: Any, b: Any) -> bool:
    """``a``, ``b``: artifact records (``.open()``); True when both are zip archives with the same
    members, byte for byte, but for ``VOLATILE_MEMBERS`` and object ids in JSON members."""
    try:
        with a.open() as fa, b.open() as fb:
            ma, mb = _members(fa.read()), _members(fb.read())
    except Exception:  # noqa: BLE001 - bytes released or unreadable: not provably the same
        return False
    return ma is not None and mb is not None and ma == mb
