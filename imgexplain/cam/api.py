"""Class activation maps of Keras 3 and PyTorch image classifiers.

:class:`CAM` explains a batch, one target per image, in one forward and (for the
gradient methods) one backward pass. :func:`explain_prediction`, :func:`show_prediction`
and :func:`image_from_path` follow eli5's API for one image. The framework of ``model``
is recognised without importing any framework: a model can only be a ``torch.nn.Module``
or a ``keras.Model`` if that framework is already imported.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from PIL import Image

from imgexplain._version import __version__
from imgexplain.cam import methods
from imgexplain.cam.explanation import CAMExplanation
from imgexplain.cam.methods import METHODS

__all__ = ["METHODS", "CAM", "CAMResult", "explain_prediction", "show_prediction", "image_from_path"]

logger = logging.getLogger(__name__)

_EXPLAIN_KEYWORDS = ("targets", "layer", "method", "image", "output")
_FORMAT_KEYWORDS = ("resampling_filter", "colormap", "alpha_limit")


def _backend(model, layer, output):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        from imgexplain.cam.torch import TorchBackend

        return TorchBackend(model, layer=layer, output=output)
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        from imgexplain.cam.keras import KerasBackend

        return KerasBackend(model, layer=layer, output=output)
    if any(cls.__module__.split(".")[0] == "tf_keras" for cls in type(model).__mro__):
        raise TypeError("model is a Keras 2 (tf_keras) model; class activation maps need Keras 3")
    raise TypeError(f"model must be a keras.Model (Keras 3) or a torch.nn.Module; "
                    f"got {type(model).__module__}.{type(model).__name__}")


def _check_targets(targets, n_images, n_classes):
    """Targets as an int32 array, -1 where the top prediction is to be taken."""
    if targets is None:
        return np.full(n_images, -1, dtype=np.int32)
    if isinstance(targets, Integral) and not isinstance(targets, bool):
        values = np.full(n_images, int(targets))
    else:
        if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__"):
            raise TypeError(f"targets must be None, an int or a sequence of ints; got "
                            f"{type(targets).__name__}")
        values = np.asarray(targets)
        if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"targets must be class indices (ints); got {targets!r}")
        if values.shape != (n_images,):
            raise ValueError(f"targets must be None, an int or one int per image ({n_images}); "
                             f"got shape {values.shape}")
    if np.any(values < 0):
        raise ValueError(f"targets must be class indices >= 0; got {values.tolist()}")
    if n_classes is not None and np.any(values >= n_classes):
        raise ValueError(f"targets must lie in [0, {n_classes}) for a model with {n_classes} "
                         f"outputs; got {values.tolist()}")
    return values.astype(np.int32)


@dataclass(frozen=True)
class CAMResult:
    """Maps ``(N, h, w)`` in [0, 1], the explained class of each image and the model's
    score for it, the layer's name and the method."""

    maps: np.ndarray
    targets: np.ndarray
    scores: np.ndarray
    layer: str
    method: str


class CAM:
    """Class activation maps for a batch of images.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
        Keras 3 (TensorFlow backend) takes ``(N, H, W, C)`` images, PyTorch ``(N, C, H, W)``;
        numpy arrays or the framework's tensors. The model's output must be ``(N, n_classes)``
        scores; the score explained is that output as it is (a probability after a softmax).
    layer : None, str, int or layer
        The layer whose activations are weighted. None takes the last layer whose output is a
        4-D feature map larger than 1x1: for Keras, searching inside nested models; for PyTorch,
        the last module to produce one when the model runs (containers included), named after
        the innermost module that produced that tensor. A name (Keras: any nested layer;
        PyTorch: a ``named_modules()`` name), an index (Keras: into ``model.layers``; PyTorch:
        into ``named_modules()`` without the model itself) or the layer object also work.
    method : str
        One of ``gradcam``, ``gradcam++``, ``hirescam``, ``layercam``, ``scorecam``,
        ``eigencam`` (see :mod:`imgexplain.cam.methods`). ``eigencam`` does not depend on
        the target.
    output : None, int or str
        For models with several outputs, which one holds the class scores.
    batch_size : int
        Masked images per model call for ``scorecam``.

    Calling the object returns the maps, ``(N, h, w)`` in [0, 1]; :meth:`compute` also
    returns the explained classes and their scores.
    """

    def __init__(self, model, layer=None, method="gradcam", output=None, batch_size=32):
        if not isinstance(method, str) or method.lower() not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self.model = model
        self.method = method.lower()
        self.batch_size = int(batch_size)
        self._backend = _backend(model, layer, output)

    @property
    def layer(self):
        """Name of the layer explained (known once the model has run when it must be found by running)."""
        return self._backend.layer_name

    def __call__(self, images, targets=None) -> np.ndarray:
        return self.compute(images, targets).maps

    def compute(self, images, targets=None) -> CAMResult:
        """Maps for ``images``; ``targets`` is None (each image's top class), one int for all
        images, or one int per image."""
        images = self._backend.prepare(images)
        wanted = _check_targets(targets, images.shape[0], self._backend.n_classes)
        use_gradients = self.method in methods.GRADIENT_METHODS
        activations, gradients, chosen, scores = self._backend.forward(images, wanted, gradients=use_gradients)
        if use_gradients:
            maps = methods.from_gradients(self.method, activations, gradients)
        elif self.method == "eigencam":
            maps = methods.eigencam(activations)
        else:
            masked = self._backend.masked_scores(images, activations, chosen, self.batch_size)
            maps = methods.scorecam(activations, masked)
        return CAMResult(maps=maps, targets=chosen.astype(np.int64), scores=scores,
                         layer=self.layer, method=self.method)


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


def explain_prediction(model, doc, targets=None, layer=None, method="gradcam", image=None, output=None):
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

    Returns
    -------
    CAMExplanation
        ``.image``, ``.heatmap``, ``.targets`` (``target``, ``score``, ``heatmap``),
        ``.method`` and ``.layer``.
    """
    if targets is not None:
        if isinstance(targets, Integral) and not isinstance(targets, bool):
            targets = [targets]
        if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__") or len(targets) == 0:
            raise TypeError(f"targets must be None or a non-empty list of class indices; got {targets!r}")
    cam = CAM(model, layer=layer, method=method, output=output)
    array = _as_numpy(doc)
    if array.ndim == 4 and array.shape[0] != 1:
        raise ValueError(f"doc must hold one image, shape (1, ...) ; got {array.shape}; "
                         f"use imgexplain.CAM for batches")
    picture = None if image is None else _given_picture(image)
    if targets is None:
        result = cam.compute(array)
        logger.info("Taking top prediction: %d", result.targets[0])
    else:
        result = cam.compute(np.repeat(array, len(targets), axis=0), list(targets))
    if picture is None:
        picture = _picture(array, channels_first=cam._backend.channels_first)
    maps = result.maps
    explained = [{"target": int(target), "score": float(score), "heatmap": heatmap}
                 for target, score, heatmap in zip(result.targets, result.scores, maps)]
    data = {"image": picture, "heatmap": maps[0], "targets": explained,
            "method": result.method, "layer": result.layer}
    meta = {"name": "CAM", "params": {"method": result.method, "layer": result.layer,
                                      "targets": targets, "output": output},
            "version": __version__}
    return CAMExplanation(meta=meta, data=data)


def show_prediction(model, doc, **kwargs):
    """:func:`explain_prediction` then :func:`imgexplain.render.format_as_image`; returns the picture.

    Keywords: ``targets``, ``layer``, ``method``, ``image``, ``output`` for the explanation;
    ``resampling_filter``, ``colormap``, ``alpha_limit`` for the picture.
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


def image_from_path(path, image_shape=(224, 224)) -> np.ndarray:
    """Load an image file as a ``(1, H, W, 3)`` float32 batch in 0..255.

    ``image_shape`` is ``(height, width)``; the image is resized with nearest-neighbour
    sampling (as Keras' ``load_img``), or kept as it is when ``image_shape`` is None.
    For PyTorch models, transpose to ``(1, 3, H, W)``.
    """
    if image_shape is not None:
        if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2
                or not all(isinstance(size, Integral) and not isinstance(size, bool) and size > 0
                           for size in image_shape)):
            raise ValueError(f"image_shape must be None or (height, width) positive ints; got {image_shape!r}")
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    if image_shape is not None:
        picture = picture.resize((int(image_shape[1]), int(image_shape[0])), resample=Image.NEAREST)
    return np.asarray(picture, dtype=np.float32)[None]
