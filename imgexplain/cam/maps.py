"""Operations on maps and weighted activations shared by every CAM method: rectify and scale,
bilinear resizing, and the projections on a first component (linear and kernel PCA).

Activations are channels last, ``(N, h, w, K)``; maps are ``(N, h, w)``. NaN activations count
as zero in the projections (a NaN would otherwise spread through the whole decomposition).
"""
from __future__ import annotations

import numpy as np

__all__ = ["normalize_maps", "resize_maps", "project_on_first_component", "centered_projection",
           "kernel_projection", "combine", "KERNELS"]


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


def _matrices(weighted: np.ndarray) -> np.ndarray:
    """Each image's ``(h*w, K)`` matrix, NaN replaced by zero (a copy: the input is left as it is)."""
    n_images, height, width, channels = weighted.shape
    return np.nan_to_num(weighted.reshape(n_images, height * width, channels), nan=0.0)


def project_on_first_component(weighted: np.ndarray) -> np.ndarray:
    """Each image's ``(h*w, K)`` matrix, centred over positions (as pytorch-grad-cam does: without it
    the map of non-negative activations is mostly their mean), projected on its first right singular
    vector, the sign chosen so that the vector's components sum to a positive value: ``(N, h, w)``."""
    matrices = _matrices(weighted)
    matrices = matrices - matrices.mean(axis=1, keepdims=True)
    _, _, right = np.linalg.svd(matrices, full_matrices=False)
    direction = right[:, 0, :]
    direction = np.where(direction.sum(axis=1, keepdims=True) < 0, -direction, direction)
    return np.einsum("npk,nk->np", matrices, direction).reshape(weighted.shape[:3])


def centered_projection(weighted: np.ndarray) -> np.ndarray:
    """Each image's ``(h*w, K)`` matrix, centred over positions, projected on its first right
    singular vector; the sign chosen so that the largest magnitude is positive (Seg-Eigen-CAM's
    sign correction, Chung and Ying, 2025): ``(N, h, w)``."""
    matrices = _matrices(weighted)
    matrices = matrices - matrices.mean(axis=1, keepdims=True)
    _, _, right = np.linalg.svd(matrices, full_matrices=False)
    projections = np.einsum("npk,nk->np", matrices, right[:, 0, :])
    flip = np.abs(projections.min(axis=1)) > np.abs(projections.max(axis=1))
    return np.where(flip[:, None], -projections, projections).reshape(weighted.shape[:3])


def kernel_projection(activations: np.ndarray, kernel: str = "sigmoid", gamma: float | None = None) -> np.ndarray:
    """Each image's positions, centred, projected on the first component of a kernel PCA
    (Scholkopf et al., 1998), as KPCA-CAM does (Karmani et al., 2024): ``(N, h, w)``.

    The kernel of two positions' channel vectors x, y is ``tanh(gamma x.y + 1)`` (``"sigmoid"``),
    ``exp(-gamma |x - y|^2)`` (``"rbf"``), ``(gamma x.y + 1)^3`` (``"poly"``), ``x.y``
    (``"linear"``) or ``x.y / (|x| |y|)`` (``"cosine"``), as scikit-learn's; ``gamma`` defaults
    to ``1 / K``. The Gram matrix is centred in feature space; the projection is the top eigenvector
    times the square root of its eigenvalue, its largest magnitude made positive.
    """
    matrices = _matrices(activations)
    matrices = matrices - matrices.mean(axis=1, keepdims=True)
    gamma = 1.0 / matrices.shape[2] if gamma is None else float(gamma)
    dots = matrices @ np.swapaxes(matrices, 1, 2)
    if kernel == "sigmoid":
        gram = np.tanh(gamma * dots + 1)
    elif kernel == "rbf":
        squared = np.einsum("npk,npk->np", matrices, matrices)
        gram = np.exp(-gamma * (squared[:, :, None] + squared[:, None, :] - 2 * dots))
    elif kernel == "poly":
        gram = (gamma * dots + 1) ** 3
    elif kernel == "linear":
        gram = dots
    elif kernel == "cosine":
        norms = np.sqrt(np.einsum("npk,npk->np", matrices, matrices))
        outer = norms[:, :, None] * norms[:, None, :]
        gram = np.divide(dots, outer, out=np.zeros_like(dots), where=outer > 0)
    else:
        raise ValueError(f"kernel must be one of {list(KERNELS)}; got {kernel!r}")
    row_means = gram.mean(axis=2, keepdims=True)
    centred = gram - row_means - np.swapaxes(row_means, 1, 2) + gram.mean(axis=(1, 2), keepdims=True)
    values, vectors = np.linalg.eigh(centred)
    top = vectors[:, :, -1] * np.sqrt(np.maximum(values[:, -1:], 0))
    largest = np.take_along_axis(top, np.abs(top).argmax(axis=1)[:, None], axis=1)
    return np.where(largest < 0, -top, top).reshape(activations.shape[:3]).astype(activations.dtype)


KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")


def combine(weighted: np.ndarray, eigen_smooth: bool = False) -> np.ndarray:
    """Maps from weighted activations: their sum over channels, or their first principal
    component with ``eigen_smooth``; normalised."""
    raw = project_on_first_component(weighted) if eigen_smooth else weighted.sum(axis=-1)
    return normalize_maps(raw)
