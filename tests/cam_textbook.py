"""CAM maps computed as the papers define them, for the known-answer tests of both frameworks."""
import numpy as np


def textbook_map(method, activations, gradients):
    """One image's map from its (h, w, K) activations and gradients, as the papers define it."""
    if method == "gradcam":
        raw = sum(gradients[..., k].mean() * activations[..., k] for k in range(activations.shape[-1]))
    elif method == "hirescam":
        raw = (gradients * activations).sum(axis=-1)
    elif method == "layercam":
        raw = (np.maximum(gradients, 0) * activations).sum(axis=-1)
    else:  # gradcam++
        with np.errstate(divide="ignore", invalid="ignore"):
            alphas = gradients**2 / (2 * gradients**2 + activations.sum(axis=(0, 1)) * gradients**3)
        alphas = np.nan_to_num(alphas, nan=0.0, posinf=0.0, neginf=0.0)
        weights = (alphas * np.maximum(gradients, 0)).sum(axis=(0, 1))
        raw = (weights * activations).sum(axis=-1)
    raw = np.maximum(raw, 0)
    return raw / raw.max() if raw.max() > 0 else raw


def _positions(activations):
    """One image's (h, w, K) activations as a (h*w, K) matrix, one row per position."""
    return activations.reshape(-1, activations.shape[-1])


def _rectified(raw):
    raw = np.maximum(raw, 0)
    return raw / raw.max() if raw.max() > 0 else raw


def centred_first_component(weighted):
    """One image's (h, w, K) weighted activations, centred over positions, projected on the first
    principal direction (the top eigenvector of the K x K covariance), the sign making the largest
    magnitude positive."""
    matrix = _positions(weighted) - _positions(weighted).mean(axis=0)
    values, vectors = np.linalg.eigh(matrix.T @ matrix)
    projection = matrix @ vectors[:, np.argmax(values)]
    if abs(projection.min()) > abs(projection.max()):
        projection = -projection
    return projection.reshape(weighted.shape[:2])


def eigengradcam_map(activations, gradients):
    return _rectified(centred_first_component(gradients * activations))


def segeigencam_map(activations, gradients):
    return _rectified(centred_first_component(np.abs(gradients) * activations))


def shapleycam_map(activations, gradients, hessian_products):
    channels = activations.shape[-1]
    raw = np.zeros(activations.shape[:2])
    for k in range(channels):
        weight = np.mean(gradients[..., k] - hessian_products[..., k] / 2)
        raw += weight * activations[..., k]
    return _rectified(raw)


def fem_map(activations, k=2.0):
    raw = np.zeros(activations.shape[:2])
    for channel in range(activations.shape[-1]):
        plane = activations[..., channel]
        threshold = plane.mean() + k * plane.std()
        weight = np.count_nonzero(plane > threshold) / plane.size
        raw += weight * plane
    return _rectified(raw)


def kpca_sigmoid_map(activations, gamma=None):
    """Kernel PCA written out: the sigmoid kernel tanh(gamma x.y + 1) between every pair of centred
    positions, the Gram matrix centred as K - 1K - K1 + 1K1 with 1 = ones / n, the projection on the
    top eigenvector alpha scaled to unit norm in feature space (alpha * sqrt(lambda))."""
    matrix = _positions(activations) - _positions(activations).mean(axis=0)
    n_positions, channels = matrix.shape
    gamma = 1.0 / channels if gamma is None else gamma
    gram = np.empty((n_positions, n_positions))
    for i in range(n_positions):
        for j in range(n_positions):
            gram[i, j] = np.tanh(gamma * matrix[i] @ matrix[j] + 1)
    ones = np.full((n_positions, n_positions), 1.0 / n_positions)
    centred = gram - ones @ gram - gram @ ones + ones @ gram @ ones
    values, vectors = np.linalg.eigh(centred)
    projection = vectors[:, -1] * np.sqrt(values[-1])
    if projection[np.argmax(np.abs(projection))] < 0:
        projection = -projection
    return _rectified(projection.reshape(activations.shape[:2]))
