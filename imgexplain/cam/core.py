"""The :class:`CAM` explainer: one forward (and backward) pass, the method's weighting, and the
optional refinements of pytorch-grad-cam (several layers, test-time augmentation, eigen smoothing,
maps at the input size). Masked and ablated passes run in chunks bounded in bytes."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_class_indices, check_positive_int, check_size, is_int
from imgexplain.backends import cam_backend, cam_frameworks
from imgexplain.cam.maps import normalize_maps, resize_maps
from imgexplain.cam.methods import method_named
from imgexplain.model_outputs import check_target_range
from imgexplain.cam.passes import Passes
from imgexplain.targets import ClassScore

__all__ = ["CAM", "CAMResult"]

# Test-time augmentations of aug_smooth, as pytorch-grad-cam's: horizontal flips times input scalings.
_AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (1.0, 0.9, 1.1))
_ACCEPTED_TARGETS = "None, an int, a callable, or one int or callable per image"


def _check_targets(targets, n_images, n_classes):
    """``(class indices, callables)``: an int64 array (-1 where the top class is to be taken)
    and None, or None and one callable per image."""
    if targets is None:
        return np.full(n_images, -1, dtype=np.int64), None
    if callable(targets) and not is_int(targets):
        return None, [targets] * n_images
    one_per_image = (hasattr(targets, "__len__") and getattr(targets, "ndim", 1) > 0
                     and not isinstance(targets, (str, bytes)) and len(targets) == n_images)
    if one_per_image and any(callable(item) and not is_int(item) for item in targets):
        return None, [ClassScore(item) if is_int(item) else item for item in targets]
    values = check_class_indices(targets, n_images, accepted=_ACCEPTED_TARGETS)
    if n_classes is not None:
        check_target_range(values, n_classes)
    return values, None


def _category(target):
    """The class a target object names with an int ``category`` attribute, else -1."""
    category = getattr(target, "category", None)
    return int(category) if is_int(category) else -1


def _check_options(method, options):
    """The method's options: its defaults updated with ``options``."""
    if options is None:
        return dict(method.options)
    if not isinstance(options, dict):
        raise TypeError(f"options must be None or a dict; got {type(options).__name__}")
    unknown = sorted(set(options) - set(method.options))
    if unknown:
        raise ValueError(f"method {method.name!r} takes the options {sorted(method.options)}; got {unknown}")
    return {**method.options, **options}


def _check_size(size):
    if size is None or size == "input":
        return size
    if not isinstance(size, (tuple, list)):
        error = ValueError if isinstance(size, str) else TypeError
        raise error(f"size must be None (the layer's resolution), 'input' or (height, width); got {size!r}")
    return check_size(size, "size")


@dataclass(frozen=True)
class CAMResult:
    """What :meth:`CAM.compute` returns for a batch of N images.

    :meth:`CAMExplanation.from_result <imgexplain.cam.explanation.CAMExplanation.from_result>` turns
    the result for one image into the explanation that :func:`imgexplain.explain_prediction` returns.

    Attributes
    ----------
    maps : (N, h, w) float32 ndarray
        The maps, each scaled to [0, 1].
    targets : (N,) int64 ndarray
        The class explained in each image: for a target object, its int ``category`` attribute
        (as the targets of :mod:`imgexplain.targets` have), else -1.
    scores : (N,) ndarray
        The score explained, the model's output for that class.
    layer : str or list of str
        The layer's name (a list for several layers).
    method : str
        The method, one of :data:`imgexplain.cam.methods.METHODS`.

    Examples
    --------
    >>> import torch
    >>> from imgexplain import CAM
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> images = torch.rand(2, 3, 8, 8)
    >>> result = CAM(model).compute(images, targets=[0, 2])
    >>> result.maps.shape, result.targets, result.method
    ((2, 8, 8), array([0, 2]), 'gradcam')
    """

    maps: np.ndarray
    targets: np.ndarray
    scores: np.ndarray
    layer: object
    method: str


class CAM:
    """Class activation maps for a batch of images.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
        Keras 3 (TensorFlow backend) takes ``(N, H, W, C)`` images, PyTorch ``(N, C, H, W)``;
        numpy arrays or the framework's tensors (finite values). The score explained is the
        model's output as it is (a probability after a softmax, a logit otherwise). A model with
        one output is a sigmoid: class 1 is its output, class 0 the complement.
    layer : None, str, int, layer, or a list of them
        The layer whose activations are weighted. None takes the last layer whose output is a
        4-D feature map larger than 1x1 (searching nested Keras models; for PyTorch, the last
        module to produce one when the model runs, skipping modules that run more than once).
        When transformer tokens ``(N, extra + s*s, C)`` come after every feature map, None takes
        the last token output the score depends on through its patches, and turns it into an
        ``s x s`` map. A name, an index or the layer object also work. Several layers give one
        map each, resized to a common size and averaged.
    method : str
        One of :data:`imgexplain.cam.methods.METHODS` (see :data:`imgexplain.cam.methods.REGISTRY`).
    output : None, int or str
        For models with several outputs, which one to explain.
    batch_size : int
        At most this many masked (``scorecam``) or ablated (``ablationcam``) images per model call.
    reshape_transform : callable, optional
        Turns the layer's output tensor (and its gradient) into a 4-D feature map: ``(N, C, h, w)``
        for PyTorch, ``(N, h, w, C)`` for Keras; as in pytorch-grad-cam.
    size : None, 'input' or (height, width)
        The maps' size: the layer's resolution (the largest one for several layers), the input's
        (bilinear upsampling, as pytorch-grad-cam returns them), or the one given.
    forward : callable, optional
        ``forward(batch)``: a numpy batch of model inputs (the layout ``CAM`` takes) to the
        ``(N, ...)`` numpy outputs of the output explained. Runs ``scorecam``'s masked passes,
        for instance on a faster runtime.
    max_chunk_bytes : int
        Bound on the bytes of masked images built at once.
    verbose : bool
        Show a progress bar (tqdm) over the masked or ablated passes.
    options : dict, optional
        The method's own keyword arguments (``Method.options`` in the registry), for instance
        ``{"k": 3}`` for ``fem``, ``{"kernel": "rbf"}`` for ``kpcacam``, ``{"seed": 0}`` for ``randomcam``.

    Calling the object returns the maps, ``(N, h, w)`` in [0, 1]; :meth:`compute` also returns
    the explained classes and their scores. ``targets`` may be None (each image's top class), an
    int, a callable on one image's output (see :mod:`imgexplain.targets`), or one per image.

    Raises
    ------
    TypeError
        `reshape_transform` or `forward` is not callable, `model` is neither a Keras nor a
        PyTorch model, or `method`, `batch_size`, `max_chunk_bytes` or `size` has the wrong type.
    ValueError
        An unknown `method` or `layer`, a `batch_size`, `max_chunk_bytes` or `size` out of range, or
        a `layer` given with ``method="fullgrad"``, or an option the method does not take.

    See Also
    --------
    imgexplain.explain_prediction : one image, with eli5's API.

    Examples
    --------
    >>> import torch
    >>> from imgexplain import CAM
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> images = torch.rand(2, 3, 8, 8)
    >>> cam = CAM(model)
    >>> maps = cam(images)
    >>> maps.shape, float(maps.min()), float(maps.max())
    ((2, 8, 8), 0.0, 1.0)
    >>> cam.layer
    '1'
    >>> CAM(model, method="scorecam", layer="0")(images, targets=1).shape
    (2, 8, 8)
    """

    def __init__(self, model: Any, layer: Any = None, method: str = "gradcam", output: int | str | None = None,
                 batch_size: int = 32, reshape_transform: Callable | None = None,
                 size: str | tuple[int, int] | None = None, forward: Callable | None = None,
                 max_chunk_bytes: int = 256 * 2**20, verbose: bool = False, options: dict | None = None) -> None:
        self._method = method_named(method)
        self.options = _check_options(self._method, options)
        batch_size = check_positive_int(batch_size, "batch_size")
        max_chunk_bytes = check_positive_int(max_chunk_bytes, "max_chunk_bytes")
        for name, value in (("reshape_transform", reshape_transform), ("forward", forward)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be None or a callable; got {type(value).__name__}")
        if isinstance(layer, (list, tuple)) and not layer:
            raise ValueError("layer must not be an empty list")
        if not self._method.takes_layer and layer is not None:
            raise ValueError(f"method {self._method.name!r} uses every layer with a bias; leave layer=None")
        self.model = model
        self.method = self._method.name
        self.batch_size = int(batch_size)
        self.size = _check_size(size)
        self.forward = forward
        self.max_chunk_bytes = int(max_chunk_bytes)
        self.verbose = bool(verbose)
        self._several = isinstance(layer, (list, tuple)) or not self._method.takes_layer
        layers = None if layer is None else (list(layer) if self._several else [layer])
        self._backend = cam_backend(model, layers, output, reshape_transform)
        if self._method.needs not in self._backend.computes:
            raise ValueError(f"method {self.method!r} needs {self._method.needs}, which the "
                             f"{type(model).__module__.split('.')[0]} backend does not compute; it is "
                             f"available for {' and '.join(cam_frameworks(self._method.needs))} models")

    @property
    def _passes(self) -> Passes:
        """The masked and ablated passes, with the bounds as they are now (they may be reassigned)."""
        return Passes(self._backend, self.forward, self.batch_size, self.max_chunk_bytes, self.verbose)

    def predict(self, images: Any) -> np.ndarray:
        """The model's explained output for ``images``, as numpy (one forward pass, no gradients).

        Examples
        --------
        >>> import torch
        >>> from imgexplain import CAM
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten(), torch.nn.Linear(32, 3))
        >>> CAM(model, layer="0").predict(torch.zeros(2, 3, 4, 4)).shape
        (2, 3)
        """
        return self._backend.predict(self._backend.to_numpy(self._backend.prepare(images)))

    def activations(self, images: Any) -> list[np.ndarray]:
        """Each layer's activations for ``images``, channels last ``(N, h, w, K)`` (no gradients).

        Examples
        --------
        >>> import torch
        >>> from imgexplain import CAM
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten(), torch.nn.Linear(32, 3))
        >>> CAM(model, layer="0").activations(torch.zeros(1, 3, 4, 4))[0].shape
        (1, 4, 4, 2)
        """
        images = self._backend.prepare(images)
        return self._backend.forward(images, np.full(images.shape[0], -1, dtype=np.int64), gradients=False)[0]

    @property
    def layer(self) -> str | list[str] | None:
        """Name of the layer explained (a list for several), known once the model has run when it
        must be found by running."""
        names = self._backend.layer_names
        if names is None or self._several:
            return names
        return names[0]

    def __call__(self, images: Any, targets: Any = None, aug_smooth: bool = False,
                 eigen_smooth: bool = False) -> np.ndarray:
        """The maps of ``images``, ``(N, h, w)`` in [0, 1]: ``compute(...).maps``; see :meth:`compute`.

        Examples
        --------
        >>> import torch
        >>> from imgexplain import CAM
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
        >>> images = torch.rand(2, 3, 8, 8)
        >>> CAM(model)(images, targets=[0, 2]).shape
        (2, 8, 8)
        """
        return self.compute(images, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth).maps

    def compute(self, images: Any, targets: Any = None, aug_smooth: bool = False,
                eigen_smooth: bool = False) -> CAMResult:
        """The maps of ``images`` with the classes explained and their scores.

        Parameters
        ----------
        images : array or tensor
            ``(N, H, W, C)`` for Keras, ``(N, C, H, W)`` for PyTorch, as the model takes them.
        targets : None, int, callable, or a sequence of one per image
            None explains each image's top class; an int, one class for all; a callable takes one
            image's output and returns the score (see :mod:`imgexplain.targets`).
        aug_smooth : bool
            Average the maps of horizontally flipped and scaled (x0.9, x1.1) inputs, as
            pytorch-grad-cam.
        eigen_smooth : bool
            Take the first principal component of the weighted activations instead of their sum
            (not for ``fullgrad``).

        Returns
        -------
        CAMResult
            ``maps`` (N, h, w) in [0, 1], ``targets``, ``scores``, ``layer`` and ``method``.

        Raises
        ------
        TypeError
            `targets` of a wrong type, or `images` that are not an array or tensor.
        ValueError
            One target per image expected, a class index out of range, images of a wrong shape or
            with NaN, or `eigen_smooth` with ``fullgrad``.
        RuntimeError
            A PyTorch model called under ``torch.inference_mode()``, where no gradient exists.

        Examples
        --------
        >>> import torch
        >>> from imgexplain import CAM
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Sequential(
        ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
        >>> images = torch.rand(2, 3, 8, 8)
        >>> result = CAM(model).compute(images, aug_smooth=True)
        >>> result.maps.shape, result.targets.shape, result.scores.shape
        ((2, 8, 8), (2,), (2,))
        """
        if eigen_smooth and not self._method.takes_layer:
            raise ValueError(f"eigen_smooth does not apply to method {self.method!r}")
        images = self._backend.prepare(images)
        classes, callables = _check_targets(targets, images.shape[0], self._backend.n_classes)
        maps, chosen, scores = self._maps(images, classes, callables, eigen_smooth)
        if callables is not None:
            chosen = np.array([_category(target) for target in callables], dtype=np.int64)
        if aug_smooth:
            if callables is None:
                classes = chosen
            total = maps
            for flip, factor in _AUGMENTATIONS[1:]:
                augmented = self._backend.flip(images) if flip else images
                augmented_maps = self._maps(augmented * factor, classes, callables, eigen_smooth)[0]
                total = total + (augmented_maps[:, :, ::-1] if flip else augmented_maps)
            maps = normalize_maps(total)
        return CAMResult(maps=maps, targets=chosen, scores=scores, layer=self.layer, method=self.method)

    # --- one pass --------------------------------------------------------------------

    def _maps(self, images, classes, callables, eigen_smooth):
        targets = classes if callables is None else callables
        if not self._method.takes_layer:
            return self._whole_network(images, targets)
        needs = self._method.needs
        activations, grads, chosen, scores = self._backend.forward(
            images, targets, gradients=needs in ("gradients", "hessian"), hessian=needs == "hessian")
        per_layer = []
        for index, layer_activations in enumerate(activations):
            if layer_activations.shape[1:3] == (1, 1):
                warnings.warn(f"layer {self._backend.layer_names[index]!r} outputs a 1x1 feature map: "
                              f"its map cannot say where, and is zero", stacklevel=4)
                per_layer.append(np.zeros(layer_activations.shape[:3], dtype=np.float32))
                continue
            inputs = self._inputs(needs, images, index, layer_activations, grads, chosen, scores, callables)
            per_layer.append(self._method.function(layer_activations, *inputs, eigen_smooth=eigen_smooth,
                                                   **self.options))
        return self._merge(per_layer, images), chosen, scores

    def _inputs(self, needs, images, index, activations, grads, chosen, scores, callables):
        """The arguments after the activations that a method with these ``needs`` takes."""
        if needs == "masked passes":
            return (self._passes.masked_scores(images, activations, chosen, callables),)
        if needs == "ablation":
            return scores, self._passes.ablated_scores(images, index, activations.shape[-1], chosen, callables)
        if needs == "nothing":
            return ()
        return grads[index] if needs == "hessian" else (grads[index],)   # (G, H) or (G,)

    def _whole_network(self, images, targets):
        input_term, bias_terms, chosen, scores = self._backend.fullgrad_terms(images, targets)
        maps = self._method.function(input_term, bias_terms)
        if self.size not in (None, "input") and maps.shape[1:] != self.size:
            maps = normalize_maps(resize_maps(maps, self.size))
        return maps, chosen, scores

    def _merge(self, per_layer, images):
        if self.size == "input":
            size = tuple(self._backend.spatial_size(images))
        elif self.size is not None:
            size = self.size
        else:
            size = max((maps.shape[1:] for maps in per_layer), key=lambda shape: shape[0] * shape[1])
        resized = [maps if maps.shape[1:] == size else normalize_maps(resize_maps(maps, size))
                   for maps in per_layer]
        if len(resized) == 1:
            return resized[0]
        return normalize_maps(np.mean(resized, axis=0))
