"""Writing a file the user asked for: ``autotrack get -o``, ``autotrack report -o``, ``.download()``.

One set of rules for all three, so none of them surprises a user differently:

* ``dest`` may be a folder (an existing one, or a new one said with a trailing ``/``): the file
  goes in it under its usual name. Missing folders on the way are made.
* The bytes go to a hidden file beside the target and take its name only once complete, so a
  failure (a full disk, bytes that do not match their sha256, Ctrl-C) leaves neither half a file
  nor the hidden one. It is created as any program's new file is: mode 0666 less the umask, not
  the 0600 of a ``mkstemp`` file.
* An existing file is replaced only when the caller allows it; refusing is atomic where the
  filesystem has hard links (no check-then-write race).
* Errors name the user's path, never the hidden file.
"""

from __future__ import annotations

import os
import secrets
from typing import Iterable

__all__ = ["OutputExistsError", "output_path", "write_file"]


class OutputExistsError(FileExistsError):
    """The target exists and the caller did not allow replacing it (``path``: the target)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)  # no errno/filename: they would replace the message in str()
        self.path = path


def output_path(dest: str | os.PathLike[str], name: str) -> str:
    """``dest``, or ``dest/name`` when ``dest`` is a folder (existing, or ending in a separator)."""
    dest = os.fspath(dest)
    if dest.endswith(os.sep) or (os.altsep and dest.endswith(os.altsep)) or os.path.isdir(dest):
        return os.path.join(dest, name)
    return dest


def _cannot(dest: str, exc: OSError, what: str = "") -> OSError:
    """The same kind of error, saying which of the user's files could not be written and why."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    kind = OSError if isinstance(exc, FileExistsError) else type(exc)  # FileExistsError means "refused"
    return kind(f"cannot write {dest}: {what + ': ' if what else ''}{reason}")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _place(tmp: str, dest: str, overwrite: bool) -> None:
    """Give the complete hidden file the target's name."""
    if overwrite:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)  # fails if dest exists: no window for another writer
    except FileExistsError:
        raise OutputExistsError(f"{dest} already exists", dest) from None
    except OSError:  # no hard links here (some network and FAT filesystems)
        if os.path.lexists(dest):
            raise OutputExistsError(f"{dest} already exists", dest) from None
        os.replace(tmp, dest)
        return
    _unlink(tmp)


def write_file(dest: str, chunks: Iterable[bytes], *, overwrite: bool = True) -> str:
    """Write ``chunks`` to ``dest`` whole or not at all (see the module docstring); returns ``dest``.

    An error while *producing* the chunks (reading the store, a failed sha256 check) propagates as
    it is; an error writing is an ``OSError`` of the same kind naming ``dest``. Without
    ``overwrite`` an existing ``dest`` raises ``OutputExistsError`` (a ``FileExistsError``).
    """
    dest = os.fspath(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise _cannot(dest, exc, f"cannot make the folder {folder}") from None
    if os.path.isdir(dest):
        raise IsADirectoryError(f"cannot write {dest}: a folder of that name is in the way")
    if not overwrite and os.path.lexists(dest):
        raise OutputExistsError(f"{dest} already exists", dest)
    stem = os.path.basename(dest)[:100]
    while True:
        tmp = os.path.join(folder, f".{stem}.{secrets.token_hex(4)}.part")
        try:  # os.open, not mkstemp: the new file gets the usual mode (0666 less the umask)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise _cannot(dest, exc) from None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _cannot(dest, exc) from None
            try:
                out.flush()
            except OSError as exc:
                raise _cannot(dest, exc) from None
        try:
            _place(tmp, dest, overwrite)
        except OutputExistsError:
            raise
        except OSError as exc:
            raise _cannot(dest, exc) from None
    except BaseException:
        _unlink(tmp)
        raise
    return dest
