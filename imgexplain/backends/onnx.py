"""The ONNX backend: models run by ONNX Runtime, as predictors (no gradients, so no CAM).

:func:`from_onnx` (also ``imgexplain.predictor.from_onnx``) turns an .onnx file into an
:class:`OnnxPredictor`; its chunks have one size (`ONNX_BATCH_SIZE` unless the model fixes its batch),
ONNX Runtime's time per image on a CPU hardly depending on the batch while each new batch shape costs a
set-up run. Device ``None`` takes CUDA when ONNX Runtime has its CUDA provider, else the CPU.
onnxruntime is imported inside the functions that need it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from imgexplain.backends import DeviceError, ModelError, SavedModel
from imgexplain.backends.predictors import ChunkedPredictor, check_batch_size, check_device, check_preprocess
from imgexplain.predictor import PredictorError

MODEL_TYPE = "an ONNX model (imgexplain.predictor.from_onnx)"
SAVED_KINDS = {"onnx": False}
CAM_COMPUTES = frozenset()  # no gradients, no layers: no class activation maps
ONNX_BATCH_SIZE = 32
_CUDA_PROVIDER = "CUDAExecutionProvider"
_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
                "tensor(int64)": np.int64}


def owns(model: Any) -> bool:
    """Whether ``model`` is an :class:`OnnxPredictor`."""
    return isinstance(model, OnnxPredictor)


def owns_tensor(value: Any) -> bool:
    """False: ONNX Runtime takes and returns numpy arrays, no tensors of its own."""
    return False


def onnx_providers(device: Any = None) -> list:
    """ONNX Runtime's execution providers for ``device``: CUDA (then the CPU) or the CPU alone.

    Parameters
    ----------
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        ``None`` takes CUDA when this onnxruntime has the CUDA provider (the ``onnxruntime-gpu`` package).

    Returns
    -------
    list
        Providers, as ``onnxruntime.InferenceSession`` takes them.

    Raises
    ------
    DeviceError
        When CUDA is asked for and this onnxruntime has no CUDA provider (a ValueError).
    """
    import onnxruntime

    name = check_device(device)
    available = onnxruntime.get_available_providers()
    if name is None:
        name = "cuda" if _CUDA_PROVIDER in available else "cpu"
    if name == "cpu":
        return ["CPUExecutionProvider"]
    if _CUDA_PROVIDER not in available:
        raise DeviceError(f"device={device!r}: this onnxruntime has no CUDA provider (it has {available}); "
                         "install onnxruntime-gpu, or use device='cpu'")
    index = int(name.partition(":")[2] or 0)
    return [(_CUDA_PROVIDER, {"device_id": index}), "CPUExecutionProvider"]


class OnnxPredictor(ChunkedPredictor):
    """A model on ONNX Runtime as a predictor (see `from_onnx`). ``session`` is the InferenceSession."""

    def __init__(self, session: Any, preprocess: Callable | None = None, batch_size: int | None = None,
                 name: str = "the ONNX model"):
        (model_input,) = session.get_inputs()
        self.session = session
        self.input_name = model_input.name
        self.input_shape = tuple(size if isinstance(size, int) else None for size in model_input.shape)
        self.input_dtype = np.dtype(_ONNX_DTYPES[model_input.type])
        self.output_name = session.get_outputs()[0].name
        fixed_batch = self.input_shape[0] if self.input_shape else None
        if fixed_batch is not None and batch_size not in (None, fixed_batch):
            raise ValueError(f"batch_size={batch_size}: {name} takes batches of exactly {fixed_batch} inputs")
        provider = session.get_providers()[0]
        device = f"cuda:{session.get_provider_options()[provider].get('device_id', 0)}" \
            if provider == _CUDA_PROVIDER else "cpu"
        super().__init__(check_preprocess(preprocess), batch_size or fixed_batch or ONNX_BATCH_SIZE, device, name)
        self._fixed_batch = fixed_batch

    def _model_input(self, inputs):
        if type(inputs).__module__.startswith("torch"):
            inputs = inputs.detach().cpu().numpy()
        inputs = np.ascontiguousarray(inputs, dtype=self.input_dtype)
        expected = self.input_shape
        if inputs.ndim != len(expected) or any(size not in (None, given) for size, given in
                                               zip(expected[1:], inputs.shape[1:])):
            shape = ", ".join("N" if size is None else str(size) for size in expected)
            raise ValueError(f"{self.name} takes input of shape ({shape}); got {inputs.shape} (check preprocess: "
                             "the layout, channels first or last, and the image size)")
        if len(inputs) == 0:
            raise ValueError("the batch is empty: give at least one image")
        return inputs

    def _run_chunk(self, chunk):
        padding = self._fixed_batch - len(chunk) if self._fixed_batch else 0
        if padding:  # a model exported for a fixed batch: fill the last chunk with copies of its last input
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padding, axis=0)])
        try:
            output = self.session.run([self.output_name], {self.input_name: chunk})[0]
        except Exception as error:  # ONNX Runtime raises its own exception types, all plain Exceptions
            raise PredictorError(f"{self.name} failed on an input of shape {chunk.shape}: {error}") from error
        return output[:len(output) - padding]


def onnx_session(model: str | os.PathLike | bytes, device: Any = None) -> Any:
    """An ONNX Runtime InferenceSession for ``model`` on ``device``, logging errors only.

    Parameters
    ----------
    model : str, os.PathLike or bytes
        The .onnx file, or the model's bytes.
    device : {None, 'cpu', 'cuda', 'cuda:N'}

    Returns
    -------
    onnxruntime.InferenceSession
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about the graph on every load
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # set per Ray worker, as PyTorch reads it
        options.intra_op_num_threads = int(threads)
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
    return onnxruntime.InferenceSession(source, sess_options=options, providers=onnx_providers(device))


def from_onnx(path: str | os.PathLike, preprocess: Callable | None = None, batch_size: int | None = None,
              device: Any = None) -> OnnxPredictor:
    """A predictor that runs an ONNX model on ONNX Runtime.

    Parameters
    ----------
    path : str or os.PathLike
        The .onnx file. The model must have one input; its first output is returned.
    preprocess : callable, optional
        Images -> the model's input (e.g. resize, normalise, (N, H, W, C) -> (N, C, H, W)). Default: the
        images as they are. The result is cast to the model's input dtype and its shape is checked against
        the model's before the model runs.
    batch_size : int, optional
        Inputs per call of the model. Default: the batch the model fixes, else `ONNX_BATCH_SIZE`.
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        None: CUDA when onnxruntime has its CUDA provider (``onnxruntime-gpu``), else the CPU.

    Returns
    -------
    OnnxPredictor
        ``predictor(images)`` -> the model's first output for each image, as a numpy array.

    Raises
    ------
    TypeError
        When ``path`` is not a path, or ``preprocess`` or ``batch_size`` has a wrong type.
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not an ONNX model of one numeric input, or the device or batch size cannot be used.
    """
    from onnxruntime.capi import onnxruntime_pybind11_state as errors

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike to an .onnx file; got {type(path).__name__}")
    preprocess = check_preprocess(preprocess)
    batch_size = check_batch_size(batch_size)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model file at {str(path)!r}")
    try:
        session = onnx_session(path, device)
    except (errors.InvalidProtobuf, errors.InvalidGraph, errors.Fail, errors.NotImplemented) as error:
        raise ValueError(f"{str(path)!r} is not an ONNX model that ONNX Runtime can load: {error}") from None
    if len(session.get_inputs()) != 1:
        raise ValueError(f"{str(path)!r} takes {len(session.get_inputs())} inputs; a predictor's model takes one, "
                         "the images")
    if session.get_inputs()[0].type not in _ONNX_DTYPES:
        raise ValueError(f"{str(path)!r} takes {session.get_inputs()[0].type}; expected a tensor of numbers")
    return OnnxPredictor(session, preprocess, batch_size, name=f"the ONNX model {path.name!r}")


# --- saved files ------------------------------------------------------------------------------------------

def _channels_first(shape: tuple) -> bool:
    return shape[1] in (1, 3)


def load_saved(path: str, kind: str = "onnx", device: Any = None) -> SavedModel:
    """An .onnx file on ONNX Runtime, as an :class:`OnnxPredictor` taking images channels first or last.

    Parameters
    ----------
    path : str
    kind : {'onnx'}
    device : {None, 'cpu', 'cuda', 'cuda:N'}

    Returns
    -------
    SavedModel
        The predictor, the (H, W) and channels the model fixes, and its chunk size.

    Raises
    ------
    ModelError
        When the model does not take images (N, C, H, W) or (N, H, W, C) of 1 or 3 channels.
    """
    predictor = from_onnx(path, device=device)
    shape = predictor.input_shape
    if len(shape) != 4 or not (_channels_first(shape) or shape[3] in (1, 3)):
        raise ModelError(f"{path!r} takes input of shape {shape}; expected images (N, C, H, W) or (N, H, W, C) "
                         "of 1 or 3 channels")
    height, width, channels = (*shape[2:], shape[1]) if _channels_first(shape) else shape[1:]
    size = (height, width) if height is not None and width is not None else None
    return SavedModel(predictor, "onnx", size, channels, predictor.batch_size)


def saved_predictor(saved: SavedModel, pixels: Callable, device: Any = None) -> tuple[Callable, Callable]:
    """``(model_input, scores)`` for a loaded .onnx file: ``pixels(images)`` laid out as the model takes
    them, and the model's scores of images (the predictor itself, with ``model_input`` as its preprocess).

    Parameters
    ----------
    saved : SavedModel
        From :func:`load_saved`.
    pixels : callable
        ``(N, H, W, 3)`` images -> ``(N, H, W, C)`` float32 model pixels.
    device : ignored
        The predictor runs where :func:`load_saved` put it.

    Returns
    -------
    tuple of callable
    """
    model = saved.model

    def model_input(images):
        return pixels(images).transpose(0, 3, 1, 2) if _channels_first(model.input_shape) else pixels(images)

    model.preprocess = model_input
    return model_input, model
