"""Rules for a model's raw outputs, written once: the one-column sigmoid rule and the softmax.

A one-column output is a sigmoid probability p of class 1: the label is 1 exactly when p > 0.5, which is
also the argmax of the two columns (1 - p, p) that CAM and the class tables use (a tie goes to class 0).
"""
from __future__ import annotations

import numpy as np

SIGMOID_THRESHOLD = 0.5


def sigmoid_labels(probabilities) -> np.ndarray:
    """Labels (0 or 1, int64) of sigmoid probabilities: 1 where p > :data:`SIGMOID_THRESHOLD`.

    Examples
    --------
    >>> from imgexplain.outputs import sigmoid_labels
    >>> sigmoid_labels([0.2, 0.5, 0.7])
    array([0, 0, 1])
    """
    return (np.asarray(probabilities) > SIGMOID_THRESHOLD).astype(np.int64)


def softmax(scores, axis: int = -1) -> np.ndarray:
    """The softmax of ``scores`` along ``axis`` (shifted by the maximum, so large scores do not overflow).

    Examples
    --------
    >>> from imgexplain.outputs import softmax
    >>> softmax(np.array([[1000.0, 1000.0]]))
    array([[0.5, 0.5]])
    """
    exponentials = np.exp(scores - np.max(scores, axis=axis, keepdims=True))
    return exponentials / exponentials.sum(axis=axis, keepdims=True)


def log_softmax(scores, axis: int = -1) -> np.ndarray:
    """The logarithm of :func:`softmax`, computed without forming it.

    Examples
    --------
    >>> from imgexplain.outputs import log_softmax
    >>> np.exp(log_softmax(np.array([0.0, 0.0])))
    array([0.5, 0.5])
    """
    shifted = scores - np.max(scores, axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
