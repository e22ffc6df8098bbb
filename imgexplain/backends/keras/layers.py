"""Keras 3 layers for class activation maps: walking nested models, reading static output
shapes, and recording layers' outputs while the model runs (by swapping their ``call``)."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import keras

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
