"""The backend contract: what every backend module offers, and what a CAM backend's runner does.

A backend is a module of :mod:`imgexplain.backends` (one per runtime) that conforms to :class:`Backend`;
one whose ``CAM_COMPUTES`` is not empty also conforms to :class:`CAMCapable`, and its ``CAMBackend`` makes
:class:`CAMRunner` objects. What a backend can do is declared, not probed: ``CAM_COMPUTES`` lists what its
CAM computes for a method (:data:`imgexplain.cam.methods.NEEDS`; ``'bias gradients'`` is FullGrad's), and
``SAVED_KINDS`` maps each kind of saved file it loads to whether CAM can reach that file's layers.
``tests/test_backend_contract.py`` runs every backend of :data:`imgexplain.backends.FRAMEWORKS` through the
same checks. Nothing here imports a framework.

Examples
--------
>>> from imgexplain.backends import backend_named
>>> from imgexplain.backends.contract import Backend, CAMCapable
>>> onnx_backend = backend_named("onnx")
>>> isinstance(onnx_backend, Backend), onnx_backend.CAM_COMPUTES
(True, frozenset())
>>> sorted(backend_named("torch").CAM_COMPUTES - backend_named("keras").CAM_COMPUTES)
['bias gradients', 'hessian']
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """What every backend module offers (its framework is imported only when a function needs it).

    Attributes
    ----------
    MODEL_TYPE : str
        Its kind of model, as error messages name it ("a torch.nn.Module").
    SAVED_KINDS : dict of str to bool
        Each kind of saved file it loads (as :func:`imgexplain.models.model_kind` names it) -> whether
        CAM can explain a model loaded from such a file (a TorchScript file hides its layers).
    CAM_COMPUTES : frozenset of str
        What its CAM computes (see :data:`imgexplain.cam.methods.NEEDS`); empty: no class activation maps.

    Examples
    --------
    >>> from imgexplain.backends import FRAMEWORKS, backend_named
    >>> from imgexplain.backends.contract import Backend
    >>> [isinstance(backend_named(name), Backend) for name in FRAMEWORKS]
    [True, True, True]
    """

    MODEL_TYPE: str
    SAVED_KINDS: dict[str, bool]
    CAM_COMPUTES: frozenset[str]

    def owns(self, model: Any) -> bool:
        """Whether ``model`` is one of its models (False, without importing, when its framework is not loaded)."""

    def owns_tensor(self, value: Any) -> bool:
        """Whether ``value`` is a tensor of its framework (False for a runtime without tensors)."""

    def load_saved(self, path: str, kind: str, device: Any = None) -> Any:
        """A :class:`~imgexplain.backends.SavedModel` read from ``path``, a file of one of its ``SAVED_KINDS``."""

    def saved_predictor(self, saved: Any, pixels: Callable, device: Any = None) -> tuple[Callable, Callable]:
        """``(model_input, scores)``: images (N, H, W, 3) in 0..255 -> the model's input, and -> its scores."""


@runtime_checkable
class CAMCapable(Backend, Protocol):
    """A backend with class activation maps (``CAM_COMPUTES`` not empty).

    Examples
    --------
    >>> from imgexplain.backends import backend_named
    >>> from imgexplain.backends.contract import CAMCapable
    >>> isinstance(backend_named("torch"), CAMCapable), isinstance(backend_named("onnx"), CAMCapable)
    (True, False)
    """

    CAMBackend: Callable[..., CAMRunner]

    def two_outputs(self, model: Any) -> Any:
        """A one-output (sigmoid) model as two outputs (1 - p, p), so that CAM explains either class."""

    def predict(self, model: Any, images: Any) -> np.ndarray:
        """The model's outputs for a batch of its own input, as numpy."""


@runtime_checkable
class CAMRunner(Protocol):
    """What :class:`imgexplain.CAM` asks of the object a backend's ``CAMBackend(model, layers, output,
    reshape_transform)`` makes: the layer choice (``layers=None``: the last feature map), one pass with
    activations and gradients, and the masked and ablated passes of the gradient-free methods.

    Attributes
    ----------
    channels_first : bool
        The layout of the model's images.
    computes : frozenset of str
        Its backend's ``CAM_COMPUTES``.
    n_classes : int or None
        The explained output's width, when the model declares it.

    Examples
    --------
    >>> import torch
    >>> from imgexplain.backends import cam_backend
    >>> from imgexplain.backends.contract import CAMRunner
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
    ...                             torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    >>> runner = cam_backend(model)
    >>> isinstance(runner, CAMRunner), runner.channels_first, "bias gradients" in runner.computes
    (True, True, True)
    """

    channels_first: bool
    computes: frozenset[str]
    n_classes: int | None

    @property
    def layer_names(self) -> list[str] | None:
        """The explained layers' names (None until the first pass chose them)."""

    def prepare(self, images: Any) -> Any:
        """``images`` (numpy or the framework's tensors) as the framework's batch, checked."""

    def forward(self, images: Any, targets: Any, gradients: bool = True, hessian: bool = False) -> tuple:
        """``(activations, gradients, chosen classes, scores)``: per layer (N, h, w, C) maps, channels last."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The explained output for a numpy batch, without gradients."""

    def ablated_outputs(self, image: Any, index: int, channels: np.ndarray) -> np.ndarray:
        """The output for one image with each of ``channels`` of layer ``index`` set to zero."""

    def spatial_size(self, images: Any) -> tuple[int, int]:
        """(height, width) of a batch."""

    def flip(self, images: Any) -> Any:
        """The batch mirrored left to right."""

    def to_numpy(self, images: Any) -> np.ndarray:
        """The batch as numpy, in its own layout."""
