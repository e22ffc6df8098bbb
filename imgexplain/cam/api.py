"""Class activation maps of Keras 3 and PyTorch image classifiers.

:class:`CAM` (in :mod:`imgexplain.cam.core`) explains a batch, one target per image, in one
forward and (for the gradient methods) one backward pass. :func:`explain_prediction`, :func:`show_prediction`
and :func:`image_from_path` follow eli5's API for one image. The framework of ``model``
is recognised without importing any framework: a model can only be a ``torch.nn.Module``
or a ``keras.Model`` if that framework is already imported.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from imgexplain._checks import check_size, is_int
from imgexplain._version import __version__
from imgexplain.cam.core import CAM
from imgexplain.cam.explanation import CAMExplanation
from imgexplain.datasets import load_image

__all__ = ["explain_prediction", "show_prediction", "image_from_path"]

logger = logging.getLogger(__name__)

_EXPLAIN_KEYWORDS = ("targets", "layer", "method", "image", "output")
_FORMAT_KEYWORDS = ("resampling_filter", "colormap", "alpha_limit")
# What explain_prediction does with a model or doc it cannot explain: raise, or return eli5's explanation with .error.
ERRORS = ("raise", "return")


def _as_numpy(images):
    if hasattr(images, "detach"):
        return images.detach().cpu().numpy()
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        return images.numpy()
    return np.asarray(images)


def _picture(doc, channels_first):
    """The image of a (1, ...) batch, scaled from its own minimum and maximum to 0..255."""
    array = doc[0].astype(np.float64)
    if channels_first:
        array = np.moveaxis(array, 0, -1)
    array -= array.min()
    if array.max() > 0:
        array *= 255 / array.max()
    array = np.round(array).astype(np.uint8)
    if array.shape[-1] == 1:
        array = array[..., 0]
    return np.asarray(Image.fromarray(array).convert("RGB"))


def _given_picture(image):
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"image must be a PIL image or a uint8 (H, W) or (H, W, C) array; got "
                         f"{array.dtype} with shape {array.shape}")
    return np.asarray(Image.fromarray(array).convert("RGB"))


def explain_prediction(model: Any, doc: Any, targets: int | Sequence[int] | None = None, layer: Any = None,
                       method: str = "gradcam", image: Image.Image | np.ndarray | None = None,
                       output: int | str | None = None, errors: str = "raise") -> CAMExplanation:
    """Explain a classifier's prediction for one image with a class activation map (eli5's API).

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    doc : array or tensor
        One image as a batch: ``(1, H, W, C)`` for Keras, ``(1, C, H, W)`` for PyTorch,
        preprocessed as the model expects.
    targets : None or list of int
        None explains the top prediction (and logs "Taking top prediction: N" at INFO level);
        ``[idx]`` explains class ``idx``; several indices give one map each, the first being
        ``.heatmap``.
    layer, method, output :
        As in :class:`CAM`.
    image : PIL image or uint8 array, optional
        The picture to show under the map; by default ``doc`` itself, scaled to 0..255.
    errors : {'raise', 'return'}
        What a model or ``doc`` that cannot be explained (not a Keras or PyTorch model, no layer to
        explain, a ``doc`` it does not take) does: 'raise' raises its TypeError or ValueError;
        'return' returns an explanation whose ``.error`` says why, with no targets, as eli5 does.

    Returns
    -------
    CAMExplanation
        ``.image``, ``.heatmap``, ``.targets`` (``target``, ``score``, ``heatmap``, ``proba``),
        ``.method``, ``.layer`` and ``.error`` (``''``).

    Raises
    ------
    TypeError
        `targets` is neither None, an int nor a list; `model` is not a Keras or PyTorch model.
    ValueError
        `targets` is an empty list, `doc` holds more than one image, `image` is not a uint8 picture,
        `errors` is unknown, or as in :class:`CAM`.

    Examples
    --------
    >>> from imgexplain import explain_prediction
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> doc = torch.rand(1, 3, 8, 8)
    >>> explanation = explain_prediction(model, doc, targets=[2, 0])
    >>> explanation.heatmap.shape, [target.target for target in explanation.targets]
    ((8, 8), [2, 0])
    >>> explanation.image.size, explanation.method
    ((8, 8), 'gradcam')
    >>> explain_prediction(model, torch.rand(1, 3), errors="return").error
    "model 'Sequential' ... not supported: ..."
    """
    if errors not in ERRORS:
        raise ValueError(f"errors must be one of {ERRORS}; got {errors!r}")
    if is_int(targets):
        targets = [targets]
    if targets is not None:
        if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__"):
            raise TypeError(f"targets must be None or a non-empty list of class indices; got {targets!r}")
        if len(targets) == 0:
            raise ValueError(f"targets must be None or a non-empty list of class indices; got {targets!r}")
    picture = None if image is None else _given_picture(image)
    array = _as_numpy(doc)
    if array.ndim == 4 and array.shape[0] != 1:
        raise ValueError(f"doc must hold one image, shape (1, ...) ; got {array.shape}; "
                         f"use imgexplain.CAM for batches")
    meta = {"name": "CAM", "params": {"method": method, "layer": layer, "targets": targets, "output": output},
            "version": __version__}
    try:
        cam = CAM(model, layer=layer, method=method, output=output)
        repeated = array if targets is None else np.repeat(array, len(targets), axis=0)
        result = cam.compute(repeated, None if targets is None else list(targets))
    except (TypeError, ValueError) as error:
        if errors == "raise":
            raise
        return CAMExplanation.from_error(f"model {type(model).__name__!r} with a doc of shape {array.shape} is "
                                         f"not supported: {error}", meta)
    if targets is None:
        logger.info("Taking top prediction: %d", result.targets[0])
    if picture is None:
        picture = _picture(array, channels_first=cam._backend.channels_first)
    meta["params"].update(method=result.method, layer=result.layer)
    return CAMExplanation.from_result(result, picture, meta)


def show_prediction(model: Any, doc: Any, **kwargs: Any) -> Image.Image:
    """:func:`explain_prediction` then :func:`imgexplain.render.format_as_image`; returns the picture.

    Parameters
    ----------
    model, doc
        As in :func:`explain_prediction`.
    **kwargs
        ``targets``, ``layer``, ``method``, ``image``, ``output`` for the explanation;
        ``resampling_filter``, ``colormap``, ``alpha_limit`` for the picture.

    Returns
    -------
    PIL.Image.Image
        The heatmap over the image, RGBA, of the image's size.

    Raises
    ------
    TypeError
        An unknown keyword, or as in :func:`explain_prediction`.
    ValueError
        As in :func:`explain_prediction` and :func:`imgexplain.render.format_as_image`.

    Examples
    --------
    >>> from imgexplain import show_prediction
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> doc = torch.rand(1, 3, 8, 8)
    >>> picture = show_prediction(model, doc, method="gradcam++", alpha_limit=0.5)
    >>> picture.size, picture.mode
    ((8, 8), 'RGBA')
    """
    from imgexplain.render import format_as_image

    unknown = sorted(set(kwargs) - set(_EXPLAIN_KEYWORDS) - set(_FORMAT_KEYWORDS))
    if unknown:
        raise TypeError(f"show_prediction got unexpected keyword arguments {unknown}; it takes "
                        f"{list(_EXPLAIN_KEYWORDS + _FORMAT_KEYWORDS)}")
    explanation = explain_prediction(model, doc, **{key: value for key, value in kwargs.items()
                                                     if key in _EXPLAIN_KEYWORDS})
    return format_as_image(explanation, **{key: value for key, value in kwargs.items()
                                          if key in _FORMAT_KEYWORDS})


def image_from_path(path: str | os.PathLike, image_shape: tuple[int, int] | None = (224, 224)) -> np.ndarray:
    """Load an image file as a ``(1, H, W, 3)`` float32 batch in 0..255 (eli5's API).

    Parameters
    ----------
    path : str or os.PathLike
        An image file, read by :func:`imgexplain.datasets.load_image`.
    image_shape : (int, int) or None
        ``(height, width)`` to resize to (bilinear, as everywhere in imgexplain); None keeps the
        file's size.

    Returns
    -------
    (1, height, width, 3) float32 ndarray
        For PyTorch models, transpose to ``(1, 3, H, W)``.

    Raises
    ------
    TypeError, ValueError
        `image_shape` is neither None nor a pair of positive ints (TypeError when it is not a pair
        of ints), or as in :func:`imgexplain.datasets.load_image`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from imgexplain import image_from_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "red.png"
    ...     Image.new("RGB", (40, 30), (255, 0, 0)).save(path)
    ...     batch = image_from_path(path, image_shape=(16, 16))
    >>> batch.shape, batch.dtype, batch[0, 0, 0]
    ((1, 16, 16, 3), dtype('float32'), array([255.,   0.,   0.], dtype=float32))
    """
    image_shape = check_size(image_shape, "image_shape", allow_none=True)
    return load_image(path, target_size=image_shape).astype(np.float32)[None]
