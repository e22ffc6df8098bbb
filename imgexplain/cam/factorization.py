"""Deep Feature Factorization (Collins et al., "Deep Feature Factorization for Concept Discovery", ECCV
2018), as pytorch-grad-cam's ``DeepFeatureFactorization``: a layer's activations over a batch, shifted to
be non-negative, factorised by non-negative matrix factorisation into concepts (channel vectors) and
their maps (where each concept is in each image).

The factorisation is Lee and Seung's multiplicative updates from a seeded random start (scikit-learn's
``NMF`` is not a dependency; its coordinate descent finds another local optimum, so concepts can come out
in another order or mix).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_positive_int
from imgexplain.cam.core import CAM
from imgexplain.cam.maps import resize_maps

__all__ = ["non_negative_factorization", "dff", "DeepFeatureFactorization"]


def non_negative_factorization(matrix: np.ndarray, n_components: int, iterations: int = 200,
                               seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(W, H)``, non-negative, with ``matrix ~ W @ H``, by Lee and Seung's multiplicative updates (least
    squares) from a random start scaled as scikit-learn's ``init="random"``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.cam.factorization import non_negative_factorization
    >>> rng = np.random.default_rng(0)
    >>> matrix = rng.random((6, 2)) @ rng.random((2, 8))
    >>> w, h = non_negative_factorization(matrix, 2, iterations=2000)
    >>> bool(np.abs(w @ h - matrix).max() < 1e-2)
    True
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.min() < 0:
        raise ValueError("matrix must be non-negative")
    rng = np.random.default_rng(seed)
    scale = np.sqrt(matrix.mean() / n_components)
    w = scale * rng.random((matrix.shape[0], n_components)) + 1e-12
    h = scale * rng.random((n_components, matrix.shape[1])) + 1e-12
    for _ in range(iterations):
        h *= (w.T @ matrix) / np.maximum(w.T @ w @ h, 1e-12)
        w *= (matrix @ h.T) / np.maximum(w @ h @ h.T, 1e-12)
    return w, h


def dff(activations: np.ndarray, n_components: int = 5, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Concepts ``(K, n_components)`` and their maps ``(N, n_components, h, w)`` from channels-last
    activations ``(N, h, w, K)``: each channel shifted by its minimum over the batch (NaN as zero),
    factorised, and the shift added back to the concepts.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.cam.factorization import dff
    >>> concepts, maps = dff(np.random.default_rng(0).random((2, 3, 4, 5)), n_components=2)
    >>> concepts.shape, maps.shape
    ((5, 2), (2, 2, 3, 4))
    """
    n_images, height, width, channels = activations.shape
    matrix = np.nan_to_num(np.moveaxis(activations, -1, 0).reshape(channels, -1), nan=0.0)
    offset = matrix.min(axis=1, keepdims=True)
    concepts, loadings = non_negative_factorization(matrix - offset, n_components, seed=seed)
    maps = loadings.reshape(n_components, n_images, height, width).transpose(1, 0, 2, 3)
    return concepts + offset, maps


class DeepFeatureFactorization:
    """pytorch-grad-cam's ``DeepFeatureFactorization``: concepts of ``target_layer`` and their maps.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
    target_layer : layer
        One layer (a module, a name or an index).
    reshape_transform : callable, optional
        As in :class:`imgexplain.CAM`.
    computation_on_concepts : callable, optional
        Applied to the concepts as a ``(n_components, K)`` tensor (a classifier's head, say): its output
        comes back as the third value.
    seed : int, optional
        Seeds the factorisation's start.

    Examples
    --------
    >>> import torch
    >>> from imgexplain.cam.factorization import DeepFeatureFactorization
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3)).eval()
    >>> dff = DeepFeatureFactorization(model, model[1], computation_on_concepts=model[4])
    >>> concepts, explanations, scores = dff(torch.rand(2, 3, 8, 8), n_components=4)
    >>> concepts.shape, explanations[0].shape, scores.shape
    ((6, 4), (4, 8, 8), (4, 3))
    """

    def __init__(self, model: Any, target_layer: Any, reshape_transform: Callable | None = None,
                 computation_on_concepts: Callable | None = None, seed: int | None = 0) -> None:
        self.model = model
        self.computation_on_concepts = computation_on_concepts
        self.seed = seed
        self._cam = CAM(model, layer=target_layer, reshape_transform=reshape_transform)

    def __call__(self, input_tensor: Any, n_components: int = 16):
        """``(concepts, explanations[, concept_outputs])``: explanations has one ``(n_components, H, W)``
        array per image, each map min-max scaled to [0, 1] at the input's size."""
        n_components = check_positive_int(n_components, "n_components")
        images = self._cam._backend.prepare(input_tensor)
        size = tuple(self._cam._backend.spatial_size(images))
        concepts, maps = dff(self._cam.activations(images)[0], n_components, self.seed)
        explanations = []
        for image_maps in maps:
            resized = resize_maps(image_maps.astype(np.float32), size)
            shifted = resized - resized.min(axis=(1, 2), keepdims=True)
            peaks = shifted.max(axis=(1, 2), keepdims=True)
            explanations.append(np.divide(shifted, peaks, out=np.zeros_like(shifted), where=peaks > 0))
        if self.computation_on_concepts is None:
            return concepts, explanations
        import torch

        with torch.no_grad():
            outputs = self.computation_on_concepts(torch.from_numpy(np.float32(concepts.T)))
        return concepts, explanations, outputs.cpu().numpy()
