"""Reading and writing files safely: regular files only, bounded reads, atomic writes, printable names.

A FIFO or a device named like an image (``x.png``, a link to ``/dev/zero``) would block or never end a
read: :func:`open_regular` opens without blocking and refuses anything that is not a regular file.
File names that are not valid UTF-8 reach Python as surrogates; :func:`printable` turns them into text
that can be stored and shown.
"""
from __future__ import annotations

import hashlib
import os
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

# Temporary files of atomic writes: a name no one else chooses (a random 128-bit id), deleted only by the
# process that made it.
TEMPORARY_PREFIX = ".imgexplain-tmp-"


class NotRegularFileError(OSError):
    """The path names a folder, a FIFO, a socket or a device: something that is not a regular file."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading in binary mode, refusing anything but a regular file (without blocking).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    file object

    Raises
    ------
    NotRegularFileError
        A folder, FIFO, socket or device (an OSError).
    OSError
        The file cannot be opened.

    Examples
    --------
    >>> import os, tempfile
    >>> from imgexplain._files import open_regular
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     fifo = os.path.join(folder, "x.png")
    ...     os.mkfifo(fifo)
    ...     open_regular(fifo)
    Traceback (most recent call last):
    ...
    imgexplain._files.NotRegularFileError: not a regular file (a FIFO): '.../x.png'
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"not a regular file ({_kind(mode)}): {printable(os.fspath(path))!r}")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file ``path``; ValueError if it holds more than ``limit`` bytes."""
    with open_regular(path) as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{printable(os.fspath(path))!r} is larger than {limit:,} bytes")
    return data


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a regular file's bytes, read in chunks (NotRegularFileError for anything else)."""
    digest = hashlib.sha256()
    with open_regular(path) as file:
        for block in iter(lambda: file.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def printable(text: str) -> str:
    """``text`` as valid Unicode: the bytes of a file name that is not UTF-8 written as ``\\xff`` escapes.

    Examples
    --------
    >>> import os
    >>> from imgexplain._files import printable
    >>> printable(os.fsdecode(b"caf\\xe9.png"))
    'caf\\\\xe9.png'
    >>> printable("café.png")
    'café.png'
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def atomic_write(path, data) -> None:
    """Write ``path`` through a temporary file in the same folder renamed over it: old or new, never half.

    ``data``: bytes, a str, or an iterable of str or bytes written one after the other (a page made as it
    is written). The temporary file is removed if the write fails or is interrupted (SIGKILL aside); a
    link at ``path`` is replaced, never followed.
    """
    path = Path(path)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}")
    file = open(temporary, "xb")  # fails rather than take over a file that is there
    try:
        with file:
            for piece in [data] if isinstance(data, (bytes, str)) else data:
                file.write(piece.encode("utf-8", "backslashreplace") if isinstance(piece, str) else piece)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
