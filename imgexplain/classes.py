"""A model's output as classes: probabilities from scores, the top classes named or numbered, class names
from a file."""
from __future__ import annotations

import numpy as np

from imgexplain._files import read_limited
from imgexplain.outputs import are_probabilities, softmax
from imgexplain.predictor import PredictorError

# A labels file of more than this many bytes is not one (ImageNet's 1,000 names take 30 kB).
LABELS_LIMIT = 1 << 26


def probabilities(scores, multilabel: bool | None = None) -> np.ndarray:
    """(N, K) class probabilities from a model's (N, K) output.

    Outputs of two or more columns in [0, 1] are kept as they are: rows that sum to 1 are the
    probabilities of exclusive classes, rows that do not are independent probabilities of several labels
    (a multi-label model's sigmoids), never softmaxed. Outputs outside [0, 1] go through a softmax, which
    changes no prediction. One column must be a sigmoid probability p in [0, 1] and becomes two columns,
    (1 - p, p).

    Parameters
    ----------
    scores : (N, K) array-like
        The model's output.
    multilabel : bool or None
        True: the columns are independent probabilities (each must lie in [0, 1]); False: scores of
        exclusive classes (rows that do not sum to 1 go through a softmax); None: decided as above.

    Returns
    -------
    (N, K) float64 ndarray
        ``(N, 2)`` for one column.

    Raises
    ------
    TypeError
        `multilabel` is not None or a bool.
    PredictorError
        `scores` is not 2-D, one column outside [0, 1], or values outside [0, 1] with
        ``multilabel=True``.

    Examples
    --------
    >>> from imgexplain.classes import probabilities
    >>> probabilities([[0.25], [1.0]])
    array([[0.75, 0.25],
           [0.  , 1.  ]])
    >>> probabilities([[1.5, -1.5]]).round(3)  # logits: a softmax
    array([[0.953, 0.047]])
    >>> probabilities([[0.77, 0.69, 0.62]])  # three sigmoids: kept
    array([[0.77, 0.69, 0.62]])
    """
    if multilabel is not None and not isinstance(multilabel, (bool, np.bool_)):
        raise TypeError(f"multilabel must be None, True or False; got {multilabel!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise PredictorError(f"the model returned shape {scores.shape}; expected (N, n_classes)")
    in_unit_range = are_probabilities(scores)
    if scores.shape[1] == 1:
        if not in_unit_range:
            raise PredictorError(f"the model returned one column with values from {scores.min():g} to "
                                 f"{scores.max():g}; one column must be a sigmoid probability in [0, 1]")
        return np.concatenate([1 - scores, scores], axis=1)
    if multilabel and not in_unit_range:
        raise PredictorError(f"multilabel: the model returned values from {scores.min():g} to {scores.max():g}; "
                             "independent probabilities must lie in [0, 1]")
    if multilabel is False and not sums_to_one(scores):
        return softmax(scores, axis=1)
    return scores if in_unit_range else softmax(scores, axis=1)


def sums_to_one(probs) -> bool:
    """Whether every row of non-negative ``probs`` sums to 1 (within 1e-3): exclusive classes.

    Parameters
    ----------
    probs : (N, K) array-like

    Returns
    -------
    bool

    Examples
    --------
    >>> from imgexplain.classes import sums_to_one
    >>> sums_to_one([[0.2, 0.8]]), sums_to_one([[0.77, 0.69, 0.62]])
    (True, False)
    """
    probs = np.asarray(probs, dtype=np.float64)
    return bool(probs.min(initial=0) >= 0 and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-3))


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
