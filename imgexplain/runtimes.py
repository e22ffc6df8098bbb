"""Fast predictors: a model run by ONNX Runtime, or a PyTorch module in inference mode, in chunks.

`from_onnx` and `from_torch` (also in `imgexplain.predictor`) turn a model into a predictor: a callable
that takes the images, applies ``preprocess`` and returns the model's output for each image as a numpy
array. Images go to the model in chunks, so memory stays bounded however many are asked for; without a
fixed ``batch_size``, a PyTorch module's chunk size is the fastest of `CHUNK_SIZES`, timed on the first calls
(PyTorch's time per image depends much on it), and an ONNX model's is `ONNX_BATCH_SIZE`.

Devices: ``None`` takes the best available (CUDA when ONNX Runtime has its CUDA provider or torch sees a
GPU, else the CPU); ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` ask for one. onnxruntime and torch are
imported inside the functions that need them.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np

from imgexplain.predictor import PredictorError

CHUNK_SIZES = (1, 2, 4, 8, 16, 32)
# ONNX Runtime's time per image on a CPU hardly depends on the batch, while each new batch shape costs a
# set-up run: its chunks have one size unless asked otherwise.
ONNX_BATCH_SIZE = 32
# Each candidate runs this many times; the first run of a shape pays for its set-up and is not counted.
RUNS_PER_CHUNK_SIZE = 2
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")
_CUDA_PROVIDER = "CUDAExecutionProvider"
_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
                "tensor(int64)": np.int64}


# --- devices ----------------------------------------------------------------------------------------------

def check_device(device):
    """``device`` as 'cpu', 'cuda' or 'cuda:N' (a torch.device is accepted), or None; else a clear error."""
    if device is None:
        return None
    name = str(device) if type(device).__name__ == "device" else device
    if not isinstance(name, str):
        raise TypeError(f"device must be 'cpu', 'cuda', 'cuda:N' or None; got {type(device).__name__}")
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or None; got {device!r}")
    return name


def onnx_providers(device=None):
    """ONNX Runtime's execution providers for ``device``: CUDA (then the CPU) or the CPU alone.

    ``None`` takes CUDA when this onnxruntime has the CUDA provider (the ``onnxruntime-gpu`` package).
    """
    import onnxruntime

    name = check_device(device)
    available = onnxruntime.get_available_providers()
    if name is None:
        name = "cuda" if _CUDA_PROVIDER in available else "cpu"
    if name == "cpu":
        return ["CPUExecutionProvider"]
    if _CUDA_PROVIDER not in available:
        raise ValueError(f"device={device!r}: this onnxruntime has no CUDA provider (it has {available}); "
                         "install onnxruntime-gpu, or use device='cpu'")
    index = int(name.partition(":")[2] or 0)
    return [(_CUDA_PROVIDER, {"device_id": index}), "CPUExecutionProvider"]


def torch_device(device=None):
    """The torch.device for ``device``: ``None`` takes CUDA when torch sees a GPU, else the CPU."""
    import torch

    name = check_device(device)
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: torch sees no CUDA device; use device='cpu'")
    return torch.device(name)


# --- chunked prediction -----------------------------------------------------------------------------------

def _check_batch_size(batch_size):
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be a positive integer or None; got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size}")
    return int(batch_size)


def _check_preprocess(preprocess):
    if preprocess is None:
        return lambda images: images
    if not callable(preprocess):
        raise TypeError(f"preprocess must be callable or None; got {type(preprocess).__name__}")
    return preprocess


class ChunkedPredictor:
    """Images -> ``preprocess`` -> the model, chunk by chunk -> the outputs, concatenated.

    Attributes
    ----------
    preprocess : callable
        Images -> the model's input.
    batch_size : int or None
        Images per chunk. None until the first calls have timed each of `CHUNK_SIZES`
        (`RUNS_PER_CHUNK_SIZE` times) and chosen the fastest per image.
    device : str
        Where the model runs: 'cpu' or 'cuda:N'.
    name : str
        The model, as error messages name it.
    """

    def __init__(self, preprocess, batch_size, device, name):
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device
        self.name = name
        self._seconds_per_image = {size: [] for size in CHUNK_SIZES}

    def __call__(self, images):
        return self.run(self.preprocess(images))

    def run(self, inputs, batch_size=None):
        """The model's outputs for ``inputs`` (a batch of the model's own input), in chunks of
        ``batch_size`` (default: `batch_size`, or the candidates being timed)."""
        inputs = self._model_input(inputs)
        outputs, start = [], 0
        while start < len(inputs):
            size = batch_size or self.batch_size or self._next_size(len(inputs) - start)
            chunk = inputs[start:start + size]
            began = time.perf_counter()
            output = self._run_chunk(chunk)
            if batch_size is None and self.batch_size is None:
                self._record(size, len(chunk), time.perf_counter() - began)
            if len(output) != len(chunk):
                raise PredictorError(f"{self.name} returned {len(output)} rows for a chunk of {len(chunk)} inputs")
            outputs.append(output)
            start += len(chunk)
        return np.concatenate(outputs)

    def _next_size(self, remaining):
        untimed = [size for size, runs in self._seconds_per_image.items()
                   if len(runs) < RUNS_PER_CHUNK_SIZE and size <= remaining]
        return untimed[0] if untimed else min(remaining, CHUNK_SIZES[-1])

    def _record(self, size, n_images, seconds):
        if size not in self._seconds_per_image or n_images != size:
            return
        self._seconds_per_image[size].append(seconds / size)
        timed = self._seconds_per_image
        if all(len(runs) >= RUNS_PER_CHUNK_SIZE for runs in timed.values()):
            self.batch_size = min(timed, key=lambda candidate: min(timed[candidate][1:]))

    def _model_input(self, inputs):
        raise NotImplementedError

    def _run_chunk(self, chunk):
        raise NotImplementedError


# --- ONNX Runtime -----------------------------------------------------------------------------------------

class OnnxPredictor(ChunkedPredictor):
    """A model on ONNX Runtime as a predictor (see `from_onnx`). ``session`` is the InferenceSession."""

    def __init__(self, session, preprocess=None, batch_size=None, name="the ONNX model"):
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
        super().__init__(_check_preprocess(preprocess), batch_size or fixed_batch or ONNX_BATCH_SIZE, device, name)
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


def onnx_session(model, device=None):
    """An ONNX Runtime InferenceSession for ``model`` (a path or the model's bytes) on ``device``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about the graph on every load
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
    return onnxruntime.InferenceSession(source, sess_options=options, providers=onnx_providers(device))


def from_onnx(path, preprocess=None, batch_size=None, device=None):
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
    """
    from onnxruntime.capi import onnxruntime_pybind11_state as errors

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike to an .onnx file; got {type(path).__name__}")
    preprocess = _check_preprocess(preprocess)
    batch_size = _check_batch_size(batch_size)
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


# --- PyTorch ----------------------------------------------------------------------------------------------

class TorchPredictor(ChunkedPredictor):
    """A PyTorch module as a predictor (see `from_torch`)."""

    def __init__(self, module, preprocess, batch_size, device):
        super().__init__(preprocess, batch_size, str(device), f"the module {type(module).__name__}")
        self.module = module
        self._device = device

    def _model_input(self, inputs):
        import torch

        inputs = torch.as_tensor(inputs).to(self._device)
        if len(inputs) == 0:
            raise ValueError("the batch is empty: give at least one image")
        return inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs

    def _run_chunk(self, chunk):
        import torch

        try:
            with torch.inference_mode():
                output = self.module(chunk)
        except Exception as error:
            raise PredictorError(f"{self.name} failed on an input of shape {tuple(chunk.shape)}: {error}") from error
        if isinstance(output, (tuple, list)) and output:
            output = output[0]
        if not isinstance(output, torch.Tensor):
            raise PredictorError(f"{self.name} returned {type(output).__name__}; expected a tensor")
        return output.cpu().numpy()


def from_torch(module, preprocess=None, batch_size=None, device=None):
    """A predictor that runs a PyTorch module the fast way.

    The module runs in eval mode on ``device`` (``from_torch`` calls its ``eval()`` and ``to(device)``, as
    explainers of PyTorch models do), under ``torch.inference_mode``, with 4-D inputs in channels_last layout
    (the fast layout of oneDNN and cuDNN convolutions; a convolution follows its input's layout).

    Parameters
    ----------
    module : torch.nn.Module, torch.jit.ScriptModule or torch.export.ExportedProgram
    preprocess : callable, optional
        Images -> the module's input (a numpy array or tensor). Default: the images as they are.
    batch_size : int, optional
        Inputs per call of the module. Default: the fastest of `CHUNK_SIZES`, timed on the first calls.
    device : {None, 'cpu', 'cuda', 'cuda:N'} or torch.device
        None: CUDA when torch sees a GPU, else the CPU.

    Returns
    -------
    TorchPredictor
        ``predictor(images)`` -> the module's output (its first, if it returns several) as a numpy array.
    """
    import torch

    if isinstance(module, torch.export.ExportedProgram):
        module = module.module()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, a TorchScript module or an ExportedProgram; "
                        f"got {type(module).__name__}")
    preprocess = _check_preprocess(preprocess)
    batch_size = _check_batch_size(batch_size)
    device = torch_device(device)
    module.to(device)
    try:
        module.eval()
    except NotImplementedError:  # an exported graph is fixed in the mode it was exported in
        pass
    return TorchPredictor(module, preprocess, batch_size, device)
