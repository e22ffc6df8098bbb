"""Faithfulness of explanations.

- :func:`deletion_curve` and :func:`insertion_curve`: remove (or insert) pixels or
  superpixels from the most to the least salient and follow the target's probability;
  the area under the curve summarises it (Petsiuk et al., "RISE", BMVC 2018). A
  faithful saliency makes the deletion curve fall fast (low AUC) and the insertion
  curve rise fast (high AUC).
- :func:`anchor_precision`: the precision of an anchor measured on fresh perturbed
  samples, to check the precision an explainer claims.
- :func:`randomization_check`: the model-parameter randomization test (Adebayo et al.,
  "Sanity Checks for Saliency Maps", NeurIPS 2018): maps of a model with random weights
  should not look like the maps of the trained model.

Only numpy, scipy and scikit-image are imported here; :func:`randomization_check` clones and
randomizes the model through its framework's backend (:mod:`imgexplain.backends`).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from .backends import backend_for
from .predictor import LabelPredictor, call_predictor, check_predictor, rows_per_batch
from .segmentation import superpixel_means

BASELINES = ("zeros", "blur", "mean")

__all__ = [
    "BASELINES",
    "Curve",
    "deletion_curve",
    "insertion_curve",
    "saliency_from_anchor",
    "anchor_precision",
    "randomization_check",
]


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve.

    ``fractions[i]`` is the fraction of the image's pixels removed (deletion) or
    inserted (insertion) at step ``i``, from 0 to 1; ``scores[i]`` is the model's
    output for ``target`` on that image.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    target: int
    baseline: str

    @property
    def auc(self) -> float:
        """Area under the curve (trapezoidal rule over ``fractions``)."""
        return float(np.trapezoid(self.scores, self.fractions))


def deletion_curve(predictor, image, saliency, target=None, steps=50, baseline="zeros",
                   segments=None, batch_size=32, seed=None) -> Curve:
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
    """
    return _curve("deletion", predictor, image, saliency, target, steps, baseline, segments,
                  batch_size, seed)


def insertion_curve(predictor, image, saliency, target=None, steps=50, baseline="blur",
                    segments=None, batch_size=32, seed=None) -> Curve:
    """Start from the baseline and insert the image's pixels from the most to the least salient.

    The parameters are those of :func:`deletion_curve`; RISE uses a blurred image as
    the insertion baseline, which is the default here.
    """
    return _curve("insertion", predictor, image, saliency, target, steps, baseline, segments,
                  batch_size, seed)


def saliency_from_anchor(explanation) -> np.ndarray:
    """One score per superpixel from an anchor: the first superpixel added ranks highest.

    Scores follow the sorted superpixel labels, as curves with ``segments`` expect.
    Superpixels outside the anchor score 0, so a curve over them breaks ties at random.
    Use with ``segments=explanation.segments``.
    """
    segments, anchor = _anchor_parts(explanation)
    labels = np.unique(segments)
    scores = np.zeros(len(labels))
    scores[np.searchsorted(labels, anchor)] = np.arange(len(anchor), 0, -1)
    return scores


def anchor_precision(predictor, image, explanation, n=1000, seed=None, p_sample=None,
                     images_background=None, batch_size=100) -> dict:
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
    """
    from scipy.stats import binomtest

    image = _check_image(image)
    segments, anchor = _anchor_parts(explanation)
    if segments.shape != image.shape[:2]:
        raise ValueError(f"explanation segments must have the image's shape {image.shape[:2]}; "
                         f"got {segments.shape}")
    n = _check_positive_int(n, "n")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if p_sample is None:
        p_sample = _meta_params(explanation).get("p_sample")
        if p_sample is None:
            raise ValueError("p_sample was not given and the explanation does not record it "
                             "in meta['params']['p_sample']")
    if not isinstance(p_sample, Real) or not 0.0 <= p_sample <= 1.0:
        raise ValueError(f"p_sample must be a number in [0, 1]; got {p_sample!r}")
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


def randomization_check(model, images, method="gradcam", layer=None, targets=None, seed=None,
                        cascade=False) -> dict:
    """Compare the class activation maps of ``model`` with those of a copy with random weights.

    A method that explains the model gives different maps once the weights are random;
    a method that mostly shows the image (edges, texture) does not. The copy's weights
    are drawn from a normal distribution with each weight tensor's own mean and
    standard deviation; ``model`` itself is left untouched.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    images : array or tensor
        ``(N, H, W, C)`` for Keras, ``(N, C, H, W)`` for PyTorch, as the model takes them.
    method, layer :
        As in :class:`imgexplain.CAM`; ``layer`` may be a layer of ``model``.
    targets : None, int or sequence of int
        Classes to explain; by default the trained model's predicted classes, which
        are also used for the random model.
    seed : int, optional
        Makes the random weights reproducible.
    cascade : bool
        Randomize the layers one at a time from the output down and compare after
        each step (the cascading test), instead of all at once.

    Returns
    -------
    dict
        ``spearman`` and ``ssim``: similarity of each image's trained and random maps,
        both resized to the image's size; shape ``(N,)``, or ``(L, N)`` with cascade.
        ``layers``: the layers randomized at each step (cascade) or all of them.
        ``targets``, ``maps`` (trained) and ``random_maps`` (last step).
    """
    from imgexplain.cam.api import CAM

    ops = backend_for(model, needs="randomize")
    if not isinstance(cascade, bool):
        raise TypeError(f"cascade must be True or False; got {cascade!r}")
    scores = ops.predict(model, images)
    if scores.ndim != 2:
        raise ValueError(f"model must output (N, K) scores; got shape {scores.shape}")
    n_images = scores.shape[0]
    if targets is None:
        targets = np.argmax(scores, axis=1)
    elif isinstance(targets, Integral):
        targets = np.full(n_images, int(targets))
    targets = np.asarray(targets)
    if targets.shape != (n_images,) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be None, an int or {n_images} ints; got {targets!r}")
    if np.any((targets < 0) | (targets >= scores.shape[1])):
        raise ValueError(f"targets must lie in [0, {scores.shape[1]}); got {targets.tolist()}")
    size = ops.spatial_size(images)

    trained_maps = np.asarray(CAM(model, layer=layer, method=method)(images, targets=targets))
    clone = ops.clone(model)
    clone_layer = ops.counterpart(model, clone, layer)
    explain_clone = CAM(clone, layer=clone_layer, method=method)
    rng = np.random.default_rng(seed)
    weighted = ops.weighted_layers(clone)[::-1]
    groups = [[layer_] for layer_ in weighted] if cascade else [weighted]

    spearman, ssim, names = [], [], []
    for group in groups:
        for layer_ in group:
            ops.randomize(layer_, rng)
        random_maps = np.asarray(explain_clone(images, targets=targets))
        similarity = [_similarity(a, b, size) for a, b in zip(trained_maps, random_maps)]
        spearman.append([s for s, _ in similarity])
        ssim.append([s for _, s in similarity])
        names.append([ops.layer_name(clone, layer_) for layer_ in group])
    if not cascade:
        spearman, ssim, names = spearman[0], ssim[0], names[0]
    return {
        "spearman": np.asarray(spearman),
        "ssim": np.asarray(ssim),
        "layers": names,
        "targets": targets,
        "maps": trained_maps,
        "random_maps": random_maps,
    }


# --- curves -----------------------------------------------------------------------------


def _curve(kind, predictor, image, saliency, target, steps, baseline, segments, batch_size, seed):
    image = _check_image(image)
    steps = _check_positive_int(steps, "steps")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if target is not None and (not isinstance(target, Integral) or target < 0):
        raise ValueError(f"target must be None or a non-negative int; got {target!r}")
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
        target = int(np.argmax(_scores(_call(predictor, image[None]), 1)[0]))
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
        output = _scores(_call(predictor, batch, fresh=True), len(chunk))
        if target >= output.shape[1]:
            raise ValueError(f"target {target} is out of range for a predictor with "
                             f"{output.shape[1]} outputs")
        scores.append(output[:, target])
    return Curve(kind=kind, fractions=covered, scores=np.concatenate(scores).astype(float),
                 target=int(target), baseline=baseline_name)


def _units(saliency, shape, segments):
    """Pixels (or superpixels) as units: unit of each pixel, score and area of each unit."""
    saliency = np.asarray(saliency)
    if not np.issubdtype(saliency.dtype, np.number) or np.iscomplexobj(saliency):
        raise TypeError(f"saliency must be a real-valued array; got dtype {saliency.dtype}")
    if segments is None:
        if saliency.ndim != 2:
            raise ValueError(f"saliency must be a 2-D map; got shape {saliency.shape}")
        saliency = _resized(saliency, shape)
        _check_finite(saliency, "saliency")
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
        pixel_scores = _resized(saliency, shape)
        unit_scores = np.bincount(inverse.ravel(), weights=pixel_scores.ravel()) / areas
    else:
        raise ValueError(f"saliency must be a 2-D map or one score per superpixel; "
                         f"got shape {saliency.shape}")
    _check_finite(unit_scores, "saliency")
    return inverse, unit_scores, areas


def _resized(saliency, shape):
    if saliency.shape == tuple(shape):
        return saliency.astype(float)
    from skimage.transform import resize

    return resize(saliency.astype(float), shape, order=1, mode="edge", anti_aliasing=False)


def _baseline(image, baseline):
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
    _check_finite(fill, "baseline")
    return fill.astype(float), "image"


# --- anchors ----------------------------------------------------------------------------


def _get(explanation, key):
    data = getattr(explanation, "data", explanation)
    return data.get(key) if isinstance(data, dict) else None


def _meta_params(explanation):
    meta = getattr(explanation, "meta", None)
    if meta is None and isinstance(explanation, dict):
        meta = explanation.get("meta")
    params = (meta or {}).get("params")
    return params if isinstance(params, dict) else {}


def _anchor_parts(explanation):
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


# --- predictors and input checks --------------------------------------------------------


def _call(predictor, batch, fresh=False):
    return np.asarray(call_predictor(check_predictor(predictor), batch, fresh=fresh))


def _scores(output, n):
    if output.ndim != 2 or output.shape[0] != n:
        raise ValueError(f"predictor must return ({n}, K) scores for {n} images; "
                         f"got shape {output.shape}")
    if not np.issubdtype(output.dtype, np.number) or not np.all(np.isfinite(output)):
        raise ValueError("predictor returned non-numeric or non-finite scores")
    return output


def _check_image(image):
    image = np.asarray(image)
    if image.ndim not in (2, 3) or not np.issubdtype(image.dtype, np.number):
        raise ValueError(f"image must be a numeric (H, W) or (H, W, C) array; "
                         f"got {image.dtype} array of shape {image.shape}")
    _check_finite(image, "image")
    return image


def _check_finite(array, name):
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return int(value)


# --- randomization check ----------------------------------------------------------------


def _similarity(trained, random, size):
    """Spearman rank correlation and SSIM of two maps resized to ``size``."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    a, b = _resized(np.asarray(trained), size), _resized(np.asarray(random), size)
    # A constant map has no ranking: count it as uncorrelated rather than NaN.
    rho = 0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a.ravel(), b.ravel())[0])
    return rho, float(structural_similarity(a, b, data_range=1.0))
