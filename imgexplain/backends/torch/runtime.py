"""PyTorch's fast predictor: a module in eval and inference mode, channels_last inputs, in chunks.

:func:`from_torch` (also ``imgexplain.predictor.from_torch``) chooses the chunk size by timing
`imgexplain.backends.predictors.CHUNK_SIZES` on the first calls, PyTorch's time per image depending much on it.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from imgexplain.backends import DeviceError
from imgexplain.backends.predictors import ChunkedPredictor, check_batch_size, check_device, check_preprocess
from imgexplain.predictor import PredictorError


def torch_device(device: Any = None) -> torch.device:
    """The torch.device for ``device``.

    Parameters
    ----------
    device : {None, 'cpu', 'cuda', 'cuda:N'} or torch.device
        ``None`` takes CUDA when torch sees a GPU, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        When CUDA is asked for and torch sees no GPU (a ValueError).
    ValueError
        When ``device`` names no device.
    """
    name = check_device(device)
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r}: torch sees no CUDA device; use device='cpu'")
    return torch.device(name)


class TorchPredictor(ChunkedPredictor):
    """A PyTorch module as a predictor (see `from_torch`)."""

    def __init__(self, module: torch.nn.Module, preprocess: Callable, batch_size: int | None,
                 device: torch.device):
        super().__init__(preprocess, batch_size, str(device), f"the module {type(module).__name__}")
        self.module = module
        self._device = device

    def _model_input(self, inputs):
        inputs = torch.as_tensor(inputs).to(self._device)
        if len(inputs) == 0:
            raise ValueError("the batch is empty: give at least one image")
        return inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs

    def _run_chunk(self, chunk):
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


def from_torch(module: Any, preprocess: Callable | None = None, batch_size: int | None = None,
               device: Any = None) -> TorchPredictor:
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

    Raises
    ------
    TypeError
        When ``module`` is not a module, or ``preprocess`` or ``batch_size`` has a wrong type.
    ValueError
        When ``device`` is not on this machine, or ``batch_size`` is below 1.
    """
    if isinstance(module, torch.export.ExportedProgram):
        module = module.module()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, a TorchScript module or an ExportedProgram; "
                        f"got {type(module).__name__}")
    preprocess = check_preprocess(preprocess)
    batch_size = check_batch_size(batch_size)
    device = torch_device(device)
    module.to(device)
    try:
        module.eval()
    except NotImplementedError:  # an exported graph is fixed in the mode it was exported in
        pass
    return TorchPredictor(module, preprocess, batch_size, device)
