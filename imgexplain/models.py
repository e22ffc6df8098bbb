"""Loading classifiers: the built-in model and the user's saved models, as the command line uses them.

:func:`load_model` takes ``'efficientnet-lite0'`` (built in, ImageNet) or the path of a saved model
and returns a :class:`Classifier`: the model with what the explainers need around it (input size,
preprocessing, a predictor of probabilities, class names). It is the one place that loads a model file of
any kind: the kind is read from the file's content (:func:`model_kind`, in :mod:`imgexplain.model_files`)
and the file is loaded by the backend that declares that kind (:func:`imgexplain.backends.backend_of_kind`),
which alone imports TensorFlow, torch or ONNX Runtime.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from imgexplain import backends
from imgexplain.backends import DeviceError, ModelError
from imgexplain.model_files import BUILTIN_MODEL, model_kind
from imgexplain.classes import numbered_classes, probabilities, read_labels
from imgexplain.classifier import Classifier


__all__ = ["Classifier", "DeviceError", "load_builtin", "load_model", "load_saved_model", "model_kind", "one_line",
           "probe"]

# What the loaders raise for a file they cannot read (damaged, truncated, of another version, a custom class
# Keras cannot find): said as "cannot load"; anything else is a bug and is not hidden.
LOAD_ERRORS = (OSError, EOFError, ValueError, RuntimeError, KeyError, TypeError, zipfile.BadZipFile,
               pickle.UnpicklingError)

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# How a user's model wants its (N, H, W, 3) input, given images in 0..255.
PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda images: images,
    "unit": lambda images: images / 255.0,
    "tf": lambda images: images / 127.5 - 1.0,
    "torch": lambda images: (images / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD,
    "imagenet": lambda images: (images / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD,
    "lite": lambda images: (images - 127.0) / 128.0,
}


def load_builtin(framework: str = "torch", device=None) -> Classifier:
    """The built-in EfficientNet-Lite0 (ImageNet, 224x224) of ``framework`` 'torch' or 'keras'; its predictor
    runs on ONNX Runtime on ``device`` (None: the best available).

    Parameters
    ----------
    framework : {"torch", "keras"}
        As in :func:`imgexplain.zoo.efficientnet_lite0`.
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where predictions run.

    Returns
    -------
    imgexplain.zoo.PretrainedModel
        A :class:`Classifier`, named ``'efficientnet-lite0'`` as the command line names it.

    Raises
    ------
    DeviceError
        A device this machine does not have (a ModelError).
    TypeError, ValueError
        An unknown `framework`.

    Examples
    --------
    >>> from imgexplain.models import load_builtin
    >>> classifier = load_builtin()
    >>> classifier.name, classifier.input_size, classifier.cam_layer
    ('efficientnet-lite0', (224, 224), '_head_activation')
    """
    from imgexplain import zoo

    classifier = zoo.efficientnet_lite0(framework=framework, device=device)
    classifier.name = BUILTIN_MODEL
    return classifier


def _as_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, 3) images for a model of ``channels`` input channels: one channel is their luminance."""
    if channels == 1:
        return images @ np.array([[0.299], [0.587], [0.114]], dtype=images.dtype)
    return images


def load_saved_model(path: str, kind: str, input_size=None, preprocess: str = "none", device=None,
                     multilabel: bool | None = None) -> Classifier:
    """Load a user's saved model of ``kind`` (see :func:`model_kind`); ModelError if it cannot be loaded.

    ``input_size`` None takes the size the model file fixes. Models of one input channel get the
    luminance of the RGB images. ONNX models run on ONNX Runtime, PyTorch models through
    `imgexplain.backends.torch.from_torch`, both on ``device`` (None: the best available).

    Parameters
    ----------
    path : str
        The file.
    kind : str
        What :func:`model_kind` says of it.
    input_size : (int, int), optional
        (height, width) the model takes; by default what the file fixes.
    preprocess : str
        A key of :data:`PREPROCESSING`: how images in 0..255 become the model's input.
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where predictions run.
    multilabel : bool or None
        True: the outputs are independent probabilities (a multi-label model), never softmaxed; None
        decides per output as :func:`~imgexplain.classes.probabilities` does. Sets ``Classifier.multilabel``
        (None leaves it False).

    Returns
    -------
    Classifier
        Its classes numbered (:func:`~imgexplain.classes.numbered_classes`); its predictor returns :func:`~imgexplain.classes.probabilities`.

    Raises
    ------
    ModelError
        The file cannot be loaded, does not fix an input size that is not given, or takes other than 1
        or 3 channels.
    DeviceError
        A device this machine does not have (a ModelError).

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
    >>> import numpy as np
    >>> from imgexplain.models import load_saved_model, model_kind
    >>> classifier = load_saved_model(path, model_kind(path))
    >>> classifier.name, classifier.framework, classifier.input_size
    ('mean_colour.onnx', 'onnx', (8, 8))
    >>> blue = np.full((1, 8, 8, 3), [0.0, 0.0, 255.0])
    >>> classifier.top_classes(classifier.predictor(blue)[0], top=1)
    [(2, 'class 2', 1.0)]
    >>> folder.cleanup()
    """
    to_input = PREPROCESSING[preprocess]
    try:
        saved = backends.load_saved(path, kind, device)
    except ModelError:
        raise
    except LOAD_ERRORS as error:
        raise ModelError(f"cannot load {path!r}: {one_line(error)}") from None
    input_size = input_size or saved.input_size
    if input_size is None:
        raise ModelError(f"{path!r} does not fix its input size: give it (--input-size H,W)")
    channels = saved.channels
    if channels not in (1, 3):
        raise ModelError(f"{path!r} takes images of {channels} channels; expected 1 (grey) or 3 (RGB)")

    def pixels(images):
        images = _as_channels(np.asarray(images, dtype=np.float32), channels)
        return np.asarray(to_input(images), dtype=np.float32)

    backend = backends.backend_named(saved.framework)
    model_input, scores = backend.saved_predictor(saved, pixels, device)

    def predictor(images):
        return probabilities(scores(images), multilabel)

    return Classifier(
        name=Path(path).name, framework=saved.framework, model=saved.model, input_size=tuple(input_size),
        preprocess=model_input, predictor=predictor, top_classes=numbered_classes,
        cam_model=backend.two_outputs(saved.model)
        if backend.SAVED_KINDS[kind] and _n_outputs(scores, input_size) == 1 else None,
        multilabel=bool(multilabel),
    )


def _n_outputs(scores, input_size) -> int | None:
    """The number of the model's outputs, from one grey image (None when it fails: :func:`probe` says why)."""
    try:
        return int(np.asarray(scores(np.full((1, *input_size, 3), 128.0, dtype=np.float32))).shape[-1])
    except Exception:
        return None


def load_model(model: str = BUILTIN_MODEL, *, framework: str | None = None, input_size=None,
               preprocess: str = "none", labels=None, device=None, multilabel: bool | None = None) -> Classifier:
    """The built-in model (``framework`` 'torch' or 'keras') or a saved model file, ready to explain.

    Parameters
    ----------
    model : str
        ``'efficientnet-lite0'`` or the path of a saved model (see :func:`model_kind`).
    framework : {None, "torch", "keras"}
        For the built-in model; None is "torch".
    input_size, preprocess, multilabel :
        For a saved model, as in :func:`load_saved_model` (the built-in model's classes are exclusive).
    labels : list of str or path, optional
        Class names, a list or the path of a text file with one name a line (:func:`~imgexplain.classes.read_labels`).
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where predictions run (None: the best available).

    Returns
    -------
    Classifier

    Raises
    ------
    ModelError
        A model that cannot be found or loaded.
    ValueError
        A labels file that cannot be read, or ``multilabel=True`` for the built-in model.

    Examples
    --------
    >>> from imgexplain.models import load_model
    >>> load_model().name
    'efficientnet-lite0'
    """
    kind = model_kind(model)
    if kind == "builtin" and multilabel:
        raise ValueError(f"multilabel: {BUILTIN_MODEL} is a softmax model of exclusive classes")
    classifier = load_builtin(framework or "torch", device) if kind == "builtin" else load_saved_model(
        model, kind, input_size, preprocess, device, multilabel)
    if labels is not None:
        classifier = classifier.with_labels(read_labels(labels) if isinstance(labels, (str, Path)) else labels)
    return classifier


def one_line(error: Exception) -> str:
    """The error's type and the last line of its message (TorchScript puts its traceback first).

    Parameters
    ----------
    error : Exception

    Returns
    -------
    str

    Examples
    --------
    >>> from imgexplain.models import one_line
    >>> one_line(RuntimeError("Traceback of TorchScript:\\n  ...\\nshape mismatch"))
    'RuntimeError: shape mismatch'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1]}" if lines else type(error).__name__


def probe(classifier: Classifier, image: np.ndarray, preprocess: str = "none") -> np.ndarray:
    """The model's probabilities for one (H, W, 3) image at its input size; ModelError when it cannot take it.

    Parameters
    ----------
    classifier : Classifier
    image : (H, W, 3) ndarray
        At the classifier's input size, pixels in 0..255.
    preprocess : str
        Named in the error message.

    Returns
    -------
    (K,) ndarray

    Raises
    ------
    ModelError
        The predictor raises, returns other than one row, or NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.classes import numbered_classes
    >>> from imgexplain.models import Classifier
    >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
    ...     bright = np.asarray(images).reshape(len(images), -1).mean(axis=1) / 255
    ...     return np.stack([1 - bright, bright], axis=1)
    >>> toy = Classifier(name="toy", framework="none", model=None, input_size=(4, 4),
    ...                  preprocess=lambda images: images, predictor=predictor,
    ...                  top_classes=numbered_classes)
    >>> from imgexplain.models import probe
    >>> probe(toy, np.full((4, 4, 3), 51.0))
    array([0.8, 0.2])
    """
    size = f"{classifier.input_size[0]}x{classifier.input_size[1]} pixels"
    try:
        probs = np.asarray(classifier.predictor(image[None]))
    except Exception as error:
        raise ModelError(f"{classifier.name} failed on an input of {size} (--preprocess {preprocess}): "
                         f"{one_line(error)}") from None
    if probs.ndim != 2 or probs.shape[0] != 1:
        raise ModelError(f"{classifier.name} returned shape {probs.shape} for one image; "
                         "expected (1, n_classes) scores")
    if not np.all(np.isfinite(probs)):
        raise ModelError(f"{classifier.name} returned NaN or infinite values for an input of {size}")
    return probs[0]
