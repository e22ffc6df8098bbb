"""Anchor metrics: an anchor's precision measured on fresh perturbed samples (to check the precision
an explainer claims), and an anchor as a saliency for the deletion and insertion curves."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_image, check_number, check_positive_int
from imgexplain.predictor import LabelPredictor, check_predictor, rows_per_batch
from imgexplain.segmentation import superpixel_means

__all__ = ["saliency_from_anchor", "anchor_precision"]


def saliency_from_anchor(explanation: Any) -> np.ndarray:
    """One score per superpixel from an anchor: the first superpixel added ranks highest.

    Scores follow the sorted superpixel labels, as curves with ``segments`` expect.
    Superpixels outside the anchor score 0, so a curve over them breaks ties at random.
    Use with ``segments=explanation.segments``.

    Parameters
    ----------
    explanation : Explanation or mapping
        Needs ``segments`` and ``raw["feature"]`` (the anchor's superpixel ids, in the order added).

    Returns
    -------
    ndarray of float, (n_superpixels,)
        ``len(anchor)`` for the first superpixel added, down to 1 for the last; 0 outside the anchor.

    Raises
    ------
    ValueError
        When the explanation lacks segments or the anchor, or names superpixels its segments lack.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.evaluate import saliency_from_anchor
    >>> segments = np.array([[0, 0, 1, 1], [2, 2, 2, 2]])
    >>> saliency_from_anchor({"segments": segments, "raw": {"feature": [2, 0]}})
    array([1., 0., 2.])
    """
    segments, anchor = _anchor_parts(explanation)
    labels = np.unique(segments)
    scores = np.zeros(len(labels))
    scores[np.searchsorted(labels, anchor)] = np.arange(len(anchor), 0, -1)
    return scores


def anchor_precision(predictor: Callable, image: np.ndarray, explanation: Any, n: int = 1000,
                     seed: int | None = None, p_sample: float | None = None,
                     images_background: np.ndarray | None = None, batch_size: int = 100) -> dict:
    """Measure an anchor's precision on ``n`` fresh perturbed samples.

    Each superpixel outside the anchor is perturbed with probability ``p_sample``
    (replaced by its mean colour, or by the same pixels of a randomly drawn
    ``images_background`` image), the anchor's superpixels are kept, and the precision
    is the fraction of samples whose predicted class is that of ``image``.

    Parameters
    ----------
    predictor : callable
        ``(N, *image.shape)`` images -> ``(N,)`` integer labels, ``(N, K)`` scores
        (argmax), or ``(N, 1)`` sigmoid scores (thresholded at 0.5).
    image : ndarray, (H, W) or (H, W, C)
    explanation : Explanation or mapping
        Needs ``segments`` and ``raw["feature"]`` (the anchor's superpixel ids);
        ``precision`` and ``meta["params"]["p_sample"]`` are used when present.
    n : int
        Number of fresh samples.
    seed : int, optional
        Makes the samples reproducible.
    p_sample : float, optional
        Defaults to the ``p_sample`` the explanation was made with.
    images_background : ndarray, optional
        ``(M, *image.shape)`` images whose pixels replace perturbed superpixels.
    batch_size : int
        Samples drawn at a time; they go to the model in calls of at most
        ``imgexplain.predictor.MAX_BATCH_BYTES``. The predictor may modify its input.

    Returns
    -------
    dict
        ``precision``, ``ci`` (95% Wilson interval), ``claimed_precision`` (or None),
        ``n``, ``label`` (the image's predicted class), ``anchor``, ``p_sample``.

    Raises
    ------
    TypeError
        When ``image`` is not numeric, ``n`` or ``batch_size`` not an int, or ``p_sample`` not a number.
    ValueError
        For a wrong image, explanation, count, ``p_sample`` or background, before any model call.
    imgexplain.predictor.PredictorError
        When the predictor raises, or returns anything but one label or score row per image.

    Examples
    --------
    Three quarters of the image are bright; the anchor keeps the top half, which is enough:

    >>> import numpy as np
    >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
    ...     bright = images.reshape(len(images), -1).mean(axis=1)
    ...     return np.stack([1 - bright, bright], axis=1)
    >>> from imgexplain.evaluate import anchor_precision
    >>> image = np.zeros((4, 4))
    >>> image[:3] = 1.0
    >>> segments = np.array([[0, 0, 1, 1]] * 2 + [[2, 2, 2, 2]] * 2)
    >>> explanation = {"segments": segments, "raw": {"feature": [0, 1]}}
    >>> result = anchor_precision(predictor, image, explanation, n=200, p_sample=0.5, seed=0)
    >>> result["precision"], result["label"], result["anchor"]
    (1.0, 1, [0, 1])
    """
    from scipy.stats import binomtest

    image = check_image(image)
    segments, anchor = _anchor_parts(explanation)
    if segments.shape != image.shape[:2]:
        raise ValueError(f"explanation segments must have the image's shape {image.shape[:2]}; "
                         f"got {segments.shape}")
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    if p_sample is None:
        p_sample = _meta_params(explanation).get("p_sample")
        if p_sample is None:
            raise ValueError("p_sample was not given and the explanation does not record it "
                             "in meta['params']['p_sample']")
    p_sample = check_number(p_sample, "p_sample", 0, 1)
    labels, inverse = np.unique(segments, return_inverse=True)
    inverse = inverse.reshape(segments.shape)
    anchor_columns = np.searchsorted(labels, anchor)
    if images_background is None:
        replacement = superpixel_means(image, inverse)
    else:
        replacement = np.asarray(images_background)
        if replacement.ndim != image.ndim + 1 or replacement.shape[1:] != image.shape:
            raise ValueError(f"images_background must have shape (M, *{image.shape}); "
                             f"got {replacement.shape}")

    replacement = replacement.astype(image.dtype, copy=False)
    predict_labels = LabelPredictor(check_predictor(predictor), image.shape, image.dtype)
    rng = np.random.default_rng(seed)
    original = predict_labels(image[None])[0]
    # A perturbed image, its pixel mask and, with backgrounds, the background drawn for it.
    per_call = rows_per_batch(image.nbytes * (1 if images_background is None else 2) + segments.size)
    agree = 0
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        kept = rng.random((size, len(labels))) >= p_sample
        kept[:, anchor_columns] = True
        chosen = None if images_background is None else rng.integers(len(replacement), size=size)
        for part in range(0, size, per_call):
            rows = slice(part, part + per_call)
            kept_pixels = kept[rows][:, inverse]
            if image.ndim == 3:
                kept_pixels = kept_pixels[..., None]
            fill = replacement[None] if chosen is None else replacement[chosen[rows]]
            batch = np.where(kept_pixels, image[None], fill)
            agree += int(np.sum(predict_labels(batch, fresh=True) == original))

    result = binomtest(agree, n)
    interval = result.proportion_ci(confidence_level=0.95, method="wilson")
    claimed = _get(explanation, "precision")
    return {
        "precision": agree / n,
        "ci": (float(interval.low), float(interval.high)),
        "claimed_precision": None if claimed is None else float(np.asarray(claimed).ravel()[0]),
        "n": n,
        "label": int(original),
        "anchor": [int(a) for a in anchor],
        "p_sample": float(p_sample),
    }


def _get(explanation: Any, key: str) -> Any:
    data = getattr(explanation, "data", explanation)
    return data.get(key) if isinstance(data, dict) else None


def _meta_params(explanation: Any) -> dict:
    meta = getattr(explanation, "meta", None)
    if meta is None and isinstance(explanation, dict):
        meta = explanation.get("meta")
    params = (meta or {}).get("params")
    return params if isinstance(params, dict) else {}


def _anchor_parts(explanation: Any) -> tuple[np.ndarray, np.ndarray]:
    """The explanation's segments and its anchor's superpixel ids, checked."""
    segments = _get(explanation, "segments")
    raw = _get(explanation, "raw")
    if segments is None or not isinstance(raw, dict) or "feature" not in raw:
        raise ValueError("explanation must hold 'segments' and raw['feature'] (the anchor's "
                         "superpixel ids), as AnchorImage explanations do")
    segments = np.asarray(segments)
    if segments.ndim != 2 or not np.issubdtype(segments.dtype, np.integer):
        raise ValueError(f"explanation segments must be a 2-D integer array; "
                         f"got {segments.dtype} array of shape {segments.shape}")
    anchor = np.asarray(raw["feature"], dtype=np.int64).ravel()
    missing = np.setdiff1d(anchor, segments)
    if missing.size:
        raise ValueError(f"anchor superpixels {missing.tolist()} are not labels of the "
                         "explanation's segments")
    return segments, anchor
