"""The Parquet results table of a dataset run (``OUT/results.parquet``); OUT itself is :mod:`imgexplain.output_folder`.

``OUT/results.parquet`` is a folder of part files: one per finished image while a run goes on (each
written to a hidden temporary name and renamed into place), merged into one file at the end of the
run. A row is either whole or absent, never twice, whenever the run is killed. ``pandas.read_parquet``
and ``pyarrow.parquet.read_table`` read the folder as one table (they skip names starting with '.' or
'_'). Parts that cannot be read as rows of the table are moved to ``_quarantine/``, never deleted.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Callable, Collection, Iterator

from imgexplain._files import TEMPORARY_PREFIX, atomic_write, file_hash
from imgexplain.output_folder import (LOCK_NAME, MANIFEST_NAME, TABLE_NAME, OutputError, OutputFolder, fingerprint,
                                      read_json)
from imgexplain.schema import FILES_COLUMN, KEY_COLUMNS

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "OutputError", "OutputFolder", "ResultsTable", "TABLE_NAME",
           "TEMPORARY_PREFIX", "atomic_write", "content_hash", "file_hash", "fingerprint"]


# A compaction's file before it is renamed into place, and its record (both hidden from readers).
STAGED_PREFIX = ".compacting-"
JOURNAL_NAME = "_compaction.json"
# Parts that cannot be read as rows of this table are moved here (hidden from readers by the '_').
QUARANTINE_NAME = "_quarantine"
_PART_NAME = re.compile(r"(part|compacted)-[0-9]{20}-[0-9a-f]{8}\.parquet")
# Rows read or merged at a time (and rows per row group of a compacted file): a row with a 224x224 map is
# about 200 KB, and decoding nested lists takes a few times that.
BATCH_ROWS = 16
logger = logging.getLogger(__name__)


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex (:func:`file_hash` is that of a file).

    Examples
    --------
    >>> from imgexplain.results import content_hash
    >>> content_hash(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


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

    def named_files(self, images: Collection[str] | None = None) -> set[str]:
        """The files (paths relative to OUT) that the rows of ``images`` (default: every row) name in
        :data:`FILES_COLUMN`; none when the rows have no such column of entries with a ``path``."""
        import pyarrow as pa

        if self.schema is None or FILES_COLUMN not in self.schema.names:
            return set()
        kind = self.schema.field(FILES_COLUMN).type
        if not (pa.types.is_list(kind) and pa.types.is_struct(kind.value_type)
                and kind.value_type.get_field_index("path") >= 0):
            return set()
        named = set()
        for batch in self.batches(["image", FILES_COLUMN]):
            for image, entries in zip(batch.column("image").to_pylist(), batch.column(FILES_COLUMN).to_pylist()):
                if images is None or image in images:
                    named.update(entry["path"] for entry in entries or () if entry and entry["path"])
        return named

    def drop(self, images: Collection[str], remove_files: Callable[[set[str]], object]) -> None:
        """Remove every row of ``images`` (see :meth:`compact`), then call ``remove_files`` with the files that
        those rows named and that no row left names (two images of the same name and content share pictures)."""
        named = self.named_files(images) if images else set()
        self.compact(drop=images)
        if named:
            remove_files(named - self.named_files())

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
