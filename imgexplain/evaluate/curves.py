"""Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018).

Remove (or insert) pixels or superpixels from the most to the least salient and follow the target's
score; the area under the curve summarises it. A faithful saliency makes the deletion curve fall fast
(low AUC) and the insertion curve rise fast (high AUC).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_class_index, check_finite, check_image, check_positive_int
from imgexplain.predictor import call_scores, rows_per_batch

__all__ = ["BASELINES", "Curve", "deletion_curve", "insertion_curve"]

BASELINES = ("zeros", "blur", "mean")


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve.

    ``fractions[i]`` is the fraction of the image's pixels removed (deletion) or
    inserted (insertion) at step ``i``, from 0 to 1; ``scores[i]`` is the model's
    output for ``target`` on that image.

    Attributes
    ----------
    kind : {"deletion", "insertion"}
    fractions : ndarray of float
        From 0 to 1, increasing.
    scores : ndarray of float
        The target's score at each fraction.
    target : int
        The output column followed.
    baseline : str
        ``"zeros"``, ``"blur"``, ``"mean"``, ``"constant"`` or ``"image"``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.evaluate import Curve
    >>> curve = Curve(kind="deletion", fractions=np.array([0.0, 0.5, 1.0]),
    ...               scores=np.array([1.0, 0.5, 0.0]), target=3, baseline="zeros")
    >>> curve.auc
    0.5
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    target: int
    baseline: str

    @property
    def auc(self) -> float:
        """Area under the curve (trapezoidal rule over ``fractions``), a float."""
        return float(np.trapezoid(self.scores, self.fractions))


def deletion_curve(predictor: Callable, image: np.ndarray, saliency: np.ndarray, target: int | None = None,
                   steps: int = 50, baseline: str | float | np.ndarray = "zeros",
                   segments: np.ndarray | None = None, batch_size: int = 32, seed: int | None = None) -> Curve:
    """Replace pixels by the baseline from the most to the least salient and follow the target's score.

    Parameters
    ----------
    predictor : callable
        ``(N, *image.shape) -> (N, K)`` scores (probabilities).
    image : ndarray, (H, W) or (H, W, C)
        The explained image, as the predictor takes it.
    saliency : ndarray
        A 2-D map (any resolution: a smaller one, such as a class activation map, is
        resized bilinearly to ``(H, W)``), or, with ``segments``, one score per superpixel.
    target : int, optional
        The output column to follow; by default the predicted class of ``image``
        (one extra model call).
    steps : int
        Number of steps from nothing to everything removed; the curve has ``steps + 1``
        points (fewer when there are fewer pixels or superpixels than steps).
    baseline : {"zeros", "blur", "mean"}, number or ndarray
        What removed pixels become: zeros, the image blurred by a Gaussian of sigma 5%
        of its larger side, the image's mean colour, a constant, or an image of the
        same shape. RISE uses zeros for deletion.
    segments : ndarray of int, (H, W), optional
        Superpixel labels: remove whole superpixels, ranked by their saliency (a 2-D
        map is averaged over each superpixel; a 1-D saliency gives one score per label,
        in sorted label order). The x axis stays the fraction of pixels.
    batch_size : int
        Images per model call; fewer when that many would take more than
        ``imgexplain.predictor.MAX_BATCH_BYTES``. The predictor may modify its input.
    seed : int, optional
        Breaks ties between equally salient units at random, reproducibly.

    Returns
    -------
    Curve
        ``fractions`` of the pixels removed, the target's ``scores`` there, and their ``auc``.

    Raises
    ------
    ValueError
        For a wrong image, saliency, segments, baseline, target or count, before any model call.
    TypeError
        When ``saliency`` or ``image`` is not real-valued, or ``target``, ``steps`` or ``batch_size``
        is not an int.
    imgexplain.predictor.PredictorError
        When the predictor raises, or returns anything but finite ``(N, K)`` scores.

    See Also
    --------
    insertion_curve

    Examples
    --------
    The top half of the image is bright; a saliency that points at it makes the score of "bright"
    fall at once:

    >>> import numpy as np
    >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
    ...     bright = images.reshape(len(images), -1).mean(axis=1)
    ...     return np.stack([1 - bright, bright], axis=1)
    >>> from imgexplain.evaluate import deletion_curve
    >>> image = np.zeros((4, 4))
    >>> image[:2] = 1.0
    >>> curve = deletion_curve(predictor, image, saliency=image, target=1, steps=4)
    >>> curve.fractions, curve.scores
    (array([0.  , 0.25, 0.5 , 0.75, 1.  ]), array([0.5 , 0.25, 0.  , 0.  , 0.  ]))
    >>> curve.auc
    0.125
    """
    return _curve("deletion", predictor, image, saliency, target, steps, baseline, segments,
                  batch_size, seed)


def insertion_curve(predictor: Callable, image: np.ndarray, saliency: np.ndarray, target: int | None = None,
                    steps: int = 50, baseline: str | float | np.ndarray = "blur",
                    segments: np.ndarray | None = None, batch_size: int = 32, seed: int | None = None) -> Curve:
    """Start from the baseline and insert the image's pixels from the most to the least salient.

    Parameters
    ----------
    predictor, image, saliency, target, steps, segments, batch_size, seed :
        As in :func:`deletion_curve`.
    baseline : {"zeros", "blur", "mean"}, number or ndarray
        What the pixels not yet inserted are; RISE uses a blurred image, the default here.

    Returns
    -------
    Curve
        ``fractions`` of the pixels inserted, the target's ``scores`` there, and their ``auc``.

    Raises
    ------
    ValueError, TypeError, imgexplain.predictor.PredictorError
        As :func:`deletion_curve`.

    Examples
    --------
    >>> import numpy as np
    >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
    ...     bright = images.reshape(len(images), -1).mean(axis=1)
    ...     return np.stack([1 - bright, bright], axis=1)
    >>> from imgexplain.evaluate import insertion_curve
    >>> image = np.zeros((4, 4))
    >>> image[:2] = 1.0
    >>> curve = insertion_curve(predictor, image, saliency=image, target=1, steps=4, baseline="zeros")
    >>> curve.scores, curve.auc
    (array([0.  , 0.25, 0.5 , 0.5 , 0.5 ]), 0.375)
    """
    return _curve("insertion", predictor, image, saliency, target, steps, baseline, segments,
                  batch_size, seed)


def _curve(kind: str, predictor: Callable, image: Any, saliency: Any, target: Any, steps: Any, baseline: Any,
           segments: Any, batch_size: Any, seed: Any) -> Curve:
    image = check_image(image)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    target = check_class_index(target, "target", allow_none=True)
    unit_of_pixel, unit_scores, unit_areas = _units(saliency, image.shape[:2], segments)
    fill, baseline_name = _baseline(image, baseline)

    rng = np.random.default_rng(seed)
    n_units = len(unit_scores)
    order = np.lexsort((rng.permutation(n_units), -unit_scores))
    rank = np.empty(n_units, dtype=np.int64)
    rank[order] = np.arange(n_units)
    pixel_rank = rank[unit_of_pixel]
    counts = np.unique(np.round(np.linspace(0, n_units, steps + 1)).astype(np.int64))
    covered = np.concatenate([[0.0], np.cumsum(unit_areas[order])])[counts] / unit_areas.sum()

    if target is None:
        target = int(np.argmax(call_scores(predictor, image[None])[0]))
    fill = fill.astype(image.dtype, copy=False)
    per_call = min(batch_size, rows_per_batch(image.nbytes + pixel_rank.size))
    scores = []
    for start in range(0, len(counts), per_call):
        chunk = counts[start:start + per_call]
        changed = pixel_rank[None] < chunk[:, None, None]
        if image.ndim == 3:
            changed = changed[..., None]
        if kind == "deletion":
            batch = np.where(changed, fill[None], image[None])
        else:
            batch = np.where(changed, image[None], fill[None])
        output = call_scores(predictor, batch, fresh=True)
        if target >= output.shape[1]:
            raise ValueError(f"target {target} is out of range for a predictor with "
                             f"{output.shape[1]} outputs")
        scores.append(output[:, target])
    return Curve(kind=kind, fractions=covered, scores=np.concatenate(scores).astype(float),
                 target=int(target), baseline=baseline_name)


def resized(saliency: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``saliency`` as floats of ``shape``, resized bilinearly when it has another shape."""
    if saliency.shape == tuple(shape):
        return saliency.astype(float)
    from skimage.transform import resize

    return resize(saliency.astype(float), shape, order=1, mode="edge", anti_aliasing=False)


def _units(saliency: Any, shape: tuple[int, int],
           segments: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (or superpixels) as units: unit of each pixel, score and area of each unit."""
    saliency = np.asarray(saliency)
    if not np.issubdtype(saliency.dtype, np.number) or np.iscomplexobj(saliency):
        raise TypeError(f"saliency must be a real-valued array; got dtype {saliency.dtype}")
    if segments is None:
        if saliency.ndim != 2:
            raise ValueError(f"saliency must be a 2-D map; got shape {saliency.shape}")
        saliency = resized(saliency, shape)
        check_finite(saliency, "saliency")
        n_pixels = shape[0] * shape[1]
        return (np.arange(n_pixels).reshape(shape), saliency.ravel().astype(float),
                np.ones(n_pixels))

    segments = np.asarray(segments)
    if segments.shape != shape or not np.issubdtype(segments.dtype, np.integer):
        raise ValueError(f"segments must be an integer array of shape {shape}; "
                         f"got {segments.dtype} array of shape {segments.shape}")
    labels, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(shape)
    areas = np.bincount(inverse.ravel(), minlength=len(labels)).astype(float)
    if saliency.ndim == 1:
        if len(saliency) != len(labels):
            raise ValueError(f"saliency must have one score per superpixel ({len(labels)}); "
                             f"got {len(saliency)}")
        unit_scores = saliency.astype(float)
    elif saliency.ndim == 2:
        pixel_scores = resized(saliency, shape)
        unit_scores = np.bincount(inverse.ravel(), weights=pixel_scores.ravel()) / areas
    else:
        raise ValueError(f"saliency must be a 2-D map or one score per superpixel; "
                         f"got shape {saliency.shape}")
    check_finite(unit_scores, "saliency")
    return inverse, unit_scores, areas


def _baseline(image: np.ndarray, baseline: Any) -> tuple[np.ndarray, str]:
    """The fill image of ``baseline`` and the baseline's name."""
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(image, dtype=float), baseline
        if baseline == "mean":
            mean = image.reshape(-1, image.shape[2]).mean(axis=0) if image.ndim == 3 else image.mean()
            return np.broadcast_to(mean, image.shape).astype(float), baseline
        if baseline == "blur":
            from skimage.filters import gaussian

            sigma = 0.05 * max(image.shape[:2])
            blurred = gaussian(image.astype(float), sigma=sigma, preserve_range=True,
                               channel_axis=-1 if image.ndim == 3 else None)
            return blurred, baseline
        raise ValueError(f"baseline must be one of {BASELINES}, a number or an image; "
                         f"got {baseline!r}")
    if isinstance(baseline, Real):
        return np.full(image.shape, float(baseline)), "constant"
    fill = np.asarray(baseline)
    if fill.shape != image.shape or not np.issubdtype(fill.dtype, np.number):
        raise ValueError(f"a baseline image must be numeric with the image's shape {image.shape}; "
                         f"got {fill.dtype} array of shape {fill.shape}")
    check_finite(fill, "baseline")
    return fill.astype(float), "image"
