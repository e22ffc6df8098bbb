"""The CAM methods: one numpy function and one registry entry per method, for every framework.

Activations ``A`` are channels last, ``(N, h, w, K)``; gradients ``G`` are those of each image's
target score with respect to ``A``. Each function returns ``(N, h, w)`` maps rectified and divided
by their maximum, so that they lie in [0, 1] (a map that is zero everywhere stays zero). With
``eigen_smooth`` a channel-weighting method takes the first principal component of its weighted
activations instead of their sum, as pytorch-grad-cam does.

:data:`REGISTRY` says what each method needs, and :class:`imgexplain.CAM` computes exactly that
and calls the method's function. A new method is one function and one :class:`Method` entry here.

Examples
--------
>>> from imgexplain.cam.methods import REGISTRY
>>> REGISTRY["gradcam"].needs, REGISTRY["scorecam"].needs, REGISTRY["fullgrad"].takes_layer
('gradients', 'masked passes', False)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from imgexplain.cam.maps import (centered_projection, combine, kernel_projection, normalize_maps,
                                 project_on_first_component, resize_maps)

__all__ = ["Method", "REGISTRY", "METHODS", "NEEDS", "method_named", "normalize_maps", "resize_maps",
           "gradcam", "gradcam_plus_plus", "xgradcam", "hirescam", "gradcam_elementwise", "layercam",
           "eigengradcam", "segeigencam", "shapleycam", "scorecam", "ablationcam", "eigencam", "kpcacam",
           "fem", "randomcam", "fullgrad", "scorecam_weights", "ablationcam_weights"]

NEEDS = ("gradients", "hessian", "masked passes", "ablation", "nothing", "bias gradients")
"""What a method needs from the model, besides the activations of its layer:

- ``gradients``: ``f(A, G)``; ``hessian``: ``f(A, G, H)`` with ``H`` the Hessian-vector product
  ``d(G . A)/dA``; ``masked passes``: ``f(A, masked_scores)``, the target score of the image masked
  by each upsampled channel, ``(N, K)``; ``ablation``: ``f(A, scores, ablated_scores)``, the target
  score ``(N,)`` and the target score with each channel set to zero ``(N, K)``; ``nothing``: ``f(A)``;
  ``bias gradients``: ``f(input_term, bias_terms)`` over the whole network (no layer).
"""


@dataclass(frozen=True)
class Method:
    """One CAM method: its function and what the library must compute to call it.

    Attributes
    ----------
    name : str
        The name ``CAM(method=...)`` takes.
    function : callable
        The numpy function; its arguments follow from ``needs`` (see :data:`NEEDS`), then
        ``eigen_smooth`` (for methods that take a layer) and the method's ``options``.
    needs : str
        One of :data:`NEEDS`.
    class_name : str
        pytorch-grad-cam's class for the method (``imgexplain`` exports one of the same name).
    takes_layer : bool
        False for methods that use the whole network (``fullgrad``).
    deterministic : bool
        False for methods that draw random numbers (``randomcam``).
    options : dict
        The method's own keyword arguments and their defaults.

    Examples
    --------
    >>> from imgexplain.cam.methods import REGISTRY
    >>> REGISTRY["fem"].options, REGISTRY["fem"].class_name
    ({'k': 2.0}, 'FEM')
    """

    name: str
    function: Callable
    needs: str
    class_name: str
    takes_layer: bool = True
    deterministic: bool = True
    options: dict = field(default_factory=dict)


def _channel_weights(activations, weights):
    return activations * weights[:, None, None, :].astype(activations.dtype, copy=False)


def gradcam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): ``ReLU(sum_k mean_ij(G_k) A_k)``, normalised."""
    return combine(_channel_weights(activations, gradients.mean(axis=(1, 2))), eigen_smooth)


def gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al., 2018): ``w_k = sum_ij alpha_ij^k ReLU(G_ij^k)`` with
    ``alpha = G^2 / (2 G^2 + sum_ab(A_ab^k) G^3)`` (zero where the denominator is zero)."""
    squared = gradients**2
    denominator = 2 * squared + activations.sum(axis=(1, 2), keepdims=True) * gradients**3
    alphas = np.divide(squared, denominator, out=np.zeros_like(squared), where=denominator != 0)
    weights = (alphas * np.maximum(gradients, 0)).sum(axis=(1, 2))
    return combine(_channel_weights(activations, weights), eigen_smooth)


def xgradcam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """XGrad-CAM (Fu et al., 2020): ``w_k = sum_ij A_ij^k G_ij^k / sum_ij A_ij^k``, normalised."""
    totals = activations.sum(axis=(1, 2))
    weights = np.divide((gradients * activations).sum(axis=(1, 2)), totals,
                        out=np.zeros_like(totals), where=totals != 0)
    return combine(_channel_weights(activations, weights), eigen_smooth)


def hirescam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """HiResCAM (Draelos and Carin, 2020): ``ReLU(sum_k G_k * A_k)``, normalised."""
    return combine(gradients * activations, eigen_smooth)


def gradcam_elementwise(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Element-wise Grad-CAM (pytorch-grad-cam's ``GradCAMElementWise``): ``sum_k ReLU(G_k * A_k)``."""
    return combine(np.maximum(gradients * activations, 0), eigen_smooth)


def layercam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Layer-CAM (Jiang et al., 2021): ``ReLU(sum_k ReLU(G_k) * A_k)``, normalised."""
    return combine(np.maximum(gradients, 0) * activations, eigen_smooth)


def eigengradcam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Eigen-Grad-CAM (pytorch-grad-cam): ``G * A`` projected on its first principal direction.

    The positions are centred first, as pytorch-grad-cam does."""
    return normalize_maps(centered_projection(gradients * activations))


def segeigencam(activations: np.ndarray, gradients: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Seg-Eigen-CAM (Chung and Ying, 2025): ``|G| * A`` (eq. 10), centred and projected on its first
    principal direction, the sign chosen so that the largest magnitude is positive (eq. 13)."""
    return normalize_maps(centered_projection(np.abs(gradients) * activations))


def shapleycam(activations: np.ndarray, gradients: np.ndarray, hessian_products: np.ndarray,
               eigen_smooth: bool = False) -> np.ndarray:
    """ShapleyCAM (Cai et al., 2025): ``w_k = mean_ij(G - H / 2)_ij^k`` where ``H`` is the
    Hessian-vector product ``(d^2 y / dA^2) A``, a second-order estimate of each channel's Shapley value."""
    weights = (gradients - 0.5 * hessian_products).mean(axis=(1, 2))
    return combine(_channel_weights(activations, weights), eigen_smooth)


def scorecam_weights(masked_scores: np.ndarray) -> np.ndarray:
    """Softmax over channels of the ``(N, K)`` masked scores."""
    shifted = masked_scores - masked_scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def scorecam(activations: np.ndarray, masked_scores: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Score-CAM (Wang et al., 2020) from ``masked_scores`` ``(N, K)``: the target score of image n
    multiplied by channel k of its activations, upsampled to the input size and scaled to [0, 1].
    The weights are their softmax over channels."""
    return combine(_channel_weights(activations, scorecam_weights(masked_scores)), eigen_smooth)


def ablationcam_weights(scores: np.ndarray, ablated_scores: np.ndarray) -> np.ndarray:
    """``(y - y_k) / y`` for the ``(N,)`` scores and the ``(N, K)`` scores with channel k ablated
    (zero where ``y`` is zero)."""
    scores = scores[:, None]
    drop = scores - ablated_scores
    return np.divide(drop, scores, out=np.zeros_like(drop), where=scores != 0)


def ablationcam(activations: np.ndarray, scores: np.ndarray, ablated_scores: np.ndarray,
                eigen_smooth: bool = False) -> np.ndarray:
    """Ablation-CAM (Desai and Ramaswamy, 2020): ``ReLU(sum_k (y - y_k) / y * A_k)``, normalised."""
    return combine(_channel_weights(activations, ablationcam_weights(scores, ablated_scores)), eigen_smooth)


def eigencam(activations: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Eigen-CAM (Muhammad and Yeasin, 2020): the activations projected on their first principal
    direction; it needs neither gradients nor a target."""
    return normalize_maps(project_on_first_component(activations))


def kpcacam(activations: np.ndarray, eigen_smooth: bool = False, kernel: str = "sigmoid",
            gamma: float | None = None) -> np.ndarray:
    """KPCA-CAM (Karmani et al., 2024): the first kernel principal component of the positions'
    channel vectors (see :func:`imgexplain.cam.maps.kernel_projection`)."""
    return normalize_maps(kernel_projection(activations, kernel, gamma))


def fem(activations: np.ndarray, eigen_smooth: bool = False, k: float = 2.0) -> np.ndarray:
    """FEM (Fuad et al., 2020): ``w_k`` = the share of channel k's positions above its
    ``mean + k * std`` (the k-sigma rule), ``sum_k w_k A_k``, normalised."""
    means = activations.mean(axis=(1, 2), keepdims=True)
    spreads = activations.std(axis=(1, 2), keepdims=True)
    weights = (activations > means + k * spreads).mean(axis=(1, 2))
    return combine(_channel_weights(activations, weights), eigen_smooth)


def randomcam(activations: np.ndarray, eigen_smooth: bool = False, seed: int | None = None) -> np.ndarray:
    """Random-CAM (pytorch-grad-cam's baseline): weights drawn uniformly in [-1, 1] per image and
    channel from ``np.random.default_rng(seed)``."""
    weights = np.random.default_rng(seed).uniform(-1, 1, size=(activations.shape[0], activations.shape[3]))
    return combine(_channel_weights(activations, weights), eigen_smooth)


def _rescaled(term: np.ndarray) -> np.ndarray:
    """``|term|`` shifted and scaled to [0, 1] per image, over all its positions and channels."""
    term = np.abs(term)
    low = term.min(axis=(1, 2, 3), keepdims=True)
    span = term.max(axis=(1, 2, 3), keepdims=True) - low
    return np.divide(term - low, span, out=np.zeros_like(term), where=span > 0)


def fullgrad(input_term: np.ndarray, bias_terms) -> np.ndarray:
    """FullGrad (Srinivas and Fleuret, 2019) from ``input_term`` = ``dy/dx * x`` of shape
    ``(N, H, W, C)`` and ``bias_terms``, one ``dy/dz * b`` of shape ``(N, h, w, K)`` per layer with a
    bias: each term's absolute value, rescaled to [0, 1] per image, upsampled bilinearly to ``(H, W)``
    and summed over its channels; the terms added up and normalised, as the paper's implementation does."""
    size = input_term.shape[1:3]
    total = _rescaled(input_term).sum(axis=-1)
    for term in bias_terms:
        # Upsampling is linear: summing the channels first gives the same map.
        summed = _rescaled(term).sum(axis=-1)
        total = total + (summed if summed.shape[1:] == size else resize_maps(summed, size))
    return normalize_maps(total)


REGISTRY = {method.name: method for method in (
    Method("gradcam", gradcam, "gradients", "GradCAM"),
    Method("gradcam++", gradcam_plus_plus, "gradients", "GradCAMPlusPlus"),
    Method("xgradcam", xgradcam, "gradients", "XGradCAM"),
    Method("hirescam", hirescam, "gradients", "HiResCAM"),
    Method("gradcam-elementwise", gradcam_elementwise, "gradients", "GradCAMElementWise"),
    Method("layercam", layercam, "gradients", "LayerCAM"),
    Method("eigengradcam", eigengradcam, "gradients", "EigenGradCAM"),
    Method("segeigencam", segeigencam, "gradients", "SegEigenCAM"),
    Method("shapleycam", shapleycam, "hessian", "ShapleyCAM"),
    Method("scorecam", scorecam, "masked passes", "ScoreCAM"),
    Method("ablationcam", ablationcam, "ablation", "AblationCAM"),
    Method("eigencam", eigencam, "nothing", "EigenCAM"),
    Method("kpcacam", kpcacam, "nothing", "KPCA_CAM", options={"kernel": "sigmoid", "gamma": None}),
    Method("fem", fem, "nothing", "FEM", options={"k": 2.0}),
    Method("randomcam", randomcam, "nothing", "RandomCAM", deterministic=False, options={"seed": None}),
    Method("fullgrad", fullgrad, "bias gradients", "FullGrad", takes_layer=False),
)}
"""Every CAM method by name."""

METHODS = tuple(REGISTRY)
"""The names of the CAM methods, in the registry's order."""


def method_named(name) -> Method:
    """The registry entry of ``name`` (case-insensitive).

    Raises
    ------
    TypeError
        `name` is not a string.
    ValueError
        No method has that name.

    Examples
    --------
    >>> from imgexplain.cam.methods import method_named
    >>> method_named("GradCAM++").class_name
    'GradCAMPlusPlus'
    """
    if not isinstance(name, str):
        raise TypeError(f"method must be one of {list(METHODS)}; got {name!r}")
    entry = REGISTRY.get(name.lower())
    if entry is None:
        raise ValueError(f"method must be one of {list(METHODS)}; got {name!r}")
    return entry
