"""What a class activation map explains: callables on one image's model output.

A target is any callable that takes one image's output (a row ``(n_classes,)`` of a
classifier, ``(C, H, W)`` or ``(H, W, C)`` of a segmentation model, ...) and returns the
scalar to explain, as in pytorch-grad-cam. Pass one per image, or one for all images, as
``targets=`` of :class:`imgexplain.CAM`. The output is a torch tensor, a TensorFlow tensor
or, for masked passes run by a ``forward=`` callable, a numpy array; the targets here
work on all three.
"""
from __future__ import annotations

import numpy as np

from imgexplain._checks import check_class_index
from imgexplain.backends import tensor_backend

__all__ = ["ClassScore", "ClassProbability", "SegmentationRegion", "RegressionOutput"]


def _total(value):
    backend = tensor_backend(value)
    return np.sum(value) if backend is None else backend.tensor_sum(value)


def _softmax(value):
    backend = tensor_backend(value)
    if backend is not None:
        return backend.tensor_softmax(value)
    shifted = np.exp(value - np.max(value, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class ClassScore:
    """The model's output for class ``category`` as it is (a logit, or a probability when
    the model ends in a softmax)."""

    def __init__(self, category):
        self.category = check_class_index(category, "category")

    def __call__(self, output):
        return output[..., self.category]

    def __repr__(self):
        return f"ClassScore({self.category})"


class ClassProbability:
    """The softmax probability of class ``category``, for models that output logits."""

    def __init__(self, category):
        self.category = check_class_index(category, "category")

    def __call__(self, output):
        return _softmax(output)[..., self.category]

    def __repr__(self):
        return f"ClassProbability({self.category})"


class SegmentationRegion:
    """The sum of class ``category``'s output over the pixels where ``mask`` is true, for a
    segmentation model whose output is ``(C, H, W)`` (PyTorch) or ``(H, W, C)`` (Keras)
    per image, with ``mask`` of shape ``(H, W)``."""

    def __init__(self, category, mask):
        self.category = check_class_index(category, "category")
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be a 2-D (H, W) array; got shape {mask.shape}")
        self.mask = mask.astype(np.float32)

    def __call__(self, output):
        shape = tuple(output.shape)
        if len(shape) == 3 and shape[1:] == self.mask.shape:
            plane = output[self.category]
        elif len(shape) == 3 and shape[:2] == self.mask.shape:
            plane = output[..., self.category]
        else:
            raise ValueError(f"a segmentation output of one image must be (C, H, W) or (H, W, C) with "
                             f"(H, W) = the mask's {self.mask.shape}; got {shape}")
        backend = tensor_backend(output)
        mask = self.mask if backend is None else backend.tensor_mask(self.mask, plane)
        return _total(plane * mask)

    def __repr__(self):
        return f"SegmentationRegion({self.category}, mask of shape {self.mask.shape})"


class RegressionOutput:
    """A regression model's output ``index`` (None: the sum of all its outputs)."""

    def __init__(self, index=None):
        self.index = None if index is None else check_class_index(index, "index")

    def __call__(self, output):
        return _total(output) if self.index is None else output[..., self.index]

    def __repr__(self):
        return f"RegressionOutput({self.index})"
