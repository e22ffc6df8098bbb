"""pytorch-grad-cam's API on imgexplain's core: a class per method, of the same name and signature.

``from pytorch_grad_cam import GradCAM`` becomes ``from imgexplain import GradCAM``; the calls stay::

    with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        grayscale_cam = cam(input_tensor=input_tensor, targets=[ClassifierOutputTarget(281)])

Each class runs :class:`imgexplain.CAM` with the method of the registry entry whose ``class_name``
it bears (:data:`imgexplain.cam.methods.REGISTRY`): a new method there gets its class here with no
other change. Maps are at the input's size, as pytorch-grad-cam returns them. :class:`FinerCAM` and
:class:`RefineCAM` combine a base method's maps, as pytorch-grad-cam's classes of those names do.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from imgexplain._checks import check_number, check_positive_int
from imgexplain.cam.core import CAM
from imgexplain.cam.methods import REGISTRY
from imgexplain.targets import FinerWeightedTarget

__all__ = ["BaseCAM", "FinerCAM", "RefineCAM", "GuidedBackpropReLUModel", "CLASSES", "preprocess_image",
           "deprocess_image"] + [
    entry.class_name for entry in REGISTRY.values()]


class BaseCAM:
    """What every class of this module does; each subclass names its registry ``method``.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        Put in eval mode, as pytorch-grad-cam does.
    target_layers : list
        The layers (modules, or names or indices as :class:`imgexplain.CAM` takes) whose maps are
        averaged; ignored by methods that use the whole network (``FullGrad``).
    reshape_transform : callable, optional
        Turns a layer's output into a feature map (ViT, Swin), as in pytorch-grad-cam.
    batch_size : int
        Masked or ablated images per model call (``ScoreCAM``, ``AblationCAM``); may be reassigned.
    **options
        The method's own options (``k`` for ``FEM``, ``kernel`` and ``gamma`` for ``KPCA_CAM``,
        ``seed`` for ``RandomCAM``).

    Attributes
    ----------
    outputs : tensor
        The model's output in the last call (detached).

    Raises
    ------
    TypeError
        `target_layers` is not a list or tuple.
    ValueError
        An empty `target_layers` for a method that takes a layer, or an unknown option.

    Examples
    --------
    >>> import torch
    >>> from imgexplain import GradCAM
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> with GradCAM(model=model, target_layers=[model[1]]) as cam:
    ...     grayscale_cam = cam(input_tensor=torch.rand(2, 3, 8, 8), targets=[ClassifierOutputTarget(1)] * 2)
    >>> grayscale_cam.shape, grayscale_cam.dtype, tuple(cam.outputs.shape)
    ((2, 8, 8), dtype('float32'), (2, 3))
    """

    method = "gradcam"

    def __init__(self, model: Any, target_layers: list, reshape_transform: Callable | None = None, *,
                 batch_size: int = 32, **options: Any) -> None:
        if not isinstance(target_layers, (list, tuple)):
            raise TypeError(f"target_layers must be a list of layers; got {type(target_layers).__name__}")
        entry = REGISTRY[self.method]
        if entry.takes_layer and not target_layers:
            raise ValueError(f"{type(self).__name__} needs at least one layer in target_layers")
        if not entry.takes_layer and target_layers:
            warnings.warn(f"target_layers is ignored by {type(self).__name__}: it uses every layer with a bias",
                          stacklevel=2)
        if hasattr(model, "eval"):
            model.eval()
        self.model = model
        self.target_layers = list(target_layers)
        self.reshape_transform = reshape_transform
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._cam = CAM(model, layer=list(target_layers) if entry.takes_layer else None, method=entry.name,
                        reshape_transform=reshape_transform, size="input", batch_size=self.batch_size,
                        options=options)

    @property
    def outputs(self) -> Any:
        return self._cam._backend.outputs

    def __call__(self, input_tensor: Any, targets: list | None = None, aug_smooth: bool = False,
                 eigen_smooth: bool = False) -> np.ndarray:
        """``(N, H, W)`` float32 maps in [0, 1] at the input's size; ``targets``: None (each image's top
        class) or one target (see :mod:`imgexplain.targets`) per image."""
        self._cam.batch_size = check_positive_int(self.batch_size, "batch_size")
        if eigen_smooth and not REGISTRY[self.method].takes_layer:
            warnings.warn(f"eigen_smooth does not apply to {type(self).__name__}; ignored, as pytorch-grad-cam does",
                          stacklevel=2)
            eigen_smooth = False
        return self._cam(input_tensor, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)

    def forward(self, input_tensor: Any, targets: list | None = None, eigen_smooth: bool = False) -> np.ndarray:
        """The maps without test-time augmentation, as pytorch-grad-cam's ``forward``."""
        return self(input_tensor, targets, eigen_smooth=eigen_smooth)

    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        """Nothing to release: imgexplain removes its hooks after every call. Exceptions propagate."""


_EXAMPLE = """

    Examples
    --------
    >>> import torch
    >>> from imgexplain import {name}
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> with {name}(model=model, target_layers={layers}) as cam:
    ...     cam(input_tensor=torch.rand(2, 3, 8, 8)).shape
    (2, 8, 8)
    """


def _class_for(entry) -> type:
    """The class of registry entry ``entry``."""
    doc = (f"pytorch-grad-cam's ``{entry.class_name}``: :class:`imgexplain.CAM` with "
           f"``method={entry.name!r}`` (see :func:`imgexplain.cam.methods.{entry.function.__name__}`), "
           f"maps at the input's size. Parameters as :class:`BaseCAM`"
           + (f"; options {entry.options}." if entry.options else ".")
           + _EXAMPLE.format(name=entry.class_name, layers="[model[1]]" if entry.takes_layer else "[]"))
    return type(entry.class_name, (BaseCAM,), {"method": entry.name, "__doc__": doc, "__module__": __name__})


CLASSES = {entry.class_name: _class_for(entry) for entry in REGISTRY.values()}
"""pytorch-grad-cam's class name -> its class here, one per registry entry."""
globals().update(CLASSES)


class FinerCAM:
    """Finer-CAM (Zhang et al., 2025): a base method's map of :class:`imgexplain.targets.FinerWeightedTarget`,
    the target class against the classes whose scores are closest to it, as pytorch-grad-cam's ``FinerCAM``.

    Parameters
    ----------
    model, target_layers, reshape_transform :
        As :class:`BaseCAM`.
    base_method : class
        One of this module's classes (``GradCAM`` by default).

    Examples
    --------
    >>> import torch
    >>> from imgexplain import FinerCAM
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5))
    >>> FinerCAM(model, [model[1]])(torch.rand(2, 3, 8, 8), comparison_categories=[1, 2]).shape
    (2, 8, 8)
    """

    def __init__(self, model: Any, target_layers: list, reshape_transform: Callable | None = None,
                 base_method: type = None) -> None:
        self.base_cam = (base_method or CLASSES["GradCAM"])(model, target_layers, reshape_transform)

    @property
    def outputs(self) -> Any:
        return self.base_cam.outputs

    def __call__(self, input_tensor: Any, targets: list | None = None, eigen_smooth: bool = False,
                 alpha: float = 1, comparison_categories=(1, 2, 3), target_idx: int | None = None) -> np.ndarray:
        """Maps as :meth:`BaseCAM.__call__`. Without ``targets``, each image's main class is ``target_idx``
        (its top class when None) and its comparison classes are those at the ranks
        ``comparison_categories`` when classes are sorted by how close their score is to the main one's."""
        if targets is None:
            alpha = check_number(alpha, "alpha")
            outputs = self.base_cam._cam.predict(input_tensor)
            main = outputs.argmax(axis=-1) if target_idx is None else np.full(len(outputs), target_idx)
            ranked = np.argsort(np.abs(outputs - outputs[np.arange(len(outputs)), main][:, None]), axis=-1,
                                kind="stable")
            targets = [FinerWeightedTarget(int(main[n]), [int(ranked[n, rank]) for rank in comparison_categories],
                                           alpha) for n in range(len(outputs))]
        return self.base_cam(input_tensor, targets, eigen_smooth=eigen_smooth)

    forward = __call__

    def __enter__(self) -> FinerCAM:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        """Nothing to release; exceptions propagate."""


class RefineCAM:
    """RefineCAM: the product of a base method's maps over each of ``target_layers``, min-max scaled,
    as pytorch-grad-cam's ``RefineCAM`` (denoises the maps of early layers).

    Parameters
    ----------
    model, target_layers, reshape_transform :
        As :class:`BaseCAM`.
    base_method : class
        One of this module's classes (``GradCAMPlusPlus`` by default).
    **kwargs
        Passed to ``base_method``.

    Examples
    --------
    >>> import torch
    >>> from imgexplain import RefineCAM
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> RefineCAM(model, [model[1], model[3]])(torch.rand(1, 3, 8, 8)).shape
    (1, 8, 8)
    """

    def __init__(self, model: Any, target_layers: list, reshape_transform: Callable | None = None,
                 base_method: type = None, **kwargs: Any) -> None:
        base_method = base_method or CLASSES["GradCAMPlusPlus"]
        self.base_cam_per_layer = [base_method(model, [layer], reshape_transform, **kwargs) for layer in target_layers]

    def __call__(self, input_tensor: Any, targets: list | None = None, eigen_smooth: bool = False) -> np.ndarray:
        """Maps as :meth:`BaseCAM.__call__`: zero stays zero, else (product - min) / max of the rest."""
        product = np.prod([cam(input_tensor, targets, eigen_smooth=eigen_smooth) for cam in self.base_cam_per_layer],
                          axis=0)
        shifted = product - product.min(axis=(1, 2), keepdims=True)
        peaks = shifted.max(axis=(1, 2), keepdims=True)
        return np.divide(shifted, peaks, out=np.zeros_like(shifted), where=peaks > 0)

    forward = __call__

    def __enter__(self) -> RefineCAM:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        """Nothing to release; exceptions propagate."""


class GuidedBackpropReLUModel:
    """Guided backpropagation (Springenberg et al., 2015), as pytorch-grad-cam's class of that name: the
    input gradient of a class score where every ``torch.nn.ReLU`` passes back only positive gradients.
    Guided Grad-CAM is its product with a Grad-CAM map, ``deprocess_image(cam[..., None] * gradients)``.
    The ReLUs are wrapped during each call only (pytorch-grad-cam swaps the modules).

    Parameters
    ----------
    model : torch.nn.Module
        Put in eval mode (and moved to ``device`` when given).
    device : str or torch.device, optional

    Examples
    --------
    >>> import torch
    >>> from imgexplain import GuidedBackpropReLUModel
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...                             torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> GuidedBackpropReLUModel(model)(torch.rand(1, 3, 8, 8), target_category=2).shape
    (8, 8, 3)
    """

    def __init__(self, model: Any, device: Any = None) -> None:
        model.eval()
        self.model = model if device is None else model.to(device)

    def __call__(self, input_img: Any, target_category: int | None = None) -> np.ndarray:
        """The ``(H, W, C)`` guided gradients of the first image's ``target_category`` (its top class when None)."""
        from imgexplain.backends.torch import guided_gradients

        parameter = next(self.model.parameters(), None)
        images = input_img if parameter is None else input_img.to(parameter.device)
        categories = None if target_category is None else [target_category] * len(images)
        return guided_gradients(self.model, images, categories)[0]


def preprocess_image(img: np.ndarray, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """An ``(H, W, C)`` image as a ``(1, C, H, W)`` float32 torch tensor, ``(img - mean) / std`` per
    channel, as pytorch-grad-cam's ``preprocess_image`` (without torchvision): uint8 pixels are first
    divided by 255, as torchvision's ``ToTensor`` does; floats are taken as they are.

    Raises
    ------
    ValueError
        An image that is not ``(H, W, C)``, or `mean` and `std` of another length than C.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import preprocess_image
    >>> tensor = preprocess_image(np.ones((4, 6, 3), dtype=np.float32))
    >>> tuple(tensor.shape), float(tensor.max())
    ((1, 3, 4, 6), 1.0)
    """
    import torch

    picture = np.asarray(img)
    picture = picture / np.float32(255) if picture.dtype == np.uint8 else picture.astype(np.float32)
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    if picture.ndim != 3 or mean.shape != (picture.shape[2],) or std.shape != mean.shape:
        raise ValueError(f"img must be (H, W, C) with one mean and std per channel; got img {picture.shape}, "
                         f"mean {mean.shape}, std {std.shape}")
    return torch.from_numpy(np.ascontiguousarray(((picture - mean) / std).transpose(2, 0, 1)))[None]


def deprocess_image(img: np.ndarray) -> np.ndarray:
    """An attribution (a guided-backpropagation gradient, say) as a uint8 picture: standardised,
    scaled by 0.1 around 0.5 and clipped to [0, 1], as pytorch-grad-cam's ``deprocess_image``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import deprocess_image
    >>> deprocess_image(np.array([[-1.0, 1.0]])).tolist()
    [[102, 152]]
    """
    values = np.asarray(img, dtype=np.float64)
    standardised = (values - values.mean()) / (values.std() + 1e-5)
    return np.uint8(np.clip(standardised * 0.1 + 0.5, 0, 1) * 255)
