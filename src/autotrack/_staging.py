"""Pinning a file's content when it is logged, until the writer thread has stored it.

``log_artifact`` returns at once; the file is hashed and copied later, off the training thread.
Meanwhile the caller may delete it (a ``TemporaryDirectory`` ending, a checkpoint rotated out),
so the content is pinned first: a hard link where one can be made on the file's own device (no
bytes copied), else a copy (another device, a filesystem without links). The staging folders
are ours (the temp folder, the spool folder, a local store's root), never the user's, and a
folder goes as soon as its last staged file does, so nothing is left behind.

A hard link pins the file against deletion and replacement (``os.replace``), not against being
rewritten in place: a file truncated and written again before the writer reads it is stored
with its new content (and recorded with that content's sha256, so the record stays true).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

from autotrack import _forksafe

__all__ = ["stage", "reserve", "unstage"]

_PREFIX = ".autotrack-staging-"
_lock = _forksafe.lock()  # a folder is never removed between its creation and a link into it
_by_device: dict[int, str] = {}  # device -> a staging folder of ours on it


def _host() -> str:
    return os.uname().nodename.replace("-", "_") if hasattr(os, "uname") else ""


def _candidates(extra: tuple[str, ...]) -> list[str]:
    from autotrack._spool import spool_dir

    # the host in the name: a store root or a home folder may be shared by several machines
    name = f"{_PREFIX}{_host()}-{os.getpid()}"
    return [os.path.join(base, name) for base in (tempfile.gettempdir(), spool_dir(), *extra)]


def _folder_on(device: int, extra: tuple[str, ...]) -> str | None:
    folder = _by_device.get(device)
    if folder is not None:
        return folder
    for folder in _candidates(extra):
        parent = os.path.dirname(folder)
        try:
            if os.stat(parent).st_dev == device:
                _by_device[device] = folder
                _sweep(parent)
                return folder
        except OSError:
            continue
    return None


def _sweep(parent: str) -> None:
    """Remove the staging folders this machine's processes left when they died without cleaning
    up (SIGKILL): what they pinned was never recorded, or was spooled at exit, so nothing there
    is needed. Another machine's folders (a shared store) are never touched."""
    if os.name != "posix":
        return
    mine = f"{_PREFIX}{_host()}-"
    try:
        listing = os.listdir(parent)
    except OSError:
        return
    names = [n for n in listing if n.startswith(mine)]
    for name in names:
        pid = name[len(mine):]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    if parent == tempfile.gettempdir():  # the empty folders autotrack 0.1 left behind
        for name in listing:
            if name.startswith("autotrack-staging-") and name[18:].isdigit() and not _alive(int(name[18:])):
                _remove_if_empty(os.path.join(parent, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def stage(path: str, *own_folders: str) -> tuple[str, bool]:
    """``(path to read the pinned content from, whether it is ours to remove)``.

    ``own_folders``: more places of ours where a staging folder may go (a local store's root).
    Falls back to the original path, not ours, only when neither a link nor a copy can be made.
    """
    name = uuid.uuid4().hex
    with _lock:
        try:
            folder = _folder_on(os.stat(path).st_dev, own_folders)
            if folder is not None:
                os.makedirs(folder, exist_ok=True)
                target = os.path.join(folder, name)
                os.link(path, target)
                return target, True
        except OSError:
            pass
        try:
            folder = _candidates(())[0]
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, name)
            shutil.copyfile(path, target)
            return target, True
        except OSError:
            _remove_if_empty(folder)
            return path, False


def reserve() -> str:
    """A new, empty file in a staging folder of ours (the temporary folder's), for content the
    writer thread makes itself (``Run._log_made``); ``unstage`` it as a staged file. Made here,
    under the lock: a path alone left the folder empty, and another run's ``unstage`` removed it
    before the file was written."""
    with _lock:
        folder = _candidates(())[0]
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, uuid.uuid4().hex)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return path


def unstage(path: str) -> None:
    """Remove a staged file, and its folder once empty."""
    with _lock:
        try:
            os.unlink(path)
        except OSError:
            pass
        _remove_if_empty(os.path.dirname(path))


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)  # fails, harmlessly, while other staged files are in it
    except OSError:
        pass
