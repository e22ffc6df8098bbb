"""Keras models as a whole: prediction, cloning and weight randomisation (for the randomization check),
saved .keras files, and a one-output model as two outputs."""
from __future__ import annotations

from numbers import Integral
from typing import Any, Callable

import keras
import numpy as np

from imgexplain.backends import SavedModel

from .layers import all_layers, leaf_layers


def predict(model: keras.Model, images: Any) -> np.ndarray:
    """The model's output for ``images`` ``(N, H, W, C)`` in inference mode, as numpy.

    Parameters
    ----------
    model : keras.Model
    images : array or tensor
        A batch as the model takes it.

    Returns
    -------
    ndarray
        The model's output.
    """
    return np.asarray(model(np.asarray(images), training=False))


def spatial_size(images: Any) -> tuple[int, int]:
    """``(H, W)`` of a channels-last batch.

    Parameters
    ----------
    images : array or tensor
        A batch.

    Returns
    -------
    tuple of int
        ``(H, W)``.
    """
    return tuple(images.shape[1:3])


def clone(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with the same weights (``keras.models.clone_model``).

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    keras.Model
        An independent copy; changing its weights leaves ``model`` as it is.
    """
    copied = keras.models.clone_model(model)
    copied.set_weights(model.get_weights())
    return copied


def counterpart(model: keras.Model, clone: keras.Model, layer: Any) -> Any:
    """The layer of ``clone`` that is ``layer`` in ``model`` (names, indices and None stay as they are).

    Parameters
    ----------
    model, clone : keras.Model
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
    for original, copied in zip([model, *all_layers(model)], [clone, *all_layers(clone)]):
        if original is layer:
            return copied
    raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a layer of the model")


def weighted_layers(model: keras.Model) -> list:
    """The layers (nested models' included) that compute something themselves and have trainable weights.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    list
        The layers, in definition order.
    """
    return [layer for layer in leaf_layers(model) if layer.trainable_weights]


def randomize(layer: keras.layers.Layer, rng: np.random.Generator) -> None:
    """Redraw each trainable weight of ``layer`` from a normal distribution of its mean and standard deviation.

    Parameters
    ----------
    layer : layer of keras.Model
    rng : numpy.random.Generator

    Returns
    -------
    None
        The weights are changed in place.
    """
    for weight in layer.trainable_weights:
        values = np.asarray(weight.numpy(), dtype=np.float64)
        drawn = rng.normal(values.mean(), values.std(), size=values.shape)
        weight.assign(drawn.astype(weight.dtype))


def layer_name(model: keras.Model, layer: keras.layers.Layer) -> str:
    """The layer's name.

    Parameters
    ----------
    model : keras.Model
    layer : layer of ``model``

    Returns
    -------
    str
    """
    return layer.name


def load_saved(path: str, kind: str = "keras", device: Any = None) -> SavedModel:
    """A .keras file, with the (H, W) and channels of its input when it fixes them.

    Parameters
    ----------
    path : str
    kind : {'keras'}
    device : ignored
        Keras runs where TensorFlow puts it.

    Returns
    -------
    SavedModel
    """
    model = keras.saving.load_model(path)
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    size = (int(shape[1]), int(shape[2])) if len(shape) == 4 and None not in shape[1:3] else None
    channels = int(shape[3]) if len(shape) == 4 and shape[3] is not None else 3
    return SavedModel(model, "keras", size, channels)


def saved_predictor(saved: SavedModel, pixels: Callable, device: Any = None) -> tuple[Callable, Callable]:
    """``(model_input, scores)`` for a loaded .keras model: ``pixels`` itself (channels last), and the
    model's ``predict`` of images.

    Parameters
    ----------
    saved : SavedModel
        From :func:`load_saved`.
    pixels : callable
        ``(N, H, W, 3)`` images -> ``(N, H, W, C)`` float32 model pixels.
    device : ignored

    Returns
    -------
    tuple of callable
    """
    model = saved.model

    def scores(images):
        return model.predict(pixels(images), verbose=0)

    return pixels, scores


def two_outputs(model: keras.Model) -> keras.Model:
    """A one-output (sigmoid) model as two outputs (1 - p, p): CAM explains class 0 as the complement.

    Parameters
    ----------
    model : keras.Model
        A model of one output column.

    Returns
    -------
    keras.Model
        ``(1 - p, p)`` for each image.
    """
    output = model.outputs[0]
    return keras.Model(model.inputs, keras.ops.concatenate([1.0 - output, output], axis=-1))
