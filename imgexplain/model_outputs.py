"""A model's outputs as the CAM backends see them: choosing the output to explain, recognising token outputs
and scoring targets, for any framework (numpy; the bottom layer, below the backends and imgexplain.cam)."""
from __future__ import annotations

import math

import numpy as np

from imgexplain._checks import check_class_range
from imgexplain.outputs import are_probabilities

# A token output may carry this many class, distillation or register tokens before its patches.
MAX_EXTRA_TOKENS = 8


def select_output(outputs, output):
    """The one output tensor to explain, from a model with one or several outputs."""
    several = isinstance(outputs, (list, tuple, dict))
    if output is None:
        if several and len(outputs) != 1:
            keys = list(outputs) if isinstance(outputs, dict) else list(range(len(outputs)))
            raise ValueError(f"the model has {len(outputs)} outputs; choose one with output= "
                             f"(one of {keys})")
        if several:
            return next(iter(outputs.values())) if isinstance(outputs, dict) else outputs[0]
        return outputs
    if not several:
        raise ValueError(f"output={output!r} was given but the model has a single output")
    try:
        return outputs[output]
    except (KeyError, IndexError, TypeError):
        keys = list(outputs) if isinstance(outputs, dict) else list(range(len(outputs)))
        raise ValueError(f"output must be one of {keys}; got {output!r}") from None


def check_target_range(targets, n_classes):
    """Raise if any of the integer array ``targets`` is not a class of an ``n_classes`` output.
    A one-output (sigmoid) model has two classes: 1 is its output, 0 the complement."""
    check_class_range(targets, 2 if n_classes == 1 else n_classes)


def token_grid(shape):
    """``(extra, side)`` when ``shape`` is a token output ``(N, extra + side**2, C)`` of a
    vision transformer (``side >= 3``, at most :data:`MAX_EXTRA_TOKENS` extra tokens first),
    else None."""
    if shape is None or len(shape) != 3 or shape[1] is None:
        return None
    for extra in range(min(MAX_EXTRA_TOKENS, shape[1]) + 1):
        side = math.isqrt(shape[1] - extra)
        if side >= 3 and side * side == shape[1] - extra:
            return extra, side
    return None


def check_score(target, score):
    """The value a callable target returned must be a single number."""
    size = getattr(score, "size", None)
    size = size if isinstance(size, int) else int(np.prod(getattr(score, "shape", ()) or (1,)))
    if size != 1:
        raise ValueError(f"target {target!r} must return one number per image; got shape "
                         f"{tuple(getattr(score, 'shape', ()))}")


def call_target(target, row):
    """``target(row)``, checked: ValueError naming the target when it raises or returns other than one number."""
    try:
        score = target(row)
    except Exception as error:
        name = getattr(target, "__qualname__", None) or repr(target)
        raise ValueError(f"target {name} raised {type(error).__name__} on an output row of shape "
                         f"{tuple(getattr(row, 'shape', ()))}: {error}") from error
    check_score(target, score)
    return score


def scores_of(outputs, chosen, targets):
    """Target scores ``(N,)`` of numpy ``outputs``: ``targets`` is a list of callables, or None
    for the class indices ``chosen`` (on one-output models, class 0 is the complement)."""
    if targets is not None:
        scores = []
        for target, row in zip(targets, outputs):
            score = call_target(target, row)
            scores.append(float(np.asarray(score).reshape(())))
        return np.asarray(scores, dtype=np.float32)
    if outputs.shape[1] == 1:
        column = outputs[:, 0]
        complement = 1 - column if are_probabilities(column) else -column
        return np.where(chosen == 1, column, complement).astype(np.float32)
    return outputs[np.arange(len(outputs)), chosen].astype(np.float32)
