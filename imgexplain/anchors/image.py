"""AnchorImage: alibi-compatible anchor explanations for image classifiers."""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable

import numpy as np

from imgexplain._logging import verbose_log
from imgexplain._version import __version__
from imgexplain.anchors.arguments import (check_background, check_dtype, check_explain_arguments, check_image,
                                          check_image_shape, check_memory, check_seed, explain_extras,
                                          search_generator)
from imgexplain.anchors.examples import ExampleSource, covered_examples
from imgexplain.anchors.explanation import AnchorImageExplanation, scale_image
from imgexplain.anchors.sampler import PerturbationSampler
from imgexplain.anchors.search import AnchorSearch, SearchSettings
from imgexplain.predictor import LabelPredictor, probe_predictor
from imgexplain.segmentation import make_segmentation_fn, segment_image

logger = logging.getLogger(__name__)
# Where explain(verbose=True) reports the search's progress.
PROGRESS_LOGGER = logging.getLogger("imgexplain.anchors")


class AnchorImage:
    """Anchor explanations for images (Ribeiro et al., AAAI 2018), with the API of ``alibi``'s ``AnchorImage``.

    Parameters
    ----------
    predictor : callable
        Callable taking an (N,) + ``image_shape`` array and returning (N, n_classes) scores or probabilities,
        (N,) integer labels, or (N, 1) sigmoid probabilities.
    image_shape : tuple of int
        Shape of the images to explain, channels last: (H, W, C) or (H, W).
    dtype : numpy scalar type
        Numpy type of the arrays given to ``predictor``.
    segmentation_fn : {'slic', 'felzenszwalb', 'quickshift'} or callable
        'slic', 'felzenszwalb', 'quickshift' (scikit-image) or a callable returning an (H, W) label image.
        Labels need not be 0..K-1: they are relabelled in order.
    segmentation_kwargs : dict, optional
        Keyword arguments of the built-in segmentation function; None takes the reference's defaults.
    images_background : ndarray, optional
        (B,) + ``image_shape`` images whose pixels replace perturbed superpixels (one drawn per sample);
        None replaces a perturbed superpixel by its mean value.
    seed : int, optional
        Seed of every random choice: the same explainer, image and seed give the same explanation.
        None seeds each explanation from numpy's global random state, as alibi does
        (``np.random.seed(0)`` before ``explain()`` reproduces it); the global state is never reseeded.

    Attributes
    ----------
    predictor : callable
        Images to (N,) integer labels, as alibi's ``predictor``: the argmax of the scores, or the
        0.5 threshold of a sigmoid column.
    user_predictor : callable
        The ``predictor`` given, which ``explain`` calls.

    Raises
    ------
    TypeError
        A `predictor` that is not callable, a `dtype` that is not numeric, a `seed` that is not a
        non-negative int, or an `image_shape` that is not a tuple of ints.
    ValueError
        An `image_shape` of other than 2 or 3 positive sizes, `images_background` of another shape,
        or an unknown segmentation.
    imgexplain.PredictorCallError
        The predictor raised when called once on a zero image of `image_shape` and `dtype`, as alibi
        calls it (after the checks above).
    imgexplain.PredictorReturnTypeError
        It returned anything but one label or score row for that image.

    Examples
    --------
    A predictor of two classes that says 1 while the top-left quadrant of the image keeps its
    texture, and superpixels that are the four quadrants: the anchor is the top-left quadrant.

    >>> import numpy as np
    >>> from imgexplain import AnchorImage
    >>> image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    >>> def quadrants(image):  # four superpixels: 0 1 / 2 3
    ...     rows, cols = np.indices(image.shape[:2]) // 8
    ...     return 2 * rows + cols
    >>> def predictor(images):  # class 1 while the top-left quadrant keeps its texture
    ...     textured = images[:, :8, :8].std(axis=(1, 2)).min(axis=1) > 0.01
    ...     return np.stack([~textured, textured], axis=1).astype(float)
    >>> explainer = AnchorImage(predictor, image.shape, segmentation_fn=quadrants, seed=0)
    >>> explanation = explainer.explain(image)
    >>> explanation.raw["feature"], explanation.precision, explanation.coverage
    ([0], 1.0, 0.5024)
    """

    def __init__(self, predictor: Callable[[np.ndarray], np.ndarray], image_shape: tuple,
                 dtype: type = np.float32, segmentation_fn: Any = "slic", segmentation_kwargs: dict | None = None,
                 images_background: np.ndarray | None = None, seed: int | None = None):
        self.image_shape = check_image_shape(image_shape)
        self.dtype = check_dtype(dtype)
        self.segmentation_fn, self.custom_segmentation, used_kwargs = make_segmentation_fn(
            segmentation_fn, segmentation_kwargs)
        self.images_background = check_background(images_background, self.image_shape)
        self.seed = check_seed(seed, "seed")
        self.reset_predictor(predictor)
        self.meta = {
            "name": type(self).__name__,
            "type": ["blackbox"],
            "explanations": ["local"],
            "version": __version__,
            "params": {
                "custom_segmentation": self.custom_segmentation,
                "segmentation_kwargs": used_kwargs,
                "segmentation_fn": "custom" if self.custom_segmentation else segmentation_fn,
                "seed": seed,
                "image_shape": self.image_shape,
                "dtype": self.dtype.name,
                "images_background": images_background is not None,
            },
        }

    def reset_predictor(self, predictor: Callable) -> None:
        """Use ``predictor`` from now on, after calling it once on a zero image as the constructor does.

        ``user_predictor`` becomes ``predictor`` and ``predictor`` its labels, as in alibi.

        Parameters
        ----------
        predictor : callable
            As in :class:`AnchorImage`.

        Raises
        ------
        TypeError
            `predictor` is not callable.
        imgexplain.PredictorCallError, imgexplain.PredictorReturnTypeError
            As in :class:`AnchorImage`; the explainer keeps its previous predictor.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import AnchorImage
        >>> explainer = AnchorImage(lambda images: np.zeros((len(images), 2)), (4, 4))
        >>> explainer.reset_predictor(lambda images: np.ones((len(images), 1)))
        >>> explainer.predictor(np.zeros((3, 4, 4)))
        array([1, 1, 1])
        """
        self.predictor = probe_predictor(predictor, self.image_shape, self.dtype)
        self.user_predictor = predictor

    def generate_superpixels(self, image: np.ndarray) -> np.ndarray:
        """The (H, W) superpixel labels, 0..K-1, of ``image``.

        Parameters
        ----------
        image : ndarray
            An image of ``image_shape``.

        Returns
        -------
        (H, W) int ndarray

        Raises
        ------
        TypeError, ValueError
            An image that is not a numeric array of ``image_shape``, or holds NaN.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import AnchorImage
        >>> image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
        >>> def quadrants(image):  # four superpixels: 0 1 / 2 3
        ...     rows, cols = np.indices(image.shape[:2]) // 8
        ...     return 2 * rows + cols
        >>> def predictor(images):  # class 1 while the top-left quadrant keeps its texture
        ...     textured = images[:, :8, :8].std(axis=(1, 2)).min(axis=1) > 0.01
        ...     return np.stack([~textured, textured], axis=1).astype(float)
        >>> explainer = AnchorImage(predictor, image.shape, segmentation_fn=quadrants)
        >>> explainer.generate_superpixels(image)[::8, ::8]
        array([[0, 1],
               [2, 3]])
        """
        hwc_image = _as_hwc(check_image(image, self.image_shape))
        return segment_image(self.segmentation_fn, hwc_image, self.custom_segmentation)

    def overlay_mask(self, image: np.ndarray, segments: np.ndarray, mask_features: list,
                     scale: tuple = (0, 255)) -> np.ndarray:
        """``image`` scaled to ``scale`` where the superpixels ``mask_features`` are, 0 elsewhere (integers).

        Parameters
        ----------
        image : ndarray
            (H, W) or (H, W, C).
        segments : (H, W) int ndarray
            Superpixel labels.
        mask_features : list of int
            The superpixels to show.
        scale : (float, float)
            As in :func:`scale_image`.

        Returns
        -------
        int ndarray
            Of the image's shape.

        Raises
        ------
        ValueError
            `segments` of another (H, W) than the image.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import AnchorImage
        >>> explainer = AnchorImage(lambda images: np.zeros((len(images), 2)), (2, 2))
        >>> explainer.overlay_mask(np.array([[0.0, 1.0], [0.5, 0.2]]), np.array([[0, 1], [0, 1]]), [1])
        array([[  0, 255],
               [  0,  51]])
        """
        image = np.asarray(image)
        segments = np.asarray(segments)
        if segments.shape != image.shape[:2]:
            raise ValueError(f"segments must have the image's (H, W) shape {image.shape[:2]}; got {segments.shape}")
        mask = np.isin(segments, np.asarray(mask_features, dtype=segments.dtype))
        if image.ndim == 3:
            mask = mask[..., np.newaxis]
        return (scale_image(image, scale=scale) * mask).astype(int)

    def explain(self, image: np.ndarray, p_sample: float = 0.5, threshold: float = 0.95, delta: float = 0.1,
                tau: float = 0.15, batch_size: int = 100, coverage_samples: int = 10000, beam_size: int = 1,
                stop_on_first: bool = False, max_anchor_size: int | None = None, min_samples_start: int = 100,
                n_covered_ex: int = 10, binary_cache_size: int = 10000, cache_margin: int = 1000,
                verbose: bool = False, verbose_every: int = 1, **kwargs: Any) -> AnchorImageExplanation:
        """Find the anchor of ``image``: superpixels that, kept as they are, keep the prediction.

        The anchor A satisfies P(prec(A) >= threshold - epsilon_stop) >= 1 - delta, where prec(A) is the
        probability that the prediction holds when every other superpixel is perturbed with probability
        ``p_sample``; among such anchors the search maximises coverage.

        Parameters
        ----------
        image : ndarray
            Image of ``image_shape``.
        p_sample : float
            Probability that a superpixel outside the anchor is perturbed. Coverage samples are drawn with the
            same probability (the reference always uses 0.5 for them).
        threshold, delta : float
            Precision the anchor must reach, and the confidence 1 - delta with which it must.
        tau : float
            Tolerance of the KL-LUCB arm selection: the chosen anchor's precision is within ``tau`` of the best
            candidate's with probability 1 - delta.
        batch_size : int
            Samples drawn for an arm at each bandit step.
        coverage_samples : int
            Masks drawn to estimate coverage (no model call).
        beam_size : int
            Candidates kept at each anchor size.
        stop_on_first : bool
            Return the first anchor that satisfies the precision constraint.
        max_anchor_size : int or None
            Largest number of superpixels in the anchor; None for no limit.
        min_samples_start : int
            Samples drawn at the start, with nothing kept fixed.
        n_covered_ex : int
            Covered examples kept per anchor step, where the prediction held and where it changed.
        binary_cache_size, cache_margin : int
            Initial number of rows of the sample store; it grows by as many rows when fewer than
            ``max(cache_margin, batch_size)`` remain free.
        verbose : bool
            Report the search's progress, as INFO records of the ``imgexplain.anchors`` logger. A
            program that configured no logging sees them on stderr; one that did gets them through its
            handlers, at INFO even when its level is higher.
        verbose_every : int
            Report every ``verbose_every`` bandit steps.
        **kwargs
            ``epsilon_stop`` (0.05): tolerance around the threshold when deciding whether an anchor passes;
            ``seed``: overrides the constructor's seed for this call;
            ``rounds`` ('adaptive'): how many samples a bandit round draws. 'adaptive' sizes each round by
            what the worst undecided comparison still lacks (at least 10 samples, at most ``batch_size`` or
            the count already drawn, whichever is larger); 'fixed' draws ``batch_size`` per arm every round,
            as the reference does;
            ``deterministic`` (None): whether the predictor gives the same answer for the same image. Repeated
            samples are served from a memo only for a deterministic model. None checks: a few images of each
            model call are evaluated again, and one changed label turns the memo off for the rest of the
            explanation (with a warning). True memoises without checking; False never memoises (every sample
            is a new model evaluation, as the statistics of a random model require). ``raw['memo_used']``
            says whether the memo served samples to the end, ``raw['nondeterministic']`` whether the model
            was declared or found non-deterministic.

        Returns
        -------
        AnchorImageExplanation
            ``data`` has alibi's keys: ``anchor``, ``segments``, ``precision``, ``coverage`` and ``raw``;
            ``success`` and ``empty_anchor`` are attributes (and keys of ``raw``).

        Raises
        ------
        TypeError
            An image that is not a numeric array, an unknown keyword, a ``deterministic`` that is not
            None or a bool, or an argument of the wrong type (a float count, say).
        ValueError
            An image of another shape or with NaN, or an argument out of its range.
        imgexplain.PredictorError
            The predictor raises, or does not return one label or score row per image.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import AnchorImage
        >>> image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
        >>> def quadrants(image):  # four superpixels: 0 1 / 2 3
        ...     rows, cols = np.indices(image.shape[:2]) // 8
        ...     return 2 * rows + cols
        >>> def predictor(images):  # class 1 while the top-left quadrant keeps its texture
        ...     textured = images[:, :8, :8].std(axis=(1, 2)).min(axis=1) > 0.01
        ...     return np.stack([~textured, textured], axis=1).astype(float)
        >>> explainer = AnchorImage(predictor, image.shape, segmentation_fn=quadrants, seed=0)
        >>> explanation = explainer.explain(image, threshold=0.9, verbose=True)
        >>> explanation.raw["feature"], explanation.precision
        ([0], 1.0)

        With ``verbose=True`` and no logging configured, the progress is written to stderr, one line
        per anchor size: ``size 1: (0,) precision 1.000 lb 0.862 coverage 0.502``.
        """
        params = {key: value for key, value in locals().items() if key not in ("self", "image", "kwargs")}
        params.update(explain_extras(kwargs, self.seed))
        check_explain_arguments(params)
        epsilon_stop, seed, rounds, deterministic = (params[key] for key in ("epsilon_stop", "seed", "rounds",
                                                                              "deterministic"))

        user_image = check_image(image, self.image_shape)
        hwc_image = _as_hwc(user_image)
        segments = segment_image(self.segmentation_fn, hwc_image, self.custom_segmentation)
        check_memory(params, int(segments.max()) + 1, hwc_image.size)
        backgrounds = None if self.images_background is None else _as_hwc(self.images_background, batch=True)
        predictor = LabelPredictor(self.user_predictor, self.image_shape, self.dtype)  # counts this call's model use
        instance_label = int(predictor(hwc_image[np.newaxis])[0])

        rng = search_generator(seed)
        sampler = PerturbationSampler(hwc_image, segments, predictor, backgrounds, p_sample, rng,
                                      None if deterministic is None else bool(deterministic))
        sampler.remember_instance(instance_label)
        with verbose_log(PROGRESS_LOGGER, verbose) as log:
            settings = SearchSettings(
                threshold=threshold, delta=delta, tau=tau, batch_size=batch_size, coverage_samples=coverage_samples,
                beam_size=beam_size, stop_on_first=stop_on_first, max_anchor_size=max_anchor_size,
                min_samples_start=min_samples_start, n_covered_ex=n_covered_ex, initial_capacity=binary_cache_size,
                capacity_margin=max(cache_margin, batch_size), epsilon_stop=epsilon_stop, rounds=rounds,
                log=log, log_every=verbose_every)
            result = AnchorSearch(sampler, instance_label, settings).run()
        if not result.success:
            logger.warning("Could not find an anchor satisfying the %s precision constraint; returning the best "
                           "anchor found (precision %.3f).", threshold,
                           result.precision[-1] if result.precision else result.all_precision)
        return self._build_explanation(user_image, segments, instance_label, result, sampler, predictor, params)

    def _build_explanation(self, image, segments, instance_label, result, sampler, predictor, params):
        source = ExampleSource(_as_hwc(image), segments, sampler.fills if self.images_background is not None else None,
                               self.image_shape, predictor.dtype)
        examples = covered_examples(result.example_masks, source)
        empty = not result.feature
        raw = {
            "feature": result.feature,
            "mean": result.mean,
            "precision": result.precision,
            "coverage": result.coverage,
            "examples": examples,
            "all_precision": result.all_precision,
            "alternatives": result.alternatives,
            "success": result.success,
            "empty_anchor": empty,
            "num_preds": predictor.n_images,
            "model_calls": predictor.n_calls,
            "n_samples": sampler.n_requested,
            "samples_from_memo": sampler.n_from_memo,
            "memo_used": sampler.memoise,
            "nondeterministic": sampler.nondeterministic,
            "determinism_checks": sampler.n_checks,
            "instance": image,
            "instances": image[np.newaxis],
            "prediction": np.array([instance_label]),
        }
        data = {
            "anchor": self.overlay_mask(image, segments, result.feature),
            "segments": segments,
            "precision": result.all_precision if empty else result.precision[-1],
            "coverage": 1.0 if empty else result.coverage[-1],
            "raw": raw,
        }
        meta = copy.deepcopy(self.meta)
        meta["params"].update(params)
        return AnchorImageExplanation(meta=meta, data=data)


def _as_hwc(image: np.ndarray, batch: bool = False) -> np.ndarray:
    """View an (H, W) image (or a batch of them) as (H, W, 1)."""
    spatial_ndim = image.ndim - (1 if batch else 0)
    return image[..., np.newaxis] if spatial_ndim == 2 else image
