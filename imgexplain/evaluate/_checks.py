"""Checks of the metrics' inputs and of the predictor's scores, and resizing of maps."""
from __future__ import annotations

from numbers import Integral
from typing import Any, Callable

import numpy as np

from imgexplain.predictor import PredictorError, call_predictor, check_predictor, predictor_name


def resized(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``saliency`` as floats of ``shape``, resized bilinearly when it has another shape."""
    if saliency.shape == tuple(shape):
        return saliency.astype(float)
    from skimage.transform import resize

    return resize(saliency.astype(float), shape, order=1, mode="edge", anti_aliasing=False)


def call_scores(predictor: Callable, batch: np.ndarray, fresh: bool = False) -> np.ndarray:
    """The predictor's ``(N, K)`` scores of ``batch`` (see :func:`imgexplain.predictor.call_predictor`);
    PredictorError when it raises or returns anything else."""
    output = np.asarray(call_predictor(check_predictor(predictor), batch, fresh=fresh))
    n, name = len(batch), predictor_name(predictor)
    if output.ndim != 2 or output.shape[0] != n:
        raise PredictorError(f"predictor {name!r} must return ({n}, K) scores for {n} images; "
                             f"got shape {output.shape}")
    if not np.issubdtype(output.dtype, np.number) or not np.all(np.isfinite(output)):
        raise PredictorError(f"predictor {name!r} returned non-numeric or non-finite scores")
    return output


def check_image(image: Any) -> np.ndarray:
    """``image`` as a finite numeric (H, W) or (H, W, C) array, else ValueError."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or not np.issubdtype(image.dtype, np.number):
        raise ValueError(f"image must be a numeric (H, W) or (H, W, C) array; "
                         f"got {image.dtype} array of shape {image.shape}")
    check_finite(image, "image")
    return image


def check_finite(array: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` when ``array`` holds NaN or infinite values."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)
