"""Superpixels: scikit-image segmentations, grid superpixels, custom callables, validation and relabelling."""
from __future__ import annotations

import importlib
from functools import partial
from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_positive_int, check_size

# Each built-in name -> its function in skimage.segmentation, imported on first use (it takes a second to load).
SEGMENTATION_FUNCTIONS: dict[str, str] = {"felzenszwalb": "felzenszwalb", "quickshift": "quickshift", "slic": "slic"}

# The segmentation the command line and the explainers use unless told otherwise.
DEFAULT_SEGMENTATION = "slic"
# The built-in segmentations that take a number of superpixels -> the keyword that sets it (the others find
# their own number).
COUNT_ARGUMENT: dict[str, str] = {"slic": "n_segments"}

# The reference's defaults, used when `segmentation_kwargs` is None.
DEFAULT_SEGMENTATION_KWARGS: dict[str, dict] = {
    "felzenszwalb": {},
    "quickshift": {},
    "slic": {"n_segments": 10, "compactness": 10, "sigma": 0.5},
}


def make_segmentation_fn(segmentation_fn: Any, segmentation_kwargs: dict | None) -> tuple[Callable, bool, dict]:
    """Resolve ``segmentation_fn`` to a callable.

    Returns ``(function, is_custom, kwargs_used)``. A built-in name takes ``segmentation_kwargs`` (or the
    default kwargs for that name); a callable is used as it is.
    """
    if callable(segmentation_fn):
        if segmentation_kwargs:
            raise ValueError(
                "segmentation_kwargs are for the built-in segmentation functions "
                f"{sorted(SEGMENTATION_FUNCTIONS)}; got a callable segmentation_fn and segmentation_kwargs="
                f"{segmentation_kwargs!r}. Bind the arguments into the callable (functools.partial) instead."
            )
        return segmentation_fn, True, {}
    if not isinstance(segmentation_fn, str) or segmentation_fn not in SEGMENTATION_FUNCTIONS:
        error = ValueError if isinstance(segmentation_fn, str) else TypeError
        raise error(
            f"segmentation_fn must be one of {sorted(SEGMENTATION_FUNCTIONS)} or a callable; got {segmentation_fn!r}"
        )
    if segmentation_kwargs is None:
        kwargs = dict(DEFAULT_SEGMENTATION_KWARGS[segmentation_fn])
    elif isinstance(segmentation_kwargs, dict):
        kwargs = dict(segmentation_kwargs)
    else:
        raise TypeError(f"segmentation_kwargs must be a dict or None; got {type(segmentation_kwargs).__name__}")
    count = COUNT_ARGUMENT.get(segmentation_fn)
    if count in kwargs:
        check_positive_int(kwargs[count], f"segmentation_kwargs[{count!r}]")
    function = getattr(importlib.import_module("skimage.segmentation"), SEGMENTATION_FUNCTIONS[segmentation_fn])
    return partial(function, **kwargs), False, kwargs


def segment_image(segmentation_fn: Callable, image: np.ndarray, custom: bool) -> np.ndarray:
    """Segment an (H, W, C) image and return labels relabelled to 0..K-1.

    Built-in segmentations see a grayscale (H, W, 1) image repeated to three channels, as in the reference;
    a custom function sees the image as it is.
    """
    if not custom and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    try:
        labels = segmentation_fn(image.copy())
    except Exception as error:
        raise ValueError(f"segmentation_fn {_name(segmentation_fn)} failed on an image of shape {image.shape}: "
                         f"{error}") from error
    return relabel_segments(labels, image.shape[:2], source=_name(segmentation_fn))


def relabel_segments(labels: Any, image_hw: tuple[int, int], source: str = "segmentation") -> np.ndarray:
    """Check a label image and map its labels to 0..K-1, keeping their order.

    Raises ValueError for a label image of the wrong shape, with NaN or non-integer values, or with fewer than
    two superpixels (an anchor needs something to choose from).
    """
    labels = np.asarray(labels)
    if labels.shape != tuple(image_hw):
        raise ValueError(f"{source} returned labels of shape {labels.shape}; expected the image's (H, W) = "
                         f"{tuple(image_hw)}")
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"{source} returned labels of dtype {labels.dtype}; expected integers")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{source} returned labels with NaN or infinite values")
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"{source} returned non-integer labels (e.g. {labels[labels != np.round(labels)][0]})")
    unique, relabelled = np.unique(labels, return_inverse=True)
    if unique.size < 2:
        raise ValueError(f"{source} returned {unique.size} superpixel; an anchor needs at least 2. "
                         "Use a finer segmentation (e.g. more n_segments) or a different segmentation_fn.")
    return relabelled.reshape(labels.shape).astype(np.intp)


def grid_segments(image_hw: tuple[int, int], cell: tuple[int, int]) -> np.ndarray:
    """Rectangular superpixels of ``cell = (rows, cols)`` pixels, labelled 0..K-1 row by row."""
    height, width = image_hw
    cell_rows, cell_cols = check_size(cell, "cell")
    n_cols = -(-width // cell_cols)
    rows = np.arange(height)[:, None] // cell_rows
    cols = np.arange(width)[None, :] // cell_cols
    return (rows * n_cols + cols).astype(np.intp)


def superpixel_means(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """A float image where every pixel takes the mean value of its superpixel, channel by channel.

    ``segments`` holds labels 0..K-1 for an (H, W) or (H, W, C) ``image``.
    """
    n_segments = int(segments.max()) + 1
    flat_segments = segments.ravel()
    counts = np.bincount(flat_segments, minlength=n_segments)
    channels = image.reshape(flat_segments.size, -1).astype(np.float64)
    means = np.stack([np.bincount(flat_segments, weights=channel, minlength=n_segments) for channel in channels.T],
                     axis=1) / counts[:, None]
    return means[segments].reshape(image.shape)


def _name(function: Callable) -> str:
    inner = getattr(function, "func", function)
    return getattr(inner, "__name__", repr(inner))
