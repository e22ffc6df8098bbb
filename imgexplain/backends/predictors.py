"""Chunked predictors, framework-free: the base class of the fast predictors and the checks they share.

A backend's fast predictor (`imgexplain.backends.onnx.from_onnx`, `imgexplain.backends.torch.from_torch`)
is a `ChunkedPredictor`: a callable that takes the images, applies ``preprocess`` and returns the model's
output for each image as a numpy array. Images go to the model in chunks, so memory stays bounded however
many are asked for; without a fixed ``batch_size`` the chunk size is the fastest of `CHUNK_SIZES`, timed on
the first calls.

Devices: ``None`` takes the best available (each backend says what that is); ``"cpu"``, ``"cuda"`` or
``"cuda:N"`` ask for one.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_positive_int
from imgexplain.predictor import PredictorError

CHUNK_SIZES = (1, 2, 4, 8, 16, 32)
# Each candidate runs this many times; the first run of a shape pays for its set-up and is not counted.
RUNS_PER_CHUNK_SIZE = 2
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


# --- devices ----------------------------------------------------------------------------------------------

def check_device(device: Any) -> str | None:
    """``device`` as 'cpu', 'cuda' or 'cuda:N' (a torch.device is accepted), or None.

    Parameters
    ----------
    device : None, str or torch.device

    Returns
    -------
    str or None

    Raises
    ------
    TypeError
        When ``device`` is neither a string nor a torch.device.
    ValueError
        When it names no device of that form.
    """
    if device is None:
        return None
    name = str(device) if type(device).__name__ == "device" else device
    if not isinstance(name, str):
        raise TypeError(f"device must be 'cpu', 'cuda', 'cuda:N' or None; got {type(device).__name__}")
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or None; got {device!r}")
    return name


# --- chunked prediction -----------------------------------------------------------------------------------

def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` as a positive int, or None.

    Parameters
    ----------
    batch_size : None or int

    Returns
    -------
    int or None

    Raises
    ------
    TypeError
        When it is not an integer.
    ValueError
        When it is below 1.
    """
    return check_positive_int(batch_size, "batch_size", allow_none=True)


def check_preprocess(preprocess: Any) -> Callable:
    """``preprocess``, or the identity when it is None.

    Parameters
    ----------
    preprocess : None or callable

    Returns
    -------
    callable

    Raises
    ------
    TypeError
        When it cannot be called.
    """
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

    def __init__(self, preprocess: Callable, batch_size: int | None, device: str, name: str):
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device
        self.name = name
        self._seconds_per_image = {size: [] for size in CHUNK_SIZES}

    def __call__(self, images: Any) -> np.ndarray:
        return self.run(self.preprocess(images))

    def run(self, inputs: Any, batch_size: int | None = None) -> np.ndarray:
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
