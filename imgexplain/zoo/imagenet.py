"""The ImageNet class index and Keras-style ``decode_predictions``.

The index ships with imgexplain (``imagenet_classes.json``), so nothing is downloaded.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np

from imgexplain._checks import check_int

N_CLASSES = 1000


class ImageNetClass(NamedTuple):
    """One ImageNet class: its WordNet id, short name (as Keras reports it) and all synonyms.

    Examples
    --------
    >>> from imgexplain.zoo import imagenet_class_index
    >>> tabby = imagenet_class_index()[281]
    >>> tabby.wnid, tabby.name
    ('n02123045', 'tabby')
    """

    wnid: str
    name: str
    synonyms: str


@lru_cache(maxsize=1)
def imagenet_class_index() -> tuple[ImageNetClass, ...]:
    """The 1000 ImageNet classes in the models' output order, as a tuple of `ImageNetClass`.

    Read once from the file that ships with imgexplain, then cached.

    Returns
    -------
    tuple of ImageNetClass
        1000 classes; entry ``k`` is the class of output ``k``.

    Examples
    --------
    >>> from imgexplain.zoo import imagenet_class_index
    >>> len(imagenet_class_index())
    1000
    >>> imagenet_class_index()[285]
    ImageNetClass(wnid='n02124075', name='Egyptian_cat', synonyms='Egyptian cat')
    """
    text = resources.files("imgexplain.zoo").joinpath("imagenet_classes.json").read_text(encoding="utf-8")
    return tuple(ImageNetClass(*entry) for entry in json.loads(text)["classes"])


def decode_predictions(probs: np.ndarray, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The `top` most probable classes of each row of `probs`, as Keras' ``decode_predictions`` does.

    Parameters
    ----------
    probs : array-like of shape (N, 1000)
        Class scores, e.g. the output of a zoo model's ``predictor``.
    top : int
        How many classes to report per image, best first.

    Returns
    -------
    list of list of (str, str, float)
        For each image, its `top` ``(wnid, name, probability)`` tuples, probability a Python float.

    Raises
    ------
    TypeError
        `probs` does not hold real numbers.
    ValueError
        `probs` is not (N, 1000) or holds NaN; `top` is not an int in 1..1000.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.zoo import decode_predictions
    >>> probs = np.zeros((1, 1000))
    >>> probs[0, [281, 285]] = 0.7, 0.2
    >>> decode_predictions(probs, top=2)
    [[('n02123045', 'tabby', 0.7), ('n02124075', 'Egyptian_cat', 0.2)]]
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != N_CLASSES:
        raise ValueError(f"probs must have shape (N, {N_CLASSES}) (one row of ImageNet class scores per "
                         f"image); got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.number) or np.issubdtype(probs.dtype, np.complexfloating):
        raise TypeError(f"probs must hold real numbers; got dtype {probs.dtype}")
    if np.isnan(probs).any():
        raise ValueError("probs contains NaN")
    top = check_int(top, "top", 1, N_CLASSES)
    classes = imagenet_class_index()
    best = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [[(classes[k].wnid, classes[k].name, float(row[k])) for k in order]
            for row, order in zip(probs, best)]
