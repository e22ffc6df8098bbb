"""Which kind of model a path names, read from the file's content: the one place that recognises model files.

:func:`model_kind` says 'builtin' or one of the backends' saved kinds (:data:`FILE_KINDS`); which backend
loads each kind is the backends' declaration (``SAVED_KINDS``, :func:`imgexplain.backends.backend_of_kind`).
Nothing here imports a framework.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from imgexplain.backends import ModelError

BUILTIN_MODEL = "efficientnet-lite0"

# Each kind of saved file, as users know it (in the order error messages list them).
FILE_KINDS = {"keras": "a .keras file", "exported": "a torch.export file (.pt2)",
              "torchscript": "a TorchScript file", "onnx": "an .onnx file"}


def model_kind(model: str) -> str:
    """'builtin', or the kind of a saved model file ('keras', 'exported', 'torchscript', 'onnx'), read from its
    content ('onnx': from the .onnx suffix, ONNX having no signature of its own).

    Parameters
    ----------
    model : str
        ``'efficientnet-lite0'`` or a path.

    Returns
    -------
    str

    Raises
    ------
    ModelError
        A path that does not exist, is not a file, or is not a model file of a known kind.

    Examples
    --------
    >>> from imgexplain.model_files import model_kind
    >>> model_kind("efficientnet-lite0")
    'builtin'
    >>> model_kind("no-such-model.keras")
    Traceback (most recent call last):
    ...
    imgexplain.backends.ModelError: unknown model 'no-such-model.keras'; expected ...
    """
    if model == BUILTIN_MODEL:
        return "builtin"
    path = Path(model)
    kinds = list(FILE_KINDS.values())
    expected = f"expected '{BUILTIN_MODEL}', {', '.join(kinds[:-1])} or {kinds[-1]}"
    if not path.exists():
        raise ModelError(f"unknown model {model!r}; {expected}")
    if not path.is_file():
        raise ModelError(f"not a file: {model!r}")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        names = []
    if path.suffix == ".keras" and "config.json" in names:
        return "keras"
    if any(name.endswith("/archive_format") for name in names) and any("/models/" in name for name in names):
        return "exported"
    if any(name.endswith("/constants.pkl") for name in names) and any("/code/" in name for name in names):
        return "torchscript"
    raise ModelError(f"{model!r} is not a model file; {expected}{_saving_hint(path, names)}")


_PTH_HINT = ("; it looks like a torch.save file (a pickled module or a state_dict), which needs its Python class "
             "and would run code to load: build the module in Python and save it with "
             "torch.export.save(torch.export.export(model, (example,)), 'model.pt2')")
_H5_HINT = ("; it looks like a legacy Keras HDF5 file: load it in Keras and save it as "
            "model.save('model.keras')")


def _saving_hint(path: Path, names: list[str]) -> str:
    """How to save the model in a kind that loads, for the files people try first (.pth, .h5)."""
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return ""
    if head == b"\x89HDF\r\n\x1a\n":
        return _H5_HINT
    if any(name.endswith("/data.pkl") for name in names) or head[:1] == b"\x80":
        return _PTH_HINT
    return ""
