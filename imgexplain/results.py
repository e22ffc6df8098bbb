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

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Collection, Iterator

from imgexplain._version import __version__

TABLE_NAME = "results.parquet"
MANIFEST_NAME = "imgexplain.json"
TEMPORARY_PREFIX = ".imgexplain-"
_GENERATOR = "imgexplain"

# A compaction's file before it is renamed into place, and its record (both hidden from readers).
STAGED_PREFIX = ".compacting-"
JOURNAL_NAME = "_compaction.json"
# Rows read or merged at a time (and rows per row group of a compacted file): a row with a 224x224 map is
# about 200 KB, and decoding nested lists takes a few times that.
BATCH_ROWS = 16

# Columns every row has, whatever the explainer returns.
KEY_COLUMNS = ("image", "content_hash")


def fingerprint(arguments: dict) -> str:
    """A short hash of the arguments that decide the results (JSON, keys sorted)."""
    text = json.dumps(arguments, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex (:func:`file_hash` is that of a file).

    Examples
    --------
    >>> from imgexplain.results import content_hash
    >>> content_hash(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path, data) -> None:
    """Write ``path`` through a temporary file in the same folder renamed over it: old or new, never half.

    ``data``: bytes, a str, or an iterable of str written one after the other (a page made as it is written).
    """
    path = Path(path)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        with open(temporary, "wb") as file:
            for piece in [data] if isinstance(data, (bytes, str)) else data:
                file.write(piece.encode() if isinstance(piece, str) else piece)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_temporaries(folder) -> None:
    """Remove the temporary files a killed run left in ``folder`` (only ours, by their prefix)."""
    for leftover in Path(folder).glob(f"{TEMPORARY_PREFIX}*"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


class OutputFolder:
    """OUT as imgexplain uses it: checked on creation, nothing written until :meth:`claim`."""

    def __init__(self, folder, entries, arguments: dict):
        """``entries``: the top-level names the run will write; ``arguments``: what decides the results."""
        self.path = Path(folder)
        self.arguments = {key: arguments[key] for key in sorted(arguments)}
        self.fingerprint = fingerprint(self.arguments)
        self.entries = sorted(set(entries) | {TABLE_NAME, MANIFEST_NAME})
        self.manifest = self._read_manifest()
        self._check()

    def _read_manifest(self) -> dict | None:
        try:
            manifest = json.loads((self.path / MANIFEST_NAME).read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) and manifest.get("generator") == _GENERATOR else None

    def _check(self) -> None:
        folder = self.path
        if not folder.exists():
            _check_can_create(folder)
            return
        if not folder.is_dir():
            raise ValueError(f"--out: expected a folder, got the file {str(folder)!r}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"--out: no permission to write in {str(folder)!r}")
        owned = set(self.manifest["entries"]) if self.manifest else set()
        foreign = [name for name in self.entries if (folder / name).exists() and name not in owned]
        if foreign:
            raise ValueError(f"--out: {str(folder / foreign[0])!r} was not written by imgexplain and would be "
                             "overwritten; choose another folder")
        if self.manifest and (folder / TABLE_NAME).exists() and self.manifest["fingerprint"] != self.fingerprint:
            old = self.manifest.get("arguments", {})
            changed = [f"{key} {old.get(key)!r} -> {value!r}" for key, value in self.arguments.items()
                       if old.get(key) != value]
            raise ValueError(
                f"--out: {str(folder / TABLE_NAME)!r} holds results of other arguments "
                f"({'; '.join(changed) or 'another version'}); rows of two runs are never mixed: choose "
                "another folder, or move that table away to start over")

    def claim(self) -> None:
        """Create OUT (with the user's umask) and record the run's entries and arguments in the manifest."""
        self.path.mkdir(parents=True, exist_ok=True)
        for folder in [self.path] + [self.path / name for name in self.entries if (self.path / name).is_dir()]:
            remove_temporaries(folder)
        owned = set(self.manifest["entries"]) if self.manifest else set()
        self.manifest = {"generator": _GENERATOR, "version": __version__, "fingerprint": self.fingerprint,
                         "arguments": self.arguments, "entries": sorted(owned | set(self.entries))}
        atomic_write(self.path / MANIFEST_NAME, json.dumps(self.manifest, indent=2))

    def subfolder(self, name: str) -> Path:
        """An owned folder inside OUT, created with the user's umask."""
        if name not in self.entries:
            raise ValueError(f"{name!r} is not an entry of this run")
        folder = self.path / name
        folder.mkdir(exist_ok=True)
        return folder

    def owns(self, path) -> bool:
        """Whether ``path`` lies in an entry of OUT that imgexplain writes (so it is never an input)."""
        try:
            relative = Path(path).absolute().relative_to(self.path.absolute())
        except ValueError:
            return False
        return bool(relative.parts) and relative.parts[0] in self.entries


def _check_can_create(folder: Path) -> None:
    """Raise ValueError unless the nearest existing ancestor of ``folder`` is a folder we may write in."""
    ancestor = folder.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"--out: cannot create {str(folder)!r}: {str(ancestor)!r} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot create {str(folder)!r}: no permission to write in {str(ancestor)!r}")


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
        return {(row["image"], row["content_hash"]) for row in self.rows(list(KEY_COLUMNS) + ["status"])
                if row["status"] == "ok"}

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

    def compact(self, retry: Collection[str] = ()) -> None:
        """Merge the one-row parts into one file, leaving out the error rows of the images in ``retry``.

        Interrupted at any moment, the table holds each row once or (until the next run finishes the
        compaction, see :meth:`_finish_compaction`) not at all: never twice.
        """
        import pyarrow.parquet as pq

        retry = set(retry)
        merged = [part for part in self.parts() if part.name.startswith("part-") or self._has_errors_of(part, retry)]
        if not merged or (len(merged) == 1 and not self._has_errors_of(merged[0], retry)):
            return
        name = f"compacted-{_stamp()}.parquet"
        staged = self.folder / f"{STAGED_PREFIX}{name}"
        try:
            # Dictionary encoding only costs memory here: the maps' floats hardly repeat.
            with pq.ParquetWriter(staged, self.schema, use_dictionary=False) as writer:
                for table in self._kept(merged, retry):
                    writer.write_table(table)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        atomic_write(self.folder / JOURNAL_NAME, json.dumps({"name": name, "replaces": [p.name for p in merged]}))
        self._finish_compaction()

    def _kept(self, parts, retry):
        """Tables of about ``batch_size`` rows of ``parts``, without the error rows of ``retry``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        redone = pa.array(sorted(retry), pa.string())
        pending, count = [], 0
        for part in parts:
            for batch in _part_batches(part, self.batch_size):
                if retry:
                    redo = pc.and_(pc.equal(batch.column("status"), "error"),
                                   pc.is_in(batch.column("image"), value_set=redone))
                    batch = batch.filter(pc.invert(pc.fill_null(redo, False)))
                pending.append(batch)
                count += batch.num_rows
                if count >= self.batch_size:
                    yield pa.Table.from_batches(pending, self.schema)
                    pending, count = [], 0
        if count:
            yield pa.Table.from_batches(pending, self.schema)

    def _has_errors_of(self, part: Path, retry: set) -> bool:
        return bool(retry) and any(row["status"] == "error" and row["image"] in retry
                                   for batch in _part_batches(part, self.batch_size, ["image", "status"])
                                   for row in batch.to_pylist())

    def _finish_compaction(self) -> None:
        """Complete a compaction that a killed run left half done, or drop its unfinished file."""
        journal = self.folder / JOURNAL_NAME
        try:
            record = json.loads(journal.read_text())
        except (OSError, ValueError):
            for leftover in self.folder.glob(f"{STAGED_PREFIX}*"):
                leftover.unlink(missing_ok=True)
            journal.unlink(missing_ok=True)
            return
        for name in record["replaces"]:
            (self.folder / name).unlink(missing_ok=True)
        staged = self.folder / f"{STAGED_PREFIX}{record['name']}"
        if staged.exists():
            os.replace(staged, self.folder / record["name"])
        journal.unlink()


def _part_batches(part: Path, batch_size: int, columns=None) -> Iterator:
    """The RecordBatches of one Parquet file, ``batch_size`` rows at a time."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(part) as file:
        yield from file.iter_batches(batch_size=batch_size, columns=columns, use_threads=False)


def _stamp() -> str:
    """A file name part that sorts in writing order and never repeats."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
