"""Keras 3 layers for class activation maps: walking nested models, reading static output
shapes, finding or choosing the layer to explain, and recording layers' outputs while the model runs (by
swapping their ``call``)."""
from __future__ import annotations

import contextlib
from numbers import Integral
from typing import Callable, Iterator

import keras
import tensorflow as tf

from imgexplain.model_outputs import token_grid

_MISSING = object()


def is_feature_map(shape: tuple | None) -> bool:
    """A 4-D ``(N, h, w, C)`` shape whose spatial size is not 1x1 (unknown sizes count)."""
    return shape is not None and len(shape) == 4 and (shape[1], shape[2]) != (1, 1)


def all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of ``model``, nested models included (each before its own layers)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that compute something themselves, descending into nested models."""
    return [layer for layer in all_layers(model)
            if not isinstance(layer, (keras.Model, keras.layers.InputLayer))]


def static_shape(layer: keras.layers.Layer) -> tuple | None:
    """The layer's symbolic output shape, or None when it has none (subclassed models, or a
    layer used more than once)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    return tuple(output.shape) if hasattr(output, "shape") else None


def is_candidate(shape: tuple | None) -> bool:
    """A feature map or transformer tokens: what a class activation map can be made of."""
    return is_feature_map(shape) or token_grid(shape) is not None


@contextlib.contextmanager
def recording(layers: list, record: Callable) -> Iterator[None]:
    """While inside, each layer's output passes through ``record(layer, output)``."""
    replaced = []
    try:
        for layer in {id(layer): layer for layer in layers}.values():
            replaced.append((layer, layer.__dict__.get("call", _MISSING)))
            object.__setattr__(layer, "call", _recording_call(layer, layer.call, record))
        yield
    finally:
        for layer, previous in reversed(replaced):
            if previous is _MISSING:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", previous)


def _recording_call(layer, call, record):
    def recording_call(*args, **kwargs):
        return record(layer, call(*args, **kwargs))

    return recording_call


def find_layer(model: keras.Model, layer, reshape_transform: Callable | None) -> keras.layers.Layer:
    """The layer of ``model`` that ``layer`` names (a name, an index or the layer), checked to be a feature map."""
    if isinstance(layer, str):
        found = next((candidate for candidate in all_layers(model) if candidate.name == layer), None)
        if found is None:
            names = [candidate.name for candidate in leaf_layers(model)
                     if is_candidate(static_shape(candidate))][-10:]
            hint = f"; feature-map layers include {names}" if names else ""
            raise ValueError(f"layer {layer!r} is not in model {model.name!r}{hint}")
    elif isinstance(layer, Integral) and not isinstance(layer, bool):
        if not -len(model.layers) <= layer < len(model.layers):
            raise ValueError(f"layer index {layer} is out of range: model {model.name!r} "
                             f"has {len(model.layers)} layers")
        found = model.layers[layer]
    elif isinstance(layer, keras.layers.Layer):
        if not any(candidate is layer for candidate in all_layers(model)):
            raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}")
        found = layer
    else:
        raise TypeError(f"layer must be None, a layer name, an index or a keras layer; "
                        f"got {type(layer).__name__}")
    if isinstance(found, keras.layers.InputLayer):
        raise ValueError(f"layer {found.name!r} is the model's input, not a feature map")
    shape = static_shape(found)
    if shape is not None and reshape_transform is None and not is_candidate(shape):
        raise ValueError(f"layer {found.name!r} outputs shape {shape}; a class activation map "
                         f"needs a 4-D feature map (N, h, w, C) larger than 1x1 (pass reshape_transform= "
                         f"to turn other outputs into one)")
    return found


def static_choice(model: keras.Model, reshape_transform: Callable | None) -> keras.layers.Layer | None:
    """The last feature-map layer, when every layer's output shape is known without running
    and no token output comes after it."""
    shapes = [(layer, static_shape(layer)) for layer in leaf_layers(model)]
    if not shapes or any(shape is None for _, shape in shapes):
        return None
    candidates = [(layer, shape) for layer, shape in shapes if is_candidate(shape)]
    if candidates and (len(candidates[-1][1]) == 4 or reshape_transform is not None):
        return candidates[-1][0]
    if not candidates:
        no_candidate(model)
    return None


def no_candidate(model: keras.Model):
    """Raise: ``model`` has no layer to explain."""
    raise ValueError(f"model {model.name!r} has no layer (run once per pass) whose output is a "
                     f"4-D feature map (N, h, w, C) larger than 1x1 or transformer tokens; pass layer= "
                     f"explicitly, with reshape_transform= for other outputs")


def token_layer(candidates: list, gradients: list) -> tuple:
    """The last token output (of the commonest width) whose patches the score depends on, and its grid."""
    tokens = [(layer, value, gradient) for (layer, value), gradient in zip(candidates, gradients)
              if token_grid(tuple(value.shape))]
    widths = [value.shape[2] for _, value, _ in tokens]
    width = max(set(widths), key=widths.count)
    for layer, value, gradient in reversed(tokens):
        grid = token_grid(tuple(value.shape))
        if value.shape[2] == width and gradient is not None and bool(tf.reduce_any(gradient[:, grid[0]:] != 0)):
            return layer, grid
    raise ValueError(f"the model's score depends on the patches of none of its token outputs "
                     f"({[layer.name for layer, _, _ in tokens][-5:]}); pass layer= and reshape_transform=")
