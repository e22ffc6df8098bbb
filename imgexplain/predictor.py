"""Calling a user's predictor safely: validation of its outputs, labels from scores, call counting."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


class PredictorError(RuntimeError):
    """The predictor raised, or returned something that is not a prediction for each image."""


def check_predictor(predictor: Any) -> Callable:
    """Return ``predictor`` if it can be called, else raise TypeError."""
    if not callable(predictor):
        raise TypeError(f"predictor must be callable; got {type(predictor).__name__}")
    return predictor


class LabelPredictor:
    """Wrap ``predictor`` so that it returns one integer label per image, and count its use.

    Accepted outputs: (N,) integer labels; (N, K >= 2) scores whose argmax is the label; (N, 1) a sigmoid
    score in [0, 1], thresholded at 0.5. Anything else is a :class:`PredictorError` naming the predictor.
    """

    def __init__(self, predictor: Callable, input_shape: tuple[int, ...], dtype: type):
        self.predictor = predictor
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        self.n_calls = 0
        self.n_images = 0

    @property
    def name(self) -> str:
        return getattr(self.predictor, "__qualname__", None) or type(self.predictor).__name__

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=self.dtype).reshape((len(images),) + self.input_shape)
        try:
            output = self.predictor(images)
        except Exception as error:
            raise PredictorError(f"predictor {self.name!r} raised {type(error).__name__} on a batch of shape "
                                 f"{images.shape} and dtype {images.dtype}: {error}") from error
        self.n_calls += 1
        self.n_images += len(images)
        return labels_from_output(output, len(images), self.name)


def labels_from_output(output, n_images: int, name: str = "predictor") -> np.ndarray:
    """Turn a predictor's output for ``n_images`` images into (n_images,) integer labels, or raise."""
    try:
        output = np.asarray(output)
    except Exception as error:
        raise PredictorError(f"predictor {name!r} returned {type(output).__name__}, not an array") from error
    if output.dtype.kind not in "biuf":
        raise PredictorError(f"predictor {name!r} returned dtype {output.dtype}; expected numbers")
    if output.ndim not in (1, 2) or output.shape[0] != n_images:
        raise PredictorError(f"predictor {name!r} returned shape {output.shape} for {n_images} images; expected "
                             f"({n_images},) labels or ({n_images}, n_classes) scores")
    if output.dtype.kind == "f" and not np.all(np.isfinite(output)):
        raise PredictorError(f"predictor {name!r} returned NaN or infinite values")
    if output.ndim == 1:
        if output.dtype.kind == "f" and not np.all(output == np.round(output)):
            raise PredictorError(f"predictor {name!r} returned shape ({n_images},) with non-integer values; "
                                 "a 1-D output must be class labels (use (N, 1) for a sigmoid score)")
        return output.astype(np.int64)
    if output.shape[1] == 1:
        if np.any(output < 0) or np.any(output > 1):
            raise PredictorError(f"predictor {name!r} returned shape ({n_images}, 1) with values outside [0, 1]; "
                                 "a single column must be a sigmoid probability")
        return (output[:, 0] > 0.5).astype(np.int64)
    return np.argmax(output, axis=1).astype(np.int64)


def __getattr__(name):
    """``from_onnx`` and ``from_torch``, fast predictors for users' models, from `imgexplain.runtimes`."""
    if name in ("from_onnx", "from_torch"):
        from imgexplain import runtimes

        return getattr(runtimes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
