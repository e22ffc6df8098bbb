"""How faithful a map is, as pytorch-grad-cam's metrics measure it: the change of the target's score when
the image is multiplied by the map (:class:`CamMultImageConfidenceChange`), or when its most or least
relevant pixels are removed and filled in by noisy linear imputation (ROAD: Rong et al., "A Consistent
and Efficient Evaluation Strategy for Attribution Methods", ICML 2022).

The classes keep pytorch-grad-cam's names and call signature, ``metric(input_tensor, cams, targets,
model)``, for PyTorch and Keras models (images as the model takes them). The imputation's noise is
drawn from ``np.random.default_rng(seed)``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from imgexplain._checks import check_number

__all__ = ["NoisyLinearImputer", "CamMultImageConfidenceChange", "DropInConfidence", "IncreaseInConfidence",
           "ROADMostRelevantFirst", "ROADLeastRelevantFirst", "ROADMostRelevantFirstAverage",
           "ROADLeastRelevantFirstAverage", "ROADCombined", "PERCENTILES"]

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
"""The percentiles the ROAD averages run over."""

# (row offset, column offset) -> weight of the neighbour in the imputation: 1/6 beside, 1/12 diagonal.
NEIGHBOUR_WEIGHTS = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12, (0, -1): 1 / 6,
                     (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}


class NoisyLinearImputer:
    """Fill in the removed pixels of an image so that each is the weighted mean of its neighbours
    (1/6 for the four beside it, 1/12 for the four diagonal ones, over the neighbours inside the image),
    solved as one sparse linear system, plus Gaussian noise of standard deviation ``noise``.

    Parameters
    ----------
    noise : float
        Standard deviation of the noise added to the filled-in pixels, >= 0.
    seed : int, optional
        Seeds the noise.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.cam.metrics import NoisyLinearImputer
    >>> image = np.array([[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]]) + 1   # (C, H, W)
    >>> keep = np.ones((3, 3)); keep[1, 1] = 0
    >>> NoisyLinearImputer(noise=0.0)(image, keep)[0, 1, 1]    # the mean of its neighbours
    np.float64(1.0)
    """

    def __init__(self, noise: float = 0.01, seed: int | None = None) -> None:
        self.noise = check_number(noise, "noise", low=0)
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """``image`` ``(C, H, W)`` with the pixels where ``keep`` ``(H, W)`` is 0 filled in (a new array)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.linalg import spsolve

        height, width = keep.shape
        missing = np.flatnonzero(np.asarray(keep).ravel() < 0.5)
        filled = np.array(image, dtype=np.float64).reshape(image.shape[0], -1)
        if missing.size == 0:
            return filled.reshape(image.shape)
        unknown_index = np.full(height * width, -1)
        unknown_index[missing] = np.arange(missing.size)
        rows, columns = np.divmod(missing, width)
        matrix_rows, matrix_columns, values = [], [], []
        right_side = np.zeros((missing.size, filled.shape[0]))
        diagonal = np.zeros(missing.size)
        for (down, right), weight in NEIGHBOUR_WEIGHTS.items():
            inside = (rows + down >= 0) & (rows + down < height) & (columns + right >= 0) & (columns + right < width)
            neighbour = (rows + down) * width + columns + right
            diagonal[inside] += weight
            unknown = inside & (unknown_index[np.where(inside, neighbour, 0)] >= 0)
            known = inside & ~unknown
            matrix_rows.append(np.flatnonzero(unknown))
            matrix_columns.append(unknown_index[neighbour[unknown]])
            values.append(np.full(unknown.sum(), weight))
            right_side[known] -= weight * filled[:, neighbour[known]].T
        matrix_rows.append(np.arange(missing.size))
        matrix_columns.append(np.arange(missing.size))
        values.append(-diagonal)
        system = coo_matrix((np.concatenate(values), (np.concatenate(matrix_rows), np.concatenate(matrix_columns))),
                            shape=(missing.size, missing.size)).tocsc()
        solution = np.asarray(spsolve(system, right_side)).reshape(missing.size, -1)
        filled[:, missing] = solution.T + self.noise * self.rng.standard_normal(solution.T.shape)
        return filled.reshape(image.shape)


def _target_scores(outputs, targets):
    return np.array([float(np.asarray(target(row)).reshape(())) for target, row in zip(targets, outputs)],
                    dtype=np.float32)


class _PerturbationConfidence:
    """The change of each image's target score when its image is perturbed by its map."""

    def perturb(self, image: np.ndarray, cam: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, input_tensor: Any, cams: np.ndarray, targets: Sequence[Callable], model: Any,
                 return_visualization: bool = False, return_diff: bool = True):
        from imgexplain.backends import cam_backend

        backend = cam_backend(model)
        pictures = np.asarray(backend.to_numpy(backend.prepare(input_tensor)), dtype=np.float32)
        cams = np.asarray(cams)
        if cams.shape != (len(pictures),) + tuple(backend.spatial_size(backend.prepare(input_tensor))):
            raise ValueError(f"cams must be (N, H, W), one map per image at the input's size; got {cams.shape}")
        if len(targets) != len(pictures):
            raise ValueError(f"targets must hold one target per image ({len(pictures)}); got {len(targets)}")
        layout = (lambda image: image) if backend.channels_first else (lambda image: np.moveaxis(image, -1, 0))
        restore = (lambda image: image) if backend.channels_first else (lambda image: np.moveaxis(image, 0, -1))
        perturbed = np.stack([restore(self.perturb(layout(picture), cam)) for picture, cam in zip(pictures, cams)])
        result = _target_scores(backend.predict(perturbed.astype(np.float32)), targets)
        if return_diff:
            result = result - _target_scores(backend.predict(pictures), targets)
        return (result, perturbed) if return_visualization else result


class CamMultImageConfidenceChange(_PerturbationConfidence):
    """The change of each image's target score when the (normalised) input is multiplied by its map.

    Called as ``metric(input_tensor, cams, targets, model, return_visualization=False,
    return_diff=True)``: ``cams`` (N, H, W) at the input's size, one target per image; returns the
    ``(N,)`` score after minus before (the score after with ``return_diff=False``), and the perturbed
    images too with ``return_visualization``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import CamMultImageConfidenceChange
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> _ = torch.nn.init.ones_(model[1].weight)
    >>> CamMultImageConfidenceChange()(torch.ones(1, 1, 2, 2), np.full((1, 2, 2), 0.5, dtype=np.float32),
    ...                                [ClassifierOutputTarget(0)], model)
    array([-2.], dtype=float32)
    """

    def perturb(self, image, cam):
        return image * cam


class DropInConfidence(CamMultImageConfidenceChange):
    """How much the score drops when the image is multiplied by its map: ``max(-change, 0)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import DropInConfidence
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> _ = torch.nn.init.ones_(model[1].weight)
    >>> DropInConfidence()(torch.ones(1, 1, 2, 2), np.zeros((1, 2, 2), dtype=np.float32),
    ...                    [ClassifierOutputTarget(0)], model)
    array([4.], dtype=float32)
    """

    def __call__(self, *args, **kwargs):
        return np.maximum(-super().__call__(*args, **kwargs), 0)


class IncreaseInConfidence(CamMultImageConfidenceChange):
    """1 where the score rises when the image is multiplied by its map, else 0.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import IncreaseInConfidence
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    >>> _ = torch.nn.init.ones_(model[1].weight)
    >>> IncreaseInConfidence()(-torch.ones(1, 1, 2, 2), np.zeros((1, 2, 2), dtype=np.float32),
    ...                        [ClassifierOutputTarget(0)], model)
    array([1.], dtype=float32)
    """

    def __call__(self, *args, **kwargs):
        return np.float32(super().__call__(*args, **kwargs) > 0)


class ROADMostRelevantFirst(_PerturbationConfidence):
    """ROAD, most relevant first: the change of the score when the pixels whose map value is at or above
    its ``percentile``-th percentile are removed and imputed (:class:`NoisyLinearImputer`); lower is better.
    ``percentile="auto"`` removes those above Otsu's threshold of the map.

    Parameters
    ----------
    percentile : float or "auto"
        In [0, 100].
    noise, seed :
        As :class:`NoisyLinearImputer`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import ROADMostRelevantFirst
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2, bias=False))
    >>> _ = torch.nn.init.ones_(model[1].weight)
    >>> cams = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    >>> ROADMostRelevantFirst(percentile=50, noise=0.0)(torch.ones(1, 1, 4, 4), cams, [ClassifierOutputTarget(0)],
    ...                                                 model)
    array([0.], dtype=float32)
    """

    most_relevant = True

    def __init__(self, percentile: float | str = 80, noise: float = 0.01, seed: int | None = None) -> None:
        if percentile != "auto":
            check_number(percentile, "percentile", 0, 100)
        self.percentile = percentile
        self.imputer = NoisyLinearImputer(noise, seed)

    def perturb(self, image, cam):
        relevance = cam if self.most_relevant else 1 - cam
        if self.percentile == "auto":
            from skimage.filters import threshold_otsu

            threshold = threshold_otsu(relevance) if np.ptp(relevance) > 0 else np.inf
        else:
            threshold = np.percentile(relevance, self.percentile)
        return self.imputer(image, (relevance < threshold).astype(np.float32))


class ROADLeastRelevantFirst(ROADMostRelevantFirst):
    """ROAD, least relevant first: the least relevant pixels removed (``1 - map`` at or above its
    ``percentile``-th percentile); higher is better. Parameters as :class:`ROADMostRelevantFirst`, default 20.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import ROADLeastRelevantFirst
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2, bias=False))
    >>> cams = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    >>> ROADLeastRelevantFirst(seed=0)(torch.ones(1, 1, 4, 4), cams, [ClassifierOutputTarget(0)], model).shape
    (1,)
    """

    most_relevant = False

    def __init__(self, percentile: float | str = 20, noise: float = 0.01, seed: int | None = None) -> None:
        super().__init__(percentile, noise, seed)


class ROADMostRelevantFirstAverage:
    """:class:`ROADMostRelevantFirst` averaged over ``percentiles``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import ROADMostRelevantFirstAverage
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2, bias=False))
    >>> cams = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    >>> metric = ROADMostRelevantFirstAverage([20, 80], seed=0)
    >>> metric(torch.ones(1, 1, 4, 4), cams, [ClassifierOutputTarget(0)], model).shape
    (1,)
    """

    metric = ROADMostRelevantFirst

    def __init__(self, percentiles: Sequence[float] = PERCENTILES, noise: float = 0.01, seed: int | None = None):
        self.percentiles = list(percentiles)
        self.metrics = [self.metric(percentile, noise, None if seed is None else seed + index)
                        for index, percentile in enumerate(self.percentiles)]

    def __call__(self, input_tensor, cams, targets, model):
        return np.mean([metric(input_tensor, cams, targets, model) for metric in self.metrics], axis=0)


class ROADLeastRelevantFirstAverage(ROADMostRelevantFirstAverage):
    """:class:`ROADLeastRelevantFirst` averaged over ``percentiles``.

    Examples
    --------
    >>> from imgexplain.cam.metrics import ROADLeastRelevantFirstAverage
    >>> len(ROADLeastRelevantFirstAverage().metrics)
    9
    """

    metric = ROADLeastRelevantFirst


class ROADCombined:
    """``(least relevant first - most relevant first) / 2``, each averaged over ``percentiles``: higher is better.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.cam.metrics import ROADCombined
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2, bias=False))
    >>> cams = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    >>> ROADCombined([50], seed=0)(torch.ones(1, 1, 4, 4), cams, [ClassifierOutputTarget(0)], model).shape
    (1,)
    """

    def __init__(self, percentiles: Sequence[float] = PERCENTILES, noise: float = 0.01, seed: int | None = None):
        self.percentiles = list(percentiles)
        self.morf_averager = ROADMostRelevantFirstAverage(percentiles, noise, seed)
        self.lerf_averager = ROADLeastRelevantFirstAverage(percentiles, noise, None if seed is None else seed + 1000)

    def __call__(self, input_tensor, cams, targets, model):
        least = self.lerf_averager(input_tensor, cams, targets, model)
        most = self.morf_averager(input_tensor, cams, targets, model)
        return (least - most) / 2
