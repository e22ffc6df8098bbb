"""A model's output as classes: probabilities from scores, the top classes named or numbered, class names
from a file."""
from __future__ import annotations

import numpy as np

from imgexplain._files import read_limited
from imgexplain.predictor import PredictorError

# A labels file of more than this many bytes is not one (ImageNet's 1,000 names take 30 kB).
LABELS_LIMIT = 1 << 26


def probabilities(scores) -> np.ndarray:
    """(N, K) class probabilities from a model's (N, K) output.

    Rows of non-negative numbers that sum to 1 are kept; other outputs of two or more
    columns go through a softmax, which changes no prediction. One column must be a
    sigmoid probability p in [0, 1] and becomes two columns, (1 - p, p).

    Parameters
    ----------
    scores : (N, K) array-like
        The model's output.

    Returns
    -------
    (N, K) float64 ndarray
        ``(N, 2)`` for one column.

    Raises
    ------
    ValueError
        `scores` is not 2-D, or one column outside [0, 1].

    Examples
    --------
    >>> from imgexplain.classes import probabilities
    >>> probabilities([[0.25], [1.0]])
    array([[0.75, 0.25],
           [0.  , 1.  ]])
    >>> probabilities([[0.0, 0.0]])  # logits: a softmax
    array([[0.5, 0.5]])
    """
    from scipy.special import softmax

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise PredictorError(f"the model returned shape {scores.shape}; expected (N, n_classes)")
    if scores.shape[1] == 1:
        if scores.min() < 0 or scores.max() > 1:
            raise PredictorError(f"the model returned one column with values from {scores.min():g} to "
                             f"{scores.max():g}; one column must be a sigmoid probability in [0, 1]")
        return np.concatenate([1 - scores, scores], axis=1)
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    return softmax(scores, axis=1)


def top_indices(probs, top: int) -> np.ndarray:
    """Indices of the ``top`` largest probabilities, largest first (ties in index order)."""
    return np.argsort(-np.asarray(probs), kind="stable")[:top]


def numbered_classes(probs, top: int = 5) -> list[tuple[int, str, float]]:
    """The ``top`` classes of one row of probabilities, for models without class names.

    Parameters
    ----------
    probs : (K,) array-like
        One image's probabilities.
    top : int
        How many classes, best first.

    Returns
    -------
    list of (int, str, float)
        ``(class index, "class k", probability)``.

    Examples
    --------
    >>> from imgexplain.classes import numbered_classes
    >>> numbered_classes([0.1, 0.6, 0.3], top=2)
    [(1, 'class 1', 0.6), (2, 'class 2', 0.3)]
    """
    return [(int(k), f"class {k}", float(probs[k])) for k in top_indices(probs, top)]


def top_imagenet_classes(probs, top: int = 5) -> list[tuple[int, str, float]]:
    """The ``top`` ImageNet classes of one row of probabilities, named by ``zoo.decode_predictions``.

    Parameters
    ----------
    probs : (1000,) array-like
        One image's probabilities.
    top : int
        How many classes, best first.

    Returns
    -------
    list of (int, str, float)
        ``(class index, name, probability)``.

    Raises
    ------
    ValueError
        `probs` does not have 1000 classes, or as in :func:`imgexplain.zoo.decode_predictions`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.classes import top_imagenet_classes
    >>> probs = np.zeros(1000)
    >>> probs[281] = 1.0
    >>> top_imagenet_classes(probs, top=1)
    [(281, 'tabby', 1.0)]
    """
    from imgexplain import zoo

    decoded = zoo.decode_predictions(np.asarray(probs)[np.newaxis], top=top)[0]
    return [(int(k), name, float(p)) for k, (_, name, p) in zip(top_indices(probs, top), decoded)]


def read_labels(path) -> list[str]:
    """Class names from a text file, one a line (blank lines and surrounding spaces dropped).

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        The file cannot be read, or has no names.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imgexplain.classes import read_labels
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "labels.txt"
    ...     _ = path.write_text("cat\\n\\n  dog  \\n")
    ...     read_labels(path)
    ['cat', 'dog']
    """
    try:
        text = read_limited(path, LABELS_LIMIT).decode("utf-8")
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"cannot read the labels file {str(path)!r}: {error}") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ValueError(f"the labels file {str(path)!r} has no labels (expected one class name a line)")
    return labels
