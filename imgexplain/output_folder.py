"""OUT, the output folder of a dataset run: what imgexplain owns in it, its manifest, and its lock.

``OUT/imgexplain.json`` (the manifest) records the arguments of the run that wrote the table, its schema
version (:mod:`imgexplain.schema`: a table of another version is refused with one line) and the
top-level entries of OUT that imgexplain made (each recorded just before it is created). imgexplain writes
only its entries (and the files inside the folders among them), refuses to start when an entry it would
write exists without being in the manifest or is a symbolic link, and never deletes a file it did not
write. A run holds an OS lock on ``OUT/.imgexplain.lock``: a second run on the same OUT is refused.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from imgexplain._files import TEMPORARY_PREFIX, atomic_write, read_limited
from imgexplain._version import __version__
from imgexplain.schema import SCHEMA_VERSION, VERSION_KEY, check_version

TABLE_NAME = "results.parquet"
MANIFEST_NAME = "imgexplain.json"
# The file a run holds an OS lock on (fcntl.flock) while it writes in OUT: a second run is refused.
LOCK_NAME = ".imgexplain.lock"
_GENERATOR = "imgexplain"
# Our small JSON files are a few kB; anything much larger was not written by imgexplain.
_JSON_LIMIT = 1 << 24
# Folders that hold no files of users: the kernel's views of processes, devices and drivers.
_SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
_TEMPORARY_NAME = re.compile(re.escape(TEMPORARY_PREFIX) + "[0-9a-f]{32}")


class OutputError(ValueError):
    """OUT cannot be used as it is (a foreign or damaged entry, a link, another run writing): one line to say why."""


def fingerprint(arguments: dict) -> str:
    """A short hash of the arguments that decide the results (JSON, keys sorted)."""
    text = json.dumps(arguments, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def read_json(path: Path, what: str):
    """The JSON value in our file ``path`` (None if there is none); OutputError if it is a link or damaged."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink():
        raise OutputError(f"{str(path)!r} is a symbolic link; imgexplain never follows links in OUT: remove it")
    try:
        return json.loads(read_limited(path, _JSON_LIMIT))
    except (OSError, ValueError) as error:
        raise OutputError(f"{str(path)!r} ({what}) cannot be read: {error}; move it away") from None


class OutputFolder:
    """OUT as imgexplain uses it: checked on creation, nothing written until :meth:`claim`.

    While claimed, the folder holds an OS lock (:data:`LOCK_NAME`): a second run on it is refused until
    :meth:`close` (or the end of the process).
    """

    def __init__(self, folder, entries, arguments: dict):
        """``entries``: the top-level names the run may write; ``arguments``: what decides the results."""
        self._lock = None
        if not os.fspath(folder):
            raise OutputError("--out: an empty path names no folder; give the output folder")
        self.path = Path(folder)
        self.arguments = {key: arguments[key] for key in sorted(arguments)}
        self.fingerprint = fingerprint({"arguments": self.arguments, VERSION_KEY: SCHEMA_VERSION})
        self.entries = sorted(set(entries) | {TABLE_NAME, MANIFEST_NAME, LOCK_NAME})
        self.manifest = self._read_manifest()
        self._check()

    def _read_manifest(self) -> dict | None:
        path = self.path / MANIFEST_NAME
        manifest = read_json(path, "imgexplain's record of what it wrote") if self.path.is_dir() else None
        if not isinstance(manifest, dict) or manifest.get("generator") != _GENERATOR:
            return None  # not ours: the name is then a foreign entry, refused by _check
        entries, arguments = manifest.get("entries"), manifest.get("arguments")
        if not (isinstance(entries, list) and all(isinstance(name, str) and name and "/" not in name
                                                  and name not in (".", "..") for name in entries)
                and isinstance(manifest.get("fingerprint"), str) and isinstance(arguments, dict)):
            raise OutputError(f"--out: {str(path)!r} is damaged (its entries, fingerprint or arguments are "
                              "missing or of the wrong type); move it away, or choose another folder")
        return manifest

    def _owned(self) -> set[str]:
        """The entries the manifest records that are there (one recorded but absent is no longer ours)."""
        entries = self.manifest["entries"] if self.manifest else ()
        return {name for name in entries if os.path.lexists(self.path / name)}

    def _check(self) -> None:
        folder = self.path
        _check_not_system(folder)
        if not folder.exists():
            _check_can_create(folder)
            return
        if not folder.is_dir():
            raise OutputError(f"--out: expected a folder, got the file {str(folder)!r}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"--out: no permission to write in {str(folder)!r}")
        owned = self._owned()
        for name in sorted(set(self.entries) | owned):
            path = folder / name
            if path.is_symlink():
                raise OutputError(f"--out: {str(path)!r} is a symbolic link; imgexplain never follows links out "
                                  "of OUT: remove the link, or choose another folder")
            if name in self.entries and os.path.lexists(path) and name not in owned:
                raise OutputError(f"--out: {str(path)!r} was not written by imgexplain and would be "
                                  "overwritten; choose another folder")
        table = folder / TABLE_NAME
        if self.manifest and table.exists():
            check_version(self.manifest, table)  # before the arguments: a changed schema says so
            if self.manifest["fingerprint"] != self.fingerprint:
                old = self.manifest["arguments"]
                changed = [f"{key} {old.get(key)!r} -> {value!r}" for key, value in self.arguments.items()
                           if old.get(key) != value]
                raise OutputError(
                    f"--out: {str(table)!r} holds results of other arguments "
                    f"({'; '.join(changed) or 'another version'}); rows of two runs are never mixed: choose "
                    "another folder, or move that table away to start over")
        if (folder / LOCK_NAME).is_file():
            self._take_lock()

    def _take_lock(self) -> None:
        """Hold the OS lock on OUT's lock file (created if need be); OutputError if another run holds it."""
        if self._lock is not None:
            return
        descriptor = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise OutputError(f"--out: another imgexplain run is writing in {str(self.path)!r}; wait for it to "
                              "finish, or choose another folder") from None
        self._lock = descriptor

    def close(self) -> None:
        """Release the lock on OUT (also done when the process ends)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        self.close()

    def holding(self, stream):
        """``stream``, this folder released when it ends or is closed."""
        with self:
            yield from stream

    def claim(self) -> None:
        """Create OUT (with the user's umask), lock it and record the run's arguments in the manifest.

        The manifest records an entry just before the run creates it (:meth:`reserve`): an entry it
        records is one that imgexplain made.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        owned = self._owned() | {MANIFEST_NAME, LOCK_NAME}
        for name in owned:  # a killed run's temporary files, in folders that are ours as a whole
            if (self.path / name).is_dir() and not (self.path / name).is_symlink():
                for leftover in (self.path / name).glob(f"{TEMPORARY_PREFIX}*"):
                    if _TEMPORARY_NAME.fullmatch(leftover.name) and leftover.is_file():
                        leftover.unlink(missing_ok=True)
        self.manifest = {"generator": _GENERATOR, "version": __version__, VERSION_KEY: SCHEMA_VERSION,
                         "fingerprint": self.fingerprint, "arguments": self.arguments, "entries": sorted(owned)}
        atomic_write(self.path / MANIFEST_NAME, json.dumps(self.manifest, indent=2))

    def reserve(self, name: str) -> Path:
        """Record the entry ``name`` in the manifest (before it is created); its path in OUT."""
        if name not in self.entries:
            raise ValueError(f"{name!r} is not an entry of this run")
        if name not in self.manifest["entries"]:
            self.manifest["entries"] = sorted(set(self.manifest["entries"]) | {name})
            atomic_write(self.path / MANIFEST_NAME, json.dumps(self.manifest, indent=2))
        return self.path / name

    def remove_written(self, paths) -> list[str]:
        """Delete files that rows named (``paths`` relative to OUT): only regular files inside a folder that
        the manifest records (not the table), reached without a link or ``..``; the paths deleted."""
        folders = self._owned() - {TABLE_NAME, MANIFEST_NAME, LOCK_NAME}
        root = os.path.realpath(self.path)
        removed = []
        for path in sorted(paths):
            parts = PurePosixPath(path).parts
            if (len(parts) < 2 or parts[0] not in folders or PurePosixPath(path).is_absolute()
                    or any(part in (".", "..") for part in parts)):
                continue
            target = self.path.joinpath(*parts)
            try:
                if (os.path.realpath(target.parent) == os.path.join(root, *parts[:-1])
                        and stat.S_ISREG(os.lstat(target).st_mode)):
                    target.unlink()
                    removed.append(path)
            except (OSError, ValueError):  # gone, not under a folder, or no file name (a NUL byte)
                continue
        return removed

    def owns(self, path) -> bool:
        """Whether ``path`` lies in an entry of OUT that imgexplain writes (so it is never an input)."""
        try:
            relative = Path(path).absolute().relative_to(self.path.absolute())
        except ValueError:
            return False
        return bool(relative.parts) and relative.parts[0] in self.entries


def _check_not_system(folder: Path) -> None:
    resolved = os.path.realpath(folder)
    for system in _SYSTEM_FOLDERS:
        if resolved == system or resolved.startswith(system + os.sep):
            raise OutputError(f"--out: {str(folder)!r} is in {system}, a folder of the system, not for files")


def _check_can_create(folder: Path) -> None:
    """Raise OutputError unless the nearest existing ancestor of ``folder`` is a folder we may write in."""
    ancestor = folder.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"--out: cannot create {str(folder)!r}: {str(ancestor)!r} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"--out: cannot create {str(folder)!r}: no permission to write in {str(ancestor)!r}")
