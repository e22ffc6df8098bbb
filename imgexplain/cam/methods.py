"""Class activation map weightings on numpy arrays.

Every function takes a layer's activations ``A`` of shape ``(N, h, w, K)``
(channels last) and returns maps of shape ``(N, h, w)``, rectified and divided
by their maximum so that they lie in [0, 1]; a map that is zero everywhere
stays zero. Gradients ``G`` are those of each image's target score with respect
to ``A``, with the same shape.

- ``gradcam``: weights are the spatial means of ``G`` (Selvaraju et al., 2017).
- ``gradcam++``: weights are the positive gradients weighted by the closed-form
  alphas of Chattopadhyay et al. (2018).
- ``hirescam``: ``G * A`` summed over channels, without averaging the gradients
  (Draelos and Carin, 2020).
- ``layercam``: ``max(G, 0) * A`` summed over channels (Jiang et al., 2021).
- ``scorecam``: weights are a softmax over channels of the target score of the
  image masked by each upsampled channel (Wang et al., 2020); the framework
  code computes those scores, see :func:`scorecam`.
- ``eigencam``: the projection of ``A`` on its first principal direction
  (Muhammad and Yeasin, 2020); it needs neither gradients nor a target.
"""
from __future__ import annotations

import numpy as np

GRADIENT_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")
METHODS = GRADIENT_METHODS + ("scorecam", "eigencam")

__all__ = [
    "METHODS",
    "GRADIENT_METHODS",
    "normalize_maps",
    "gradcam",
    "gradcam_plus_plus",
    "hirescam",
    "layercam",
    "scorecam",
    "eigencam",
    "from_gradients",
]


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Rectify ``(N, h, w)`` maps and divide each by its maximum; all-zero maps stay zero."""
    maps = np.maximum(maps, 0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)


def _weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_k weights[n, k] * activations[n, :, :, k]`` for every image n."""
    return normalize_maps(np.einsum("nhwk,nk->nhw", activations, weights))


def gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM: ``ReLU(sum_k mean_ij(G_k) A_k)``, normalised."""
    return _weighted_sum(activations, gradients.mean(axis=(1, 2)))


def gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++: ``w_k = sum_ij alpha_ij^k ReLU(G_ij^k)`` with
    ``alpha = G^2 / (2 G^2 + sum_ab(A_ab^k) G^3)`` (zero where the denominator is zero)."""
    squared = gradients**2
    denominator = 2 * squared + activations.sum(axis=(1, 2), keepdims=True) * gradients**3
    alphas = np.divide(squared, denominator, out=np.zeros_like(squared), where=denominator != 0)
    weights = (alphas * np.maximum(gradients, 0)).sum(axis=(1, 2))
    return _weighted_sum(activations, weights)


def hirescam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """HiResCAM: ``ReLU(sum_k G_k * A_k)``, normalised."""
    return normalize_maps((gradients * activations).sum(axis=-1))


def layercam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Layer-CAM: ``ReLU(sum_k ReLU(G_k) * A_k)``, normalised."""
    return normalize_maps((np.maximum(gradients, 0) * activations).sum(axis=-1))


def scorecam(activations: np.ndarray, masked_scores: np.ndarray) -> np.ndarray:
    """Score-CAM from ``masked_scores`` of shape ``(N, K)``: the target score of image n
    multiplied by channel k of its activations, upsampled to the input size and scaled
    to [0, 1]. The weights are their softmax over channels."""
    shifted = masked_scores - masked_scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    weights /= weights.sum(axis=1, keepdims=True)
    return _weighted_sum(activations, weights.astype(activations.dtype, copy=False))


def eigencam(activations: np.ndarray) -> np.ndarray:
    """Eigen-CAM: each image's ``(h*w, K)`` activation matrix projected on its first right
    singular vector, the sign chosen so that the vector's components sum to a positive value."""
    n_images, height, width, channels = activations.shape
    matrices = activations.reshape(n_images, height * width, channels)
    _, _, right = np.linalg.svd(matrices, full_matrices=False)
    direction = right[:, 0, :]
    direction = np.where(direction.sum(axis=1, keepdims=True) < 0, -direction, direction)
    projection = np.einsum("npk,nk->np", matrices, direction)
    return normalize_maps(projection.reshape(n_images, height, width))


_GRADIENT_FUNCTIONS = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "hirescam": hirescam,
    "layercam": layercam,
}


def from_gradients(method: str, activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Maps of the gradient method named ``method`` (one of :data:`GRADIENT_METHODS`)."""
    return _GRADIENT_FUNCTIONS[method](activations, gradients)
