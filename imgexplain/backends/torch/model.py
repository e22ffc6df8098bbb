"""PyTorch models as a whole: prediction, cloning and weight randomisation (for the randomization check),
saved files (torch.export and TorchScript), and a one-output model as two outputs."""
from __future__ import annotations

import copy
import warnings
from numbers import Integral
from typing import Any, Callable

import numpy as np
import torch

from imgexplain.backends import ModelError, SavedModel
from imgexplain.backends.torch.archive import check_pickles, quiet_torch_logging
from imgexplain.backends.torch.runtime import from_torch


def predict(model: torch.nn.Module, images: Any) -> np.ndarray:
    """The model's output for ``images`` (an array or tensor ``(N, C, H, W)``), as numpy, without autograd.

    Parameters
    ----------
    model : torch.nn.Module
    images : array or tensor
        A batch as the model takes it.

    Returns
    -------
    ndarray
        The model's output.
    """
    tensor = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images, dtype=np.float32))
    with torch.no_grad():
        return model(tensor).detach().cpu().numpy()


def spatial_size(images: Any) -> tuple[int, int]:
    """``(H, W)`` of a channels-first batch.

    Parameters
    ----------
    images : array or tensor
        A batch.

    Returns
    -------
    tuple of int
        ``(H, W)``.
    """
    return tuple(images.shape[2:4])


def clone(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model``, weights included.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        An independent copy; changing its weights leaves ``model`` as it is.
    """
    return copy.deepcopy(model)


def counterpart(model: torch.nn.Module, clone: torch.nn.Module, layer: Any) -> Any:
    """The module of ``clone`` that is ``layer`` in ``model`` (names, indices and None stay as they are).

    Parameters
    ----------
    model, clone : torch.nn.Module
        A model and its :func:`clone`.
    layer : None, str, int or layer
        A layer of ``model``, or what names one.

    Returns
    -------
    None, str, int or layer
        The same layer in ``clone``.

    Raises
    ------
    ValueError
        When ``layer`` is not a layer of ``model``.
    """
    if layer is None or isinstance(layer, (str, Integral)):
        return layer
    for original, copied in zip(model.modules(), clone.modules()):
        if original is layer:
            return copied
    raise ValueError(f"layer {type(layer).__name__} is not a module of the model")


def weighted_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules that hold parameters of their own, in definition order.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    list
        The layers, in definition order.
    """
    return [module for module in model.modules() if any(True for _ in module.parameters(recurse=False))]


def randomize(layer: torch.nn.Module, rng: np.random.Generator) -> None:
    """Redraw each of the module's own parameters from a normal distribution of its mean and standard deviation.

    Parameters
    ----------
    layer : layer of torch.nn.Module
    rng : numpy.random.Generator

    Returns
    -------
    None
        The weights are changed in place.
    """
    with torch.no_grad():
        for parameter in layer.parameters(recurse=False):
            values = parameter.detach().cpu().numpy().astype(np.float64)
            drawn = rng.normal(values.mean(), values.std(), size=values.shape)
            parameter.copy_(torch.as_tensor(drawn, dtype=parameter.dtype))


def layer_name(model: torch.nn.Module, layer: torch.nn.Module) -> str:
    """The name of ``layer`` in ``model.named_modules()``.

    Parameters
    ----------
    model : torch.nn.Module
    layer : layer of ``model``

    Returns
    -------
    str
    """
    return next(name for name, module in model.named_modules() if module is layer)


def load_saved(path: str, kind: str, device: Any = None) -> SavedModel:
    """A torch.export file (``kind`` 'exported', as a module with its layers, so CAM can hook them) or a
    TorchScript file ('torchscript'), in eval mode.

    Parameters
    ----------
    path : str
    kind : {'exported', 'torchscript'}
    device : ignored
        The predictor of :func:`saved_predictor` moves the model.

    Returns
    -------
    SavedModel

    Raises
    ------
    ModelError
        When an exported file holds pickles that are not plain data (they would run code), or an exported program does not take images of a fixed size in batches of 1 or any size.
    """
    if kind == "torchscript":
        return SavedModel(torch.jit.load(path, map_location="cpu").eval(), "torch", None)
    check_pickles(path)
    with quiet_torch_logging():
        program = torch.export.load(path)
    first_input = program.graph_signature.user_inputs[0]
    (node,) = [node for node in program.graph.nodes if node.op == "placeholder" and node.name == first_input]
    shape = tuple(node.meta["val"].shape)
    if len(shape) != 4 or not all(isinstance(size, int) for size in shape[1:]):
        raise ModelError(f"{path!r} takes input of shape {shape}; expected images (N, C, H, W) of a fixed size")
    batch = shape[0] if isinstance(shape[0], int) else None
    if batch not in (None, 1):
        raise ModelError(f"{path!r} was exported for batches of exactly {batch} images; export it "
                         "with a batch of 1 or a dynamic batch (dynamic_shapes)")
    # An exported graph is fixed in the mode it was exported in; eval() only sets the flags that CAM checks.
    with warnings.catch_warnings():  # torch's unflatten copies its tree specs through a deprecated check of its own
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
        module = torch.export.unflatten(program)
    return SavedModel(module.eval(), "torch", (shape[2], shape[3]), shape[1], batch)


def saved_predictor(saved: SavedModel, pixels: Callable, device: Any = None) -> tuple[Callable, Callable]:
    """``(model_input, scores)`` for a loaded module: ``pixels(images)`` as a channels-first tensor, and
    the module's scores of images through :func:`imgexplain.backends.torch.runtime.from_torch` on ``device``.

    Parameters
    ----------
    saved : SavedModel
        From :func:`load_saved`.
    pixels : callable
        ``(N, H, W, 3)`` images -> ``(N, H, W, C)`` float32 model pixels.
    device : {None, 'cpu', 'cuda', 'cuda:N'}

    Returns
    -------
    tuple of callable

    Raises
    ------
    ValueError
        When ``device`` is not on this machine.
    """
    def model_input(images):
        return torch.from_numpy(np.ascontiguousarray(pixels(images).transpose(0, 3, 1, 2)))

    return model_input, from_torch(saved.model, preprocess=model_input, batch_size=saved.batch, device=device)


class _TwoOutputs(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x)
        return torch.cat([1.0 - output, output], dim=1)


def two_outputs(model: torch.nn.Module) -> torch.nn.Module:
    """A one-output (sigmoid) model as two outputs (1 - p, p): CAM explains class 0 as the complement.

    Parameters
    ----------
    model : torch.nn.Module
        A model of one output column.

    Returns
    -------
    torch.nn.Module
        ``(1 - p, p)`` for each image.
    """
    return _TwoOutputs(model).eval()
