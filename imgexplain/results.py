"""The output folder of a dataset run: the Parquet results table, atomic writes, what imgexplain owns.

``OUT/results.parquet`` is a folder of part files: one per finished image while a run goes on (each
written to a hidden temporary name and renamed into place), merged into one file at the end of the
run. A row is either whole or absent, never twice, whenever the run is killed. ``pandas.read_parquet`` and ``pyarrow.parquet.read_table`` read the folder as one
table (they skip names starting with '.' or '_').

``OUT/imgexplain.json`` (the manifest) records the arguments of the run that wrote the table and the
top-level entries of OUT that imgexplain wrote. imgexplain writes only those entries (and the files
inside the folders among them), refuses to start when an entry it would write exists without being
in the manifest, and never deletes a file it did not write.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Collection, Iterator

from imgexplain._files import TEMPORARY_PREFIX, atomic_write, file_hash, read_limited
from imgexplain._version import __version__

__all__ = ["OutputError", "OutputFolder", "ResultsTable", "atomic_write", "content_hash", "file_hash",
           "fingerprint", "TEMPORARY_PREFIX"]

TABLE_NAME = "results.parquet"
MANIFEST_NAME = "imgexplain.json"
# The file a run holds an OS lock on (fcntl.flock) while it writes in OUT: a second run is refused.
LOCK_NAME = ".imgexplain.lock"
_GENERATOR = "imgexplain"
# Our small JSON files are a few kB; anything much larger was not written by imgexplain.
_JSON_LIMIT = 1 << 24
# Folders that hold no files of users: the kernel's views of processes, devices and drivers.
_SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")

# A compaction's file before it is renamed into place, and its record (both hidden from readers).
STAGED_PREFIX = ".compacting-"
JOURNAL_NAME = "_compaction.json"
# Parts that cannot be read as rows of this table are moved here (hidden from readers by the '_').
QUARANTINE_NAME = "_quarantine"
_TEMPORARY_NAME = re.compile(re.escape(TEMPORARY_PREFIX) + "[0-9a-f]{32}")
_PART_NAME = re.compile(r"(part|compacted)-[0-9]{20}-[0-9a-f]{8}\.parquet")
# Rows read or merged at a time (and rows per row group of a compacted file): a row with a 224x224 map is
# about 200 KB, and decoding nested lists takes a few times that.
BATCH_ROWS = 16

# Columns every row has, whatever the explainer returns.
KEY_COLUMNS = ("image", "content_hash")
logger = logging.getLogger(__name__)


class OutputError(ValueError):
    """OUT cannot be used as it is (a foreign or damaged entry, a link, another run writing): one line to say why."""


def fingerprint(arguments: dict) -> str:
    """A short hash of the arguments that decide the results (JSON, keys sorted)."""
    text = json.dumps(arguments, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:16]


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex (:func:`file_hash` is that of a file).

    Examples
    --------
    >>> from imgexplain.results import content_hash
    >>> content_hash(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


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
        self.fingerprint = fingerprint(self.arguments)
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
        if self.manifest and (folder / TABLE_NAME).exists() and self.manifest["fingerprint"] != self.fingerprint:
            old = self.manifest["arguments"]
            changed = [f"{key} {old.get(key)!r} -> {value!r}" for key, value in self.arguments.items()
                       if old.get(key) != value]
            raise OutputError(
                f"--out: {str(folder / TABLE_NAME)!r} holds results of other arguments "
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
        self.manifest = {"generator": _GENERATOR, "version": __version__, "fingerprint": self.fingerprint,
                         "arguments": self.arguments, "entries": sorted(owned)}
        atomic_write(self.path / MANIFEST_NAME, json.dumps(self.manifest, indent=2))

    def reserve(self, name: str) -> Path:
        """Record the entry ``name`` in the manifest (before it is created); its path in OUT."""
        if name not in self.entries:
            raise ValueError(f"{name!r} is not an entry of this run")
        if name not in self.manifest["entries"]:
            self.manifest["entries"] = sorted(set(self.manifest["entries"]) | {name})
            atomic_write(self.path / MANIFEST_NAME, json.dumps(self.manifest, indent=2))
        return self.path / name

    def subfolder(self, name: str) -> Path:
        """An owned folder inside OUT, created with the user's umask."""
        folder = self.reserve(name)
        folder.mkdir(exist_ok=True)
        return folder

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


class ResultsTable:
    """The rows of a run in ``folder`` (a folder of Parquet parts), appended atomically, read in batches.

    ``schema``: the pyarrow schema of the rows. Rows missing a column get null there. Rows are appended
    as one-row parts (``part-*.parquet``) the moment an image is done; :meth:`compact` merges them into
    one ``compacted-*.parquet`` file, so that the folder does not grow by a file per image. Readers here
    take one part at a time, ``batch_size`` rows at a time: memory is bounded however many rows there are.
    """

    def __init__(self, folder, schema, batch_size: int = BATCH_ROWS):
        self.folder = Path(folder)
        self.schema = schema
        self.batch_size = batch_size
        self._finish_compaction()
        self.quarantined = self._quarantine_unreadable() if schema is not None else []

    def parts(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(path for path in self.folder.glob("*.parquet") if not path.name.startswith((".", "_")))

    def batches(self, columns=None, batch_size: int | None = None) -> Iterator:
        """The rows as pyarrow RecordBatches of at most ``batch_size`` rows (default: the table's), part by part."""
        for part in self.parts():
            yield from _part_batches(part, batch_size or self.batch_size, columns)

    def rows(self, columns=None) -> Iterator[dict]:
        """The rows as dicts, read ``batch_size`` at a time."""
        for batch in self.batches(columns):
            yield from batch.to_pylist()

    def done(self) -> set[tuple[str, str]]:
        """The (image, content hash) of every 'ok' row: what a new run with the same arguments skips."""
        return {(image, digest) for image, (status, digest) in self.keys().items() if status == "ok"}

    def keys(self) -> dict[str, tuple[str, str]]:
        """Each image's (status, content hash), as its last row says."""
        return {row["image"]: (row["status"], row["content_hash"])
                for row in self.rows(list(KEY_COLUMNS) + ["status"])}

    def quarantined_parts(self) -> list[Path]:
        """The parts moved aside as damaged or foreign, by this run or an earlier one."""
        quarantine = self.folder / QUARANTINE_NAME
        return sorted(quarantine.iterdir()) if quarantine.is_dir() and not quarantine.is_symlink() else []

    def _quarantine_unreadable(self) -> list[Path]:
        """Move aside the parts that are not rows of this table (damaged, empty, of another schema).

        Their images have no row any more, so they are explained again. Returns where they went.
        """
        from pyarrow import ArrowException

        moved = []
        for part in self.parts():
            try:
                readable = not part.is_symlink() and _schema(part).equals(self.schema, check_metadata=False)
                if readable:
                    for _ in _part_batches(part, self.batch_size, list(KEY_COLUMNS) + ["status"]):
                        pass
            except (OSError, ValueError, ArrowException) as error:
                logger.debug("%s: %s", part, error)
                readable = False
            if not readable:
                quarantine = self.folder / QUARANTINE_NAME
                quarantine.mkdir(exist_ok=True)
                moved.append(quarantine / f"{_stamp()}-{part.name}")
                os.replace(part, moved[-1])
        if moved:
            logger.warning("imgexplain: %d damaged or foreign part(s) of the results table moved to %s (%s); "
                           "their images are explained again", len(moved), moved[0].parent,
                           ", ".join(path.name for path in moved))
        return moved

    def append(self, rows: list[dict]) -> None:
        """Write ``rows`` as one new part: all of them, or none if interrupted."""
        if rows:
            self.folder.mkdir(exist_ok=True)
            atomic_write(self.folder / f"part-{_stamp()}.parquet", self._parquet(rows))

    def _parquet(self, rows: list[dict]) -> bytes:
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([{name: row.get(name) for name in self.schema.names} for row in rows],
                                     schema=self.schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()

    def compact(self, drop: Collection[str] = ()) -> None:
        """Merge the one-row parts into one file, leaving out every row of the images in ``drop``.

        Interrupted at any moment, the table holds each row once or (until the next run finishes the
        compaction, see :meth:`_finish_compaction`) not at all: never twice.
        """
        import pyarrow.parquet as pq

        drop = set(drop)
        merged = [part for part in self.parts() if part.name.startswith("part-") or self._holds_any_of(part, drop)]
        if not merged or (len(merged) == 1 and not self._holds_any_of(merged[0], drop)):
            return
        name = f"compacted-{_stamp()}.parquet"
        staged = self.folder / f"{STAGED_PREFIX}{name}"
        try:
            # Dictionary encoding only costs memory here: the maps' floats hardly repeat.
            with pq.ParquetWriter(staged, self.schema, use_dictionary=False) as writer:
                for table in self._kept(merged, drop):
                    writer.write_table(table)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        atomic_write(self.folder / JOURNAL_NAME, json.dumps({"name": name, "replaces": [p.name for p in merged]}))
        self._finish_compaction()

    def _kept(self, parts, drop):
        """Tables of about ``batch_size`` rows of ``parts``, without the rows of the images in ``drop``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        dropped = pa.array(sorted(drop), pa.string())
        pending, count = [], 0
        for part in parts:
            for batch in _part_batches(part, self.batch_size):
                if drop:
                    batch = batch.filter(pc.invert(pc.is_in(batch.column("image"), value_set=dropped)))
                pending.append(batch)
                count += batch.num_rows
                if count >= self.batch_size:
                    yield pa.Table.from_batches(pending, self.schema)
                    pending, count = [], 0
        if count:
            yield pa.Table.from_batches(pending, self.schema)

    def _holds_any_of(self, part: Path, drop: set) -> bool:
        return bool(drop) and any(image in drop for batch in _part_batches(part, self.batch_size, ["image"])
                                  for image in batch.column("image").to_pylist())

    def _finish_compaction(self) -> None:
        """Complete a compaction that a killed run left half done, or drop its unfinished file.

        The journal is checked as any input: OutputError unless it names files of this folder only.
        """
        journal = self.folder / JOURNAL_NAME
        record = read_json(journal, "the record of an unfinished merge")
        if record is None:
            for leftover in self.folder.glob(f"{STAGED_PREFIX}*"):
                leftover.unlink(missing_ok=True)
            return
        names = record.get("replaces") if isinstance(record, dict) else None
        if not (isinstance(names, list) and all(isinstance(name, str) and _PART_NAME.fullmatch(name)
                                                for name in names + [record.get("name")])
                and record["name"].startswith("compacted-")
                and not any((self.folder / name).is_symlink() for name in names + [record["name"]])):
            raise OutputError(f"{str(journal)!r} is damaged or was not written by imgexplain (it must name part "
                              "files of this folder only); move it away and run again: the parts it would "
                              "merge are kept")
        for name in names:
            (self.folder / name).unlink(missing_ok=True)
        staged = self.folder / f"{STAGED_PREFIX}{record['name']}"
        if staged.is_file() and not staged.is_symlink():
            os.replace(staged, self.folder / record["name"])
        journal.unlink()


def _schema(part: Path):
    import pyarrow.parquet as pq

    with pq.ParquetFile(part) as file:
        return file.schema_arrow


def _part_batches(part: Path, batch_size: int, columns=None) -> Iterator:
    """The RecordBatches of one Parquet file, ``batch_size`` rows at a time."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(part) as file:
        yield from file.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)


def _stamp() -> str:
    """A file name part that sorts in writing order and never repeats."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
