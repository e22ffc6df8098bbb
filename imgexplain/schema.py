"""The results table's columns, written once: their names, Arrow types and meanings, and the schema's version.

A row of ``OUT/results.parquet`` holds the run's columns (:data:`RUN_COLUMNS`, whatever the explainer),
then the explainer's. The command line's explainer writes :data:`IMAGE_COLUMNS`, a map column per CAM
method (:func:`map_column`), :data:`PICTURE_COLUMNS` and a ``seconds_METHOD`` column per method
(:func:`row_schema`). pyarrow is imported only when a schema is made.

:data:`SCHEMA_VERSION` is recorded in OUT's manifest and in the run's fingerprint: an OUT written with
another version (or before versions were recorded) is refused by :func:`check_version` with one line,
before any model is loaded, instead of failing inside pyarrow on rows of two shapes.

A new column: one entry here with its meaning, :data:`SCHEMA_VERSION` raised by one, and its value in
the explainer's row (``tests/test_schema.py`` checks that every column is described).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Column", "FILES_COLUMN", "IMAGE_COLUMNS", "KEY_COLUMNS", "PICTURE_COLUMNS", "REPORT_COLUMNS", "RUN_COLUMNS",
           "SCHEMA_VERSION", "SchemaVersionError", "check_version", "map_column", "row_schema", "table_schema",
           "timed_method", "timing_column"]

# Raise by one whenever a column is added, removed, renamed or changes type.
SCHEMA_VERSION = 1
# The manifest's key for it (``OUT/imgexplain.json``).
VERSION_KEY = "schema version"
TIMING_PREFIX = "seconds_"


@dataclass(frozen=True)
class Column:
    """One column of the results table: its ``name``, ``arrow_type(pyarrow)`` and what it holds."""

    name: str
    arrow_type: Callable
    meaning: str

    def field(self):
        import pyarrow as pa

        return pa.field(self.name, self.arrow_type(pa))


def _string(pa):
    return pa.string()


def _int(pa):
    return pa.int64()


def _float(pa):
    return pa.float64()


def _top(pa):
    return pa.list_(pa.struct([("index", pa.int64()), ("label", pa.string()), ("p", pa.float64())]))


def _pictures(pa):
    return pa.list_(pa.struct([("path", pa.string()), ("title", pa.string()), ("caption", pa.string()),
                               ("colormap", pa.string())]))


def _map(pa):
    return pa.list_(pa.list_(pa.float32()))


RUN_COLUMNS = (
    Column("image", _string, "the image's name: its file's absolute path, or the name given with an array"),
    Column("content_hash", _string, "SHA-256 of the file (or of the array): a changed image is explained again"),
    Column("index", _int, "the image's position in this run's input"),
    Column("status", _string, "'ok', or 'error' when the image could not be explained"),
    Column("error_type", _string, "the exception's type, on error"),
    Column("error", _string, "the exception's message, on error"),
    Column("seconds", _float, "time spent on the image"),
    Column("fingerprint", _string, "hash of the arguments and schema version that wrote the row"),
)
# The columns that identify an image's row.
KEY_COLUMNS = ("image", "content_hash")
# The files a row names in OUT (paths relative to OUT): the ``path`` of each entry of this column.
FILES_COLUMN = "pictures"

IMAGE_COLUMNS = (
    Column("target", _int, "the class explained"),
    Column("label", _string, "the explained class's name"),
    Column("predicted", _int, "the class the model predicted"),
    Column("top5", _top, "the top classes, best first: index, label and probability p"),
    Column("anchor", lambda pa: pa.list_(pa.int64()), "superpixel ids of the anchor, in the order added"),
    Column("precision", _float, "the anchor's precision"),
    Column("coverage", _float, "the anchor's coverage"),
    Column("num_preds", _int, "images the model saw during the anchor search"),
    Column("anchor_found", lambda pa: pa.bool_(), "False when no anchor reached the threshold (the best is kept)"),
)
PICTURE_COLUMNS = (
    Column("layer", _string, "the layer the class activation maps come from"),
    Column(FILES_COLUMN, _pictures, "the image's pictures in OUT: path, title, caption, colormap of a heatmap"),
)
# The columns the report reads: every one but the hashes and the maps (those stay in the table).
REPORT_COLUMNS = tuple(column.name for column in RUN_COLUMNS + IMAGE_COLUMNS + PICTURE_COLUMNS
                       if column.name not in ("content_hash", "fingerprint"))


def map_column(method: str) -> Column:
    """The column of a CAM method's map: (h, w) floats in [0, 1] at the layer's resolution."""
    return Column(method, _map, f"the {method} map, rows of floats in [0, 1] at the layer's resolution")


def timing_column(method: str) -> Column:
    """The column of the time a method took on the image (the method's name after ``seconds_``)."""
    return Column(f"{TIMING_PREFIX}{method}", _float, f"time {method} took on the image")


def timed_method(name: str) -> str | None:
    """The method whose time the column ``name`` holds; None for any other column.

    Examples
    --------
    >>> from imgexplain.schema import timed_method
    >>> timed_method("seconds_gradcam"), timed_method("seconds")
    ('gradcam', None)
    """
    return name[len(TIMING_PREFIX):] if name.startswith(TIMING_PREFIX) else None


def row_schema(methods):
    """The pyarrow schema of the command line explainer's rows for ``methods`` ('anchor' and CAM methods).

    Examples
    --------
    >>> from imgexplain.schema import row_schema
    >>> row_schema(["anchor", "gradcam"]).names[-4:]
    ['layer', 'pictures', 'seconds_anchor', 'seconds_gradcam']
    """
    import pyarrow as pa

    columns = IMAGE_COLUMNS + tuple(map_column(method) for method in methods if method != "anchor")
    columns += PICTURE_COLUMNS + tuple(timing_column(method) for method in methods)
    return pa.schema([column.field() for column in columns])


def table_schema(schema):
    """The results table's schema: :data:`RUN_COLUMNS`, then the explainer's columns (``schema``) not among them.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from imgexplain.schema import table_schema
    >>> table_schema(pa.schema([("mean", pa.float64()), ("status", pa.string())])).names[-2:]
    ['fingerprint', 'mean']
    """
    import pyarrow as pa

    fixed = {column.name: column.field() for column in RUN_COLUMNS}
    return pa.schema(list(fixed.values()) + [field for field in schema if field.name not in fixed])


class SchemaVersionError(ValueError):
    """OUT's table was written with another schema version: rerun into a new OUT."""


def check_version(manifest: dict, table) -> None:
    """SchemaVersionError unless ``manifest`` (OUT's, as read) records :data:`SCHEMA_VERSION` for ``table``.

    Examples
    --------
    >>> from imgexplain.schema import SCHEMA_VERSION, check_version
    >>> check_version({"schema version": SCHEMA_VERSION}, "OUT/results.parquet")
    >>> check_version({"version": "0.9.0"}, "OUT/results.parquet")
    Traceback (most recent call last):
    ...
    imgexplain.schema.SchemaVersionError: --out: 'OUT/results.parquet' was written by imgexplain 0.9.0 ...
    """
    version = manifest.get(VERSION_KEY)
    if version == SCHEMA_VERSION and type(version) is int:
        return
    written = "before schema versions were recorded" if version is None else f"with schema version {version!r:.20}"
    release = " ".join(str(manifest.get("version", "(unknown version)")).split())  # one line, whatever it holds
    raise SchemaVersionError(
        f"--out: {str(table)!r} was written by imgexplain {release:.20} "
        f"{written}; this one writes results schema version {SCHEMA_VERSION}, and rows of two schemas are never "
        "mixed: explain into a new folder (--out), or move that table away to start over")
