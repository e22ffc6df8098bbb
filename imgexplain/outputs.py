"""Rules for a model's raw outputs, written once: what a probability is, the one-column sigmoid rule and the softmax.

A one-column output is a sigmoid probability p of class 1: the label is 1 exactly when p > 0.5, which is
also the argmax of the two columns (1 - p, p) that CAM and the class tables use (a tie goes to class 0).
Whether outputs are probabilities (0 <= p <= 1) is :func:`probability_mask`, written with operators only,
so that numpy arrays and the torch and TensorFlow tensors of the CAM backends use the one rule; this module
imports no framework.
"""
from __future__ import annotations

import numpy as np

SIGMOID_THRESHOLD = 0.5


def probability_mask(values):
    """Where ``values`` are probabilities, 0 <= v <= 1, element by element.

    Operators only: a numpy array gives a numpy array of bools, a torch or TensorFlow tensor a tensor of
    bools (the CAM backends reduce it in the framework, inside a traced function too).

    Examples
    --------
    >>> from imgexplain.outputs import probability_mask
    >>> probability_mask(np.array([-0.5, 0.0, 0.5, 1.0, 1.5]))
    array([False,  True,  True,  True, False])
    """
    return (values >= 0) & (values <= 1)


def are_probabilities(values) -> bool:
    """Whether every one of ``values`` is a probability (:func:`probability_mask`; True for none).

    Examples
    --------
    >>> from imgexplain.outputs import are_probabilities
    >>> are_probabilities([[0.2, 0.8]]), are_probabilities([[1.5, -1.5]]), are_probabilities(np.empty((0, 3)))
    (True, False, True)
    """
    return bool(np.all(probability_mask(np.asarray(values))))


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
