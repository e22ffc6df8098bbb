"""torch.export files (.pt2) as untrusted input: no pickle in them may run code, and torch's logging stays quiet.

``torch.export.load`` unpickles some members of the archive with ``weights_only=False`` (pickled weights and
constants, the sample inputs, custom objects), which runs whatever code a pickle names. Before it is called,
:func:`check_pickles` loads every such member with torch's ``weights_only`` unpickler (tensors, containers and
numbers only) and refuses the file when one needs more.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
import zipfile
from typing import Iterator

import torch

from imgexplain.backends import ModelError

# What a config file of the archive names as raw tensor bytes (no pickle) is not checked.
_CONFIGS = ("_weights_config.json", "_constants_config.json")
_OBJECT_PREFIXES = ("custom_obj_", "opaque_obj_")


def _raw_tensors(archive: zipfile.ZipFile) -> set[str]:
    """The members that the archive's configs name as raw tensor bytes (folder/name)."""
    raw = set()
    for name in archive.namelist():
        if name.endswith(_CONFIGS):
            entries = json.loads(archive.read(name)).get("config", {})
            folder = name.rpartition("/")[0]
            raw |= {f"{folder}/{entry['path_name']}" for entry in entries.values()
                    if not entry.get("use_pickle") and not entry["path_name"].startswith(_OBJECT_PREFIXES)}
    return raw


def check_pickles(path: str) -> None:
    """ModelError unless every pickle in the torch.export archive at ``path`` loads as plain data.

    Parameters
    ----------
    path : str
        A torch.export file (a zip archive).

    Raises
    ------
    ModelError
        A member needs arbitrary code to unpickle (custom objects, or classes outside torch's
        ``weights_only`` allow-list), or the archive cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            raw = _raw_tensors(archive)
            for name in archive.namelist():
                if "/data/" in f"/{name}" and not name.endswith(".json") and name not in raw:
                    what = _unsafe(archive.read(name), name)
                    if what:
                        raise ModelError(
                            f"{path!r} holds {what} in {name!r}, which would run code while loading; imgexplain "
                            "loads only model files whose pickles are tensors and plain data (save it with "
                            "torch.export.save from plain modules, or load it yourself if you trust it)")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if isinstance(error, ModelError):
            raise
        raise ModelError(f"cannot load {path!r}: not a readable torch.export archive ({error})") from None


def _unsafe(data: bytes, name: str) -> str | None:
    """What in the member ``data`` would need arbitrary code to unpickle, or None."""
    if name.rpartition("/")[2].startswith(_OBJECT_PREFIXES) or not zipfile.is_zipfile(io.BytesIO(data)):
        return "a pickled object"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as error:  # UnpicklingError, or whatever a damaged member raises
        return f"a pickle that is not plain data ({type(error).__name__})"
    return None


@contextlib.contextmanager
def quiet_torch_logging() -> Iterator[None]:
    """Silence logging and FutureWarnings for the block: loading a damaged file, torch logs tracebacks before it raises."""
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logging.disable(disabled)
