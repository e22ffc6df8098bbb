"""The model-parameter randomization test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018): maps of a model with random weights should not look like the maps of the trained model.

The model is cloned and its weights redrawn by its framework's backend (:mod:`imgexplain.backends`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from imgexplain._checks import check_class_indices
from imgexplain.backends import backend_for
from imgexplain.evaluate.curves import resized
from imgexplain.predictor import PredictorError

__all__ = ["randomization_check"]


def randomization_check(model: Any, images: Any, method: str = "gradcam", layer: Any = None,
                        targets: int | Sequence[int] | None = None, seed: int | None = None,
                        cascade: bool = False) -> dict:
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

    Raises
    ------
    TypeError
        When ``model`` is not a Keras or PyTorch model, ``cascade`` not a bool, or ``targets`` not ints.
    ValueError
        For wrong ``targets``, or what :class:`imgexplain.CAM` rejects.
    imgexplain.predictor.PredictorError
        When the model fails on ``images`` or does not return ``(N, K)`` scores.

    Examples
    --------
    >>> import torch
    >>> from imgexplain.evaluate import randomization_check
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> check = randomization_check(model, torch.rand(2, 3, 8, 8), seed=0)
    >>> check["spearman"].shape, check["ssim"].shape, check["layers"]
    ((2,), (2,), ['4', '0'])
    """
    from imgexplain.cam.core import CAM

    ops = backend_for(model, needs="randomize")
    if not isinstance(cascade, bool):
        raise TypeError(f"cascade must be True or False; got {cascade!r}")
    try:
        scores = ops.predict(model, images)
    except Exception as error:
        raise PredictorError(f"model {type(model).__name__} raised {type(error).__name__} on images of "
                             f"shape {np.shape(images)}: {error}") from error
    if scores.ndim != 2:
        raise PredictorError(f"model must output (N, K) scores; got shape {scores.shape}")
    n_images = scores.shape[0]
    if targets is None:
        targets = np.argmax(scores, axis=1)
    else:
        targets = check_class_indices(targets, n_images, scores.shape[1],
                                      accepted="None, an int or one int per image")
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
        similarity = [map_similarity(a, b, size) for a, b in zip(trained_maps, random_maps)]
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


def map_similarity(trained: np.ndarray, random: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """Spearman rank correlation and SSIM (data range 1) of two maps resized bilinearly to ``size``.

    Parameters
    ----------
    trained, random : ndarray, 2-D
        The maps to compare.
    size : (int, int)

    Returns
    -------
    (float, float)
        Spearman's rho (0 when a map is constant, having no ranking) and SSIM.
    """
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    a, b = resized(np.asarray(trained), size), resized(np.asarray(random), size)
    # A constant map has no ranking: count it as uncorrelated rather than NaN.
    rho = 0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a.ravel(), b.ravel())[0])
    return rho, float(structural_similarity(a, b, data_range=1.0))
