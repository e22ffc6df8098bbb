"""Class activation map weightings on numpy arrays.

Every method turns a layer's activations ``A`` of shape ``(N, h, w, K)`` (channels
last) into *weighted activations* of the same shape; the map is their sum over
channels (or, with ``eigen_smooth``, their first principal component), rectified and
divided by its maximum so that it lies in [0, 1]; a map that is zero everywhere stays
zero. Gradients ``G`` are those of each image's target score with respect to ``A``.

- ``gradcam``: weights are the spatial means of ``G`` (Selvaraju et al., 2017).
- ``gradcam++``: weights are the positive gradients weighted by the closed-form
  alphas of Chattopadhyay et al. (2018).
- ``xgradcam``: weights are ``sum_ij G_ij A_ij / sum_ij A_ij`` (Fu et al., 2020).
- ``hirescam``: ``G * A``, without averaging the gradients (Draelos and Carin, 2020).
- ``gradcam-elementwise``: ``ReLU(G * A)``, as pytorch-grad-cam's ``GradCAMElementWise``.
- ``layercam``: ``ReLU(G) * A`` (Jiang et al., 2021).
- ``scorecam``: weights are a softmax over channels of the target score of the
  image masked by each upsampled channel (Wang et al., 2020).
- ``ablationcam``: weights are the relative drop of the target score when channel k
  is set to zero, ``(y - y_k) / y`` (Desai and Ramaswamy, 2020).
- ``eigencam``: the projection of ``A`` on its first principal direction
  (Muhammad and Yeasin, 2020); it needs neither gradients nor a target.
- ``fullgrad``: not a weighting of one layer but the sum of the input-gradient term
  ``|dy/dx * x|`` and of the bias-gradients ``|dy/dz * b|`` of every layer with a bias
  (Srinivas and Fleuret, 2019); see :func:`fullgrad`.

The framework code computes the masked and ablated scores; see :func:`scorecam` and
:func:`ablationcam`.
"""
from __future__ import annotations

import numpy as np

GRADIENT_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "gradcam-elementwise", "layercam")
METHODS = GRADIENT_METHODS + ("scorecam", "ablationcam", "eigencam", "fullgrad")

__all__ = [
    "METHODS",
    "GRADIENT_METHODS",
    "normalize_maps",
    "resize_maps",
    "project_on_first_component",
    "weighted_activations",
    "combine",
    "gradcam",
    "gradcam_plus_plus",
    "xgradcam",
    "hirescam",
    "gradcam_elementwise",
    "layercam",
    "scorecam",
    "ablationcam",
    "eigencam",
    "fullgrad",
    "from_gradients",
]


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Rectify ``(N, h, w)`` maps and divide each by its maximum; all-zero maps stay zero."""
    maps = np.maximum(maps, 0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)


def _interpolation_matrix(size_out: int, size_in: int) -> np.ndarray:
    """``(size_out, size_in)`` linear interpolation with half-pixel centres and clamped edges,
    as ``torch.nn.functional.interpolate(..., align_corners=False)`` and ``tf.image.resize``."""
    position = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    fraction = position - low
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), low), 1 - fraction)
    np.add.at(matrix, (np.arange(size_out), high), fraction)
    return matrix


def resize_maps(maps: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` maps to ``size = (height, width)`` (no antialiasing)."""
    rows = _interpolation_matrix(size[0], maps.shape[1]).astype(maps.dtype)
    cols = _interpolation_matrix(size[1], maps.shape[2]).astype(maps.dtype)
    return rows @ maps @ cols.T


def project_on_first_component(weighted: np.ndarray) -> np.ndarray:
    """Each image's ``(h*w, K)`` matrix projected on its first right singular vector, the
    sign chosen so that the vector's components sum to a positive value: ``(N, h, w)``."""
    n_images, height, width, channels = weighted.shape
    matrices = weighted.reshape(n_images, height * width, channels)
    _, _, right = np.linalg.svd(matrices, full_matrices=False)
    direction = right[:, 0, :]
    direction = np.where(direction.sum(axis=1, keepdims=True) < 0, -direction, direction)
    return np.einsum("npk,nk->np", matrices, direction).reshape(n_images, height, width)


def combine(weighted: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Maps from weighted activations: their sum over channels, or their first principal
    component with ``eigen_smooth``; normalised."""
    raw = project_on_first_component(weighted) if eigen_smooth else weighted.sum(axis=-1)
    return normalize_maps(raw)


def _channel_weights(activations, weights):
    return activations * weights[:, None, None, :].astype(activations.dtype, copy=False)


def _gradcam_weighted(activations, gradients):
    return _channel_weights(activations, gradients.mean(axis=(1, 2)))


def _gradcam_plus_plus_weighted(activations, gradients):
    squared = gradients**2
    denominator = 2 * squared + activations.sum(axis=(1, 2), keepdims=True) * gradients**3
    alphas = np.divide(squared, denominator, out=np.zeros_like(squared), where=denominator != 0)
    return _channel_weights(activations, (alphas * np.maximum(gradients, 0)).sum(axis=(1, 2)))


def _xgradcam_weighted(activations, gradients):
    totals = activations.sum(axis=(1, 2))
    weights = np.divide((gradients * activations).sum(axis=(1, 2)), totals,
                        out=np.zeros_like(totals), where=totals != 0)
    return _channel_weights(activations, weights)


def _weighted_by_gradients(method, activations, gradients):
    if method == "gradcam":
        return _gradcam_weighted(activations, gradients)
    if method == "gradcam++":
        return _gradcam_plus_plus_weighted(activations, gradients)
    if method == "xgradcam":
        return _xgradcam_weighted(activations, gradients)
    if method == "hirescam":
        return gradients * activations
    if method == "gradcam-elementwise":
        return np.maximum(gradients * activations, 0)
    return np.maximum(gradients, 0) * activations   # layercam


def scorecam_weights(masked_scores: np.ndarray) -> np.ndarray:
    """Softmax over channels of the ``(N, K)`` masked scores."""
    shifted = masked_scores - masked_scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def ablationcam_weights(scores: np.ndarray, ablated_scores: np.ndarray) -> np.ndarray:
    """``(y - y_k) / y`` for the ``(N,)`` scores and the ``(N, K)`` scores with channel k ablated
    (zero where ``y`` is zero)."""
    scores = scores[:, None]
    drop = scores - ablated_scores
    return np.divide(drop, scores, out=np.zeros_like(drop), where=scores != 0)


def weighted_activations(method: str, activations: np.ndarray, gradients=None, scores=None,
                         channel_scores=None) -> np.ndarray:
    """The weighted activations of ``method``: gradient methods need ``gradients``;
    ``scorecam`` needs the masked ``channel_scores`` ``(N, K)``; ``ablationcam`` needs the
    target ``scores`` ``(N,)`` and the ablated ``channel_scores``; ``eigencam`` needs nothing."""
    if method in GRADIENT_METHODS:
        return _weighted_by_gradients(method, activations, gradients)
    if method == "scorecam":
        return _channel_weights(activations, scorecam_weights(channel_scores))
    if method == "ablationcam":
        return _channel_weights(activations, ablationcam_weights(scores, channel_scores))
    if method == "eigencam":
        return activations
    raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")


def gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM: ``ReLU(sum_k mean_ij(G_k) A_k)``, normalised."""
    return combine(_gradcam_weighted(activations, gradients))


def gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++: ``w_k = sum_ij alpha_ij^k ReLU(G_ij^k)`` with
    ``alpha = G^2 / (2 G^2 + sum_ab(A_ab^k) G^3)`` (zero where the denominator is zero)."""
    return combine(_gradcam_plus_plus_weighted(activations, gradients))


def xgradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """XGrad-CAM: ``w_k = sum_ij A_ij^k G_ij^k / sum_ij A_ij^k``, normalised."""
    return combine(_xgradcam_weighted(activations, gradients))


def hirescam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """HiResCAM: ``ReLU(sum_k G_k * A_k)``, normalised."""
    return combine(gradients * activations)


def gradcam_elementwise(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Element-wise Grad-CAM: ``sum_k ReLU(G_k * A_k)``, normalised."""
    return combine(np.maximum(gradients * activations, 0))


def layercam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Layer-CAM: ``ReLU(sum_k ReLU(G_k) * A_k)``, normalised."""
    return combine(np.maximum(gradients, 0) * activations)


def scorecam(activations: np.ndarray, masked_scores: np.ndarray) -> np.ndarray:
    """Score-CAM from ``masked_scores`` of shape ``(N, K)``: the target score of image n
    multiplied by channel k of its activations, upsampled to the input size and scaled
    to [0, 1]. The weights are their softmax over channels."""
    return combine(weighted_activations("scorecam", activations, channel_scores=masked_scores))


def ablationcam(activations: np.ndarray, scores: np.ndarray, ablated_scores: np.ndarray) -> np.ndarray:
    """Ablation-CAM: ``ReLU(sum_k (y - y_k) / y * A_k)``, normalised."""
    return combine(weighted_activations("ablationcam", activations, scores=scores,
                                        channel_scores=ablated_scores))


def eigencam(activations: np.ndarray) -> np.ndarray:
    """Eigen-CAM: the activations projected on their first principal direction."""
    return combine(activations, eigen_smooth=True)


def _rescaled(term: np.ndarray) -> np.ndarray:
    """``|term|`` shifted and scaled to [0, 1] per image, over all its positions and channels."""
    term = np.abs(term)
    low = term.min(axis=(1, 2, 3), keepdims=True)
    span = term.max(axis=(1, 2, 3), keepdims=True) - low
    return np.divide(term - low, span, out=np.zeros_like(term), where=span > 0)


def fullgrad(input_term: np.ndarray, bias_terms) -> np.ndarray:
    """FullGrad from ``input_term`` = ``dy/dx * x`` of shape ``(N, H, W, C)`` and ``bias_terms``,
    one ``dy/dz * b`` of shape ``(N, h, w, K)`` per layer with a bias: each term's absolute value,
    rescaled to [0, 1] per image, upsampled bilinearly to ``(H, W)`` and summed over its channels;
    the terms added up and normalised, as the paper's implementation does."""
    size = input_term.shape[1:3]
    total = _rescaled(input_term).sum(axis=-1)
    for term in bias_terms:
        # Upsampling is linear: summing the channels first gives the same map.
        summed = _rescaled(term).sum(axis=-1)
        total = total + (summed if summed.shape[1:] == size else resize_maps(summed, size))
    return normalize_maps(total)


def from_gradients(method: str, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Maps of the gradient method named ``method`` (one of :data:`GRADIENT_METHODS`)."""
    return combine(_weighted_by_gradients(method, activations, gradients))
