"""One image's output as a TensorFlow tensor: what the CAM targets (:mod:`imgexplain.targets`) compute on it."""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def tensor_sum(value: tf.Tensor) -> tf.Tensor:
    """The sum of all of ``value``'s elements."""
    return tf.reduce_sum(value)


def tensor_softmax(value: tf.Tensor) -> tf.Tensor:
    """The softmax over the last axis."""
    return tf.nn.softmax(value, axis=-1)


def tensor_mask(mask: np.ndarray, like: tf.Tensor) -> tf.Tensor:
    """``mask`` as a tensor of the dtype of ``like``."""
    return tf.cast(mask, like.dtype)


def tensor_numpy(value: tf.Tensor) -> np.ndarray:
    """``value``'s numbers as a numpy array."""
    return np.asarray(value)
