"""Calling a user's predictor safely: private input arrays, validation of its outputs, labels from scores,
call counting, and batches bounded in bytes."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from imgexplain.outputs import sigmoid_labels

# The images built for one model call take at most this many bytes (with their temporaries).
MAX_BATCH_BYTES = 256 * 2**20


class PredictorError(RuntimeError):
    """The predictor raised, or returned something that is not a prediction for each image.

    A RuntimeError: the user's model failed or answered wrongly, while the arguments were right
    (those raise TypeError or ValueError before any model call).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import PredictorError
    >>> from imgexplain.evaluate import deletion_curve
    >>> def one_score_too_few(images):
    ...     return np.zeros((len(images) - 1, 2))
    >>> try:
    ...     deletion_curve(one_score_too_few, np.zeros((4, 4)), saliency=np.ones((4, 4)), target=0)
    ... except PredictorError as error:
    ...     print(type(error).__name__, isinstance(error, PredictorError))
    PredictorReturnTypeError True
    """


class PredictorCallError(PredictorError):
    """The predictor raised (alibi's exception of this name); the predictor's exception is its ``__cause__``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import AnchorImage, PredictorCallError
    >>> def wants_color(images):  # (N, H, W, 3) images only
    ...     return images.reshape(len(images), -1, 3).mean(axis=1)
    >>> try:
    ...     AnchorImage(wants_color, image_shape=(8, 8))
    ... except PredictorCallError as error:
    ...     print(type(error.__cause__).__name__)
    ValueError
    """


class PredictorReturnTypeError(PredictorError):
    """The predictor returned something other than one label or score row per image (alibi's exception of
    this name).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import AnchorImage, PredictorReturnTypeError
    >>> def one_number(images):
    ...     return 0.5
    >>> try:
    ...     AnchorImage(one_number, image_shape=(8, 8, 3))
    ... except PredictorReturnTypeError as error:
    ...     print(error)
    predictor 'one_number' returned shape () for 1 images; expected (1,) labels or (1, n_classes) scores
    """


def check_predictor(predictor: Any) -> Callable:
    """Return ``predictor`` if it can be called, else raise TypeError."""
    if not callable(predictor):
        raise TypeError(f"predictor must be callable; got {type(predictor).__name__}")
    return predictor


def rows_per_batch(bytes_per_row: int) -> int:
    """How many rows of ``bytes_per_row`` bytes fit in :data:`MAX_BATCH_BYTES` (at least one)."""
    return max(1, MAX_BATCH_BYTES // max(1, int(bytes_per_row)))


def predictor_name(predictor: Callable) -> str:
    """The name error messages give the predictor: its qualified name, or its type's name."""
    return getattr(predictor, "__qualname__", None) or type(predictor).__name__


def call_predictor(predictor: Callable, images: np.ndarray, *, fresh: bool = False):
    """``predictor(images)`` on an array the predictor may modify in place, its exceptions as PredictorError.

    The predictor gets a copy of ``images`` unless ``fresh`` says that ``images`` is a new array nobody else
    holds, so a predictor that writes to its input (``x /= 255``) cannot change the caller's data.
    """
    batch = np.asarray(images) if fresh else np.array(images)
    try:
        return predictor(batch)
    except Exception as error:
        raise PredictorCallError(f"predictor {predictor_name(predictor)!r} raised {type(error).__name__} on a "
                                 f"batch of shape {batch.shape} and dtype {batch.dtype}: {error}") from error


def call_scores(predictor: Callable, batch: np.ndarray, fresh: bool = False) -> np.ndarray:
    """The predictor's ``(N, K)`` scores of ``batch`` (see :func:`call_predictor`); PredictorError when it
    raises or returns anything else."""
    output = np.asarray(call_predictor(check_predictor(predictor), batch, fresh=fresh))
    n, name = len(batch), predictor_name(predictor)
    if output.ndim != 2 or output.shape[0] != n or output.shape[1] == 0:
        raise PredictorReturnTypeError(f"predictor {name!r} must return ({n}, K) scores for {n} images; "
                                       f"got shape {output.shape}")
    if not np.issubdtype(output.dtype, np.number) or not np.all(np.isfinite(output)):
        raise PredictorReturnTypeError(f"predictor {name!r} returned non-numeric or non-finite scores")
    return output


class LabelPredictor:
    """Wrap ``predictor`` so that it returns one integer label per image, and count its use.

    Accepted outputs: (N,) integer labels; (N, K >= 2) scores whose argmax is the label; (N, 1) a sigmoid
    score in [0, 1], thresholded at 0.5. Anything else is a :class:`PredictorError` naming the predictor.
    """

    def __init__(self, predictor: Callable, input_shape: tuple[int, ...], dtype: type):
        self.predictor = predictor
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        self.n_calls = 0
        self.n_images = 0

    @property
    def name(self) -> str:
        return predictor_name(self.predictor)

    def __call__(self, images: np.ndarray, *, fresh: bool = False) -> np.ndarray:
        """Labels of ``images``; the predictor gets a private copy unless ``fresh`` (see :func:`call_predictor`)."""
        batch = np.asarray(images, dtype=self.dtype).reshape((len(images),) + self.input_shape)
        fresh = fresh or not np.may_share_memory(batch, images)  # a cast to dtype already copied
        output = call_predictor(self.predictor, batch, fresh=fresh)
        self.n_calls += 1
        self.n_images += len(batch)
        return labels_from_output(output, len(batch), self.name)


def probe_predictor(predictor: Any, input_shape: tuple[int, ...], dtype: type) -> LabelPredictor:
    """Call ``predictor`` once on a zero image of ``input_shape`` and ``dtype``, as alibi's explainers do when
    they are built, and return it as a :class:`LabelPredictor`.

    Raises
    ------
    TypeError
        `predictor` is not callable.
    PredictorCallError
        The predictor raised on the zero image (often a wrong ``image_shape`` or ``dtype``).
    PredictorReturnTypeError
        It returned anything but a label or a score row for the image.
    """
    labels = LabelPredictor(check_predictor(predictor), input_shape, dtype)
    zeros = np.zeros((1,) + labels.input_shape, dtype=labels.dtype)
    try:
        labels(zeros, fresh=True)
    except PredictorCallError as error:
        raise PredictorCallError(f"{error} (called on zeros of shape {zeros.shape} when the explainer was built: "
                                 "check that image_shape and dtype are what the predictor expects)"
                                 ) from error.__cause__
    return labels


def labels_from_output(output, n_images: int, name: str = "predictor") -> np.ndarray:
    """Turn a predictor's output for ``n_images`` images into (n_images,) integer labels, or raise."""
    try:
        output = np.asarray(output)
    except Exception as error:
        raise PredictorReturnTypeError(f"predictor {name!r} returned {type(output).__name__}, not an array") from error
    if output.dtype.kind not in "biuf":
        raise PredictorReturnTypeError(f"predictor {name!r} returned dtype {output.dtype}; expected numbers")
    if output.ndim not in (1, 2) or output.shape[0] != n_images or (output.ndim == 2 and output.shape[1] == 0):
        raise PredictorReturnTypeError(f"predictor {name!r} returned shape {output.shape} for {n_images} images; "
                                       f"expected ({n_images},) labels or ({n_images}, n_classes) scores")
    if output.dtype.kind == "f" and not np.all(np.isfinite(output)):
        raise PredictorReturnTypeError(f"predictor {name!r} returned NaN or infinite values")
    if output.ndim == 1:
        if output.dtype.kind == "f" and not np.all(output == np.round(output)):
            raise PredictorReturnTypeError(f"predictor {name!r} returned shape ({n_images},) with non-integer "
                                           "values; a 1-D output must be class labels (use (N, 1) for a sigmoid score)")
        return output.astype(np.int64)
    if output.shape[1] == 1:
        if np.any(output < 0) or np.any(output > 1):
            raise PredictorReturnTypeError(f"predictor {name!r} returned shape ({n_images}, 1) with values "
                                           "outside [0, 1]; a single column must be a sigmoid probability")
        return sigmoid_labels(output[:, 0])
    return np.argmax(output, axis=1).astype(np.int64)


def __getattr__(name):
    """``from_onnx`` and ``from_torch``, fast predictors for users' models, from their backends."""
    if name == "from_onnx":
        from imgexplain.backends.onnx import from_onnx

        return from_onnx
    if name == "from_torch":
        from imgexplain.backends.torch.runtime import from_torch

        return from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
