"""Everything framework-specific, one backend per framework; this registry imports none of them.

Each backend (``keras``, ``torch``, ``onnx``) is a module of this package that conforms to the
:class:`~imgexplain.backends.contract.Backend` protocol: it says whether an object is one of its models
(``owns``, without importing its framework), names its kind of model (``MODEL_TYPE``), the saved-file
kinds it loads (``SAVED_KINDS``, each with whether CAM reaches its layers) and declares what its class
activation maps compute (``CAM_COMPUTES``; empty for ONNX). What it can do with a model is an attribute
of the module, loaded with the framework on first use:

- ``CAMBackend``: runs a model for :class:`imgexplain.CAM` (layers, activations, gradients);
- ``predict``, ``spatial_size``, ``clone``, ``counterpart``, ``weighted_layers``, ``randomize``,
  ``layer_name``: what :func:`imgexplain.evaluate.randomization_check` does with a model;
- ``load_saved`` and ``saved_predictor``: a user's saved model file, and its predictor;
- ``two_outputs``: a one-output (sigmoid) model as two outputs, for CAM;
- ``owns_tensor`` (without importing the framework), ``tensor_sum``, ``tensor_softmax``, ``tensor_log_softmax``,
  ``tensor_mask`` and ``tensor_numpy``: what :mod:`imgexplain.targets` and the explainers do with one image's
  output tensor.

A new runtime is one new module here, named in :data:`FRAMEWORKS`; ``tests/test_backend_contract.py``
runs it through the same checks as the others.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["FRAMEWORKS", "DeviceError", "ModelError", "SavedModel", "backend_for", "backend_named", "backend_of_kind",
           "cam_backend", "cam_frameworks", "load_saved", "provides", "tensor_backend"]

# In the order their model types are named in error messages.
FRAMEWORKS = ("keras", "torch", "onnx")


class ModelError(ValueError):
    """A model file that cannot be loaded, or a model that fails on an image of its input size.

    A ValueError; the command line reports it in one line.

    Examples
    --------
    >>> from imgexplain.backends import ModelError
    >>> from imgexplain.models import load_model
    >>> try:
    ...     load_model("no-such-model.onnx")
    ... except ModelError as error:
    ...     print(error)
    unknown model 'no-such-model.onnx'; expected 'efficientnet-lite0', a .keras file, ...
    """


class DeviceError(ModelError):
    """The device asked for is not on this machine (a ModelError, so a ValueError).

    Examples
    --------
    >>> from imgexplain.backends import DeviceError, ModelError
    >>> issubclass(DeviceError, ModelError), issubclass(DeviceError, ValueError)
    (True, True)
    """


@dataclass
class SavedModel:
    """What a loader reads from a file: the model, the (H, W) and channels it fixes (or None), its fixed batch.

    Not a model type: :func:`imgexplain.models.load_saved_model`, the one place that loads a model file,
    turns it into the :class:`~imgexplain.classifier.Classifier` the explainers take.

    Attributes
    ----------
    model : object
        The framework's model.
    framework : str
        One of :data:`FRAMEWORKS`.
    input_size : (int, int) or None
        The (height, width) the file fixes.
    channels : int
        Input channels.
    batch : int or None
        The batch size the file fixes.

    Examples
    --------
    >>> from imgexplain.backends import SavedModel
    >>> SavedModel(model=None, framework="onnx", input_size=(224, 224))
    SavedModel(model=None, framework='onnx', input_size=(224, 224), channels=3, batch=None)
    """

    model: object
    framework: str
    input_size: tuple[int, int] | None
    channels: int = 3
    batch: int | None = None


def backend_named(name: str) -> ModuleType:
    """The backend module of framework ``name`` (one of :data:`FRAMEWORKS`).

    Parameters
    ----------
    name : str

    Returns
    -------
    module
        ``imgexplain.backends.<name>``; its framework is not imported until one of its model functions is used.

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`FRAMEWORKS`.

    Examples
    --------
    >>> from imgexplain.backends import backend_named
    >>> torch_backend = backend_named("torch")
    >>> torch_backend.__name__, torch_backend.MODEL_TYPE, torch_backend.SAVED_KINDS
    ('imgexplain.backends.torch', 'a torch.nn.Module', {'exported': True, 'torchscript': False})
    """
    if name not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}; got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def backend_for(model: Any, needs: str | None = None) -> ModuleType:
    """The backend that owns ``model`` (and has the attribute ``needs``, when given).

    Parameters
    ----------
    model : object
        A model of one of the frameworks (``keras.Model``, ``torch.nn.Module``, an ONNX predictor).
    needs : str, optional
        An attribute the backend must have, e.g. ``"CAMBackend"`` for class activation maps.

    Returns
    -------
    module
        The backend module, e.g. ``imgexplain.backends.torch``.

    Raises
    ------
    TypeError
        When no backend (that has ``needs``) owns ``model``; Keras 2 (``tf_keras``) models are named as such.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> from imgexplain.backends import backend_for
    >>> backend_for(model, needs="CAMBackend").__name__
    'imgexplain.backends.torch'
    >>> backend_for("a string")
    Traceback (most recent call last):
    ...
    TypeError: model must be a keras.Model or a torch.nn.Module or ...; got builtins.str
    """
    for name in FRAMEWORKS:
        backend = backend_named(name)
        if backend.owns(model) and (needs is None or provides(backend, needs)):
            return backend
    if any(cls.__module__.split(".")[0] == "tf_keras" for cls in type(model).__mro__):
        raise TypeError("model is a Keras 2 (tf_keras) model; imgexplain needs Keras 3")
    accepted = [backend_named(name).MODEL_TYPE for name in FRAMEWORKS
                if needs is None or provides(backend_named(name), needs)]
    raise TypeError(f"model must be {' or '.join(accepted)}; "
                    f"got {type(model).__module__}.{type(model).__name__}")


def tensor_backend(value: Any) -> ModuleType | None:
    """The backend whose framework made the tensor ``value``, without importing any framework.

    Parameters
    ----------
    value : object

    Returns
    -------
    module or None
        None for numpy arrays and anything else no backend owns.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from imgexplain.backends import tensor_backend
    >>> tensor_backend(torch.zeros(2)).__name__, tensor_backend(np.zeros(2))
    ('imgexplain.backends.torch', None)
    """
    for name in FRAMEWORKS:
        backend = backend_named(name)
        if backend.owns_tensor(value):
            return backend
    return None


def provides(backend: ModuleType, name: str) -> bool:
    """Whether ``backend`` has ``name``, without loading its framework.

    Parameters
    ----------
    backend : module
        A backend, e.g. from :func:`backend_named`.
    name : str
        An attribute, e.g. ``"CAMBackend"``.

    Returns
    -------
    bool

    Examples
    --------
    >>> from imgexplain.backends import backend_named, provides
    >>> provides(backend_named("torch"), "CAMBackend"), provides(backend_named("onnx"), "CAMBackend")
    (True, False)
    """
    return name in vars(backend) or name in getattr(backend, "LAZY", {})


def cam_backend(model: Any, layers: list | None = None, output: Any = None,
                reshape_transform: Any = None) -> Any:
    """The object that runs ``model`` for :class:`imgexplain.CAM` (see :data:`imgexplain.backends`).

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    layers : list, optional
        The layers to explain (names, indices or layer objects); None chooses the last feature map.
    output, reshape_transform :
        As in :class:`imgexplain.CAM`.

    Returns
    -------
    object
        The backend's ``CAMBackend`` for ``model``.

    Raises
    ------
    TypeError
        When ``model`` is not a model of a framework with class activation maps.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    >>> from imgexplain.backends import cam_backend
    >>> type(cam_backend(model)).__module__
    'imgexplain.backends.torch.cam'
    """
    backend = backend_for(model, needs="CAMBackend")
    return backend.CAMBackend(model, layers=layers, output=output, reshape_transform=reshape_transform)


def backend_of_kind(kind: str) -> ModuleType:
    """The backend that loads saved files of ``kind`` (see :func:`imgexplain.models.model_kind`).

    Parameters
    ----------
    kind : str
        One of the backends' ``SAVED_KINDS`` ('keras', 'exported', 'torchscript', 'onnx').

    Returns
    -------
    module

    Raises
    ------
    ValueError
        When no backend loads files of ``kind``.

    Examples
    --------
    >>> from imgexplain.backends import backend_of_kind
    >>> backend = backend_of_kind("onnx")
    >>> backend.__name__, backend.SAVED_KINDS["onnx"]
    ('imgexplain.backends.onnx', False)
    """
    for name in FRAMEWORKS:
        backend = backend_named(name)
        if kind in backend.SAVED_KINDS:
            return backend
    raise ValueError(f"no backend loads saved models of kind {kind!r}")


def cam_frameworks(need: str) -> list[str]:
    """The frameworks whose class activation maps compute ``need`` (declared as their ``CAM_COMPUTES``).

    Parameters
    ----------
    need : str
        One of :data:`imgexplain.cam.methods.NEEDS`.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from imgexplain.backends import cam_frameworks
    >>> cam_frameworks("gradients"), cam_frameworks("bias gradients")
    (['keras', 'torch'], ['torch'])
    """
    return [name for name in FRAMEWORKS if need in backend_named(name).CAM_COMPUTES]


def load_saved(path: str, kind: str, device: str | None = None) -> SavedModel:
    """Load a saved model file of ``kind`` (see :func:`imgexplain.models.model_kind`) with its backend.

    Parameters
    ----------
    path : str
    kind : str
        One of the backends' ``SAVED_KINDS`` ('keras', 'exported', 'torchscript', 'onnx').
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where an ONNX model runs (None: the best available).

    Returns
    -------
    SavedModel

    Raises
    ------
    ValueError
        When no backend loads files of ``kind``.
    ModelError
        When the file does not fix what imgexplain needs (the loaders' own errors pass through).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import onnx
    >>> from onnx import TensorProto, helper
    >>> graph = helper.make_graph(  # a model whose scores are the image's mean colour
    ...     [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
    ...      helper.make_node("Flatten", ["pooled"], ["scores"])], "mean_colour",
    ...     [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 8])],
    ...     [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])])
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = str(pathlib.Path(folder.name) / "mean_colour.onnx")
    >>> onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    >>> from imgexplain.backends import load_saved
    >>> saved = load_saved(path, "onnx")
    >>> saved.framework, saved.input_size, saved.channels
    ('onnx', (8, 8), 3)
    >>> folder.cleanup()
    """
    return backend_of_kind(kind).load_saved(path, kind, device)
