"""Keras 3 (TensorFlow backend): find the layer, run the model once, return activations and gradients.

The layer's output is taken by swapping the layer's ``call`` for a recording one while the
model runs, and putting it back afterwards, so any model works: Sequential, functional,
nested (a base model inside a Sequential) and subclassed. The forward and backward pass
is traced once per model, layer and input shape with ``tf.function`` and cached while the
model lives; the swap happens only while tracing, so calling again in a loop adds no
graph nodes and leaves nothing attached to the model.
"""
from __future__ import annotations

import contextlib
import weakref
from numbers import Integral

import keras
import numpy as np
import tensorflow as tf

from .outputs import check_target_range, select_output

_MISSING = object()
# model -> {key: traced function}; entries go when the model is garbage collected.
_TRACED = weakref.WeakKeyDictionary()
# model -> {input shape: the layer chosen by running the model}
_CHOSEN = weakref.WeakKeyDictionary()


def is_feature_map(shape) -> bool:
    """A 4-D ``(N, h, w, C)`` shape whose spatial size is not 1x1 (unknown sizes count)."""
    return shape is not None and len(shape) == 4 and (shape[1], shape[2]) != (1, 1)


def _all_layers(model):
    """Every layer of ``model``, nested models included (each before its own layers)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _leaf_layers(model):
    """The layers that compute something themselves, descending into nested models."""
    return [layer for layer in _all_layers(model)
            if not isinstance(layer, (keras.Model, keras.layers.InputLayer))]


def _static_shape(layer):
    """The layer's symbolic output shape, or None when it has none (subclassed models)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    return tuple(output.shape) if hasattr(output, "shape") else None


@contextlib.contextmanager
def _recording(layers, record):
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


def _check_scores(outputs):
    if len(outputs.shape) != 2:
        raise ValueError(f"the model's output must be (N, n_classes) scores; got shape "
                         f"{tuple(outputs.shape)}")


class KerasBackend:
    """Runs a Keras 3 model for :class:`imgexplain.cam.api.CAM` (channels last)."""

    channels_first = False

    def __init__(self, model, layer=None, output=None):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"Keras models are supported with the TensorFlow backend; "
                             f"this Keras runs on {keras.backend.backend()!r}")
        if keras.config.image_data_format() != "channels_last":
            raise ValueError("Keras models must be channels last "
                             "(keras.config.image_data_format() == 'channels_last')")
        self.model = model
        self.output = output
        self.layer = None if layer is None else self._find_layer(layer)
        if self.layer is None:
            self.layer = self._choose_layer_statically()

    # --- the layer -------------------------------------------------------------------

    def _find_layer(self, layer):
        model = self.model
        if isinstance(layer, str):
            found = next((candidate for candidate in _all_layers(model) if candidate.name == layer), None)
            if found is None:
                names = [candidate.name for candidate in _leaf_layers(model)
                         if is_feature_map(_static_shape(candidate))][-10:]
                hint = f"; feature-map layers include {names}" if names else ""
                raise ValueError(f"layer {layer!r} is not in model {model.name!r}{hint}")
        elif isinstance(layer, Integral) and not isinstance(layer, bool):
            if not -len(model.layers) <= layer < len(model.layers):
                raise ValueError(f"layer index {layer} is out of range: model {model.name!r} "
                                 f"has {len(model.layers)} layers")
            found = model.layers[layer]
        elif isinstance(layer, keras.layers.Layer):
            if not any(candidate is layer for candidate in _all_layers(model)):
                raise ValueError(f"layer {layer.name!r} is not a layer of model {model.name!r}")
            found = layer
        else:
            raise TypeError(f"layer must be None, a layer name, an index or a keras layer; "
                            f"got {type(layer).__name__}")
        if isinstance(found, keras.layers.InputLayer):
            raise ValueError(f"layer {found.name!r} is the model's input, not a feature map")
        shape = _static_shape(found)
        if shape is not None and not is_feature_map(shape):
            raise ValueError(f"layer {found.name!r} outputs shape {shape}; a class activation map "
                             f"needs a 4-D feature map (N, h, w, C) larger than 1x1")
        return found

    def _choose_layer_statically(self):
        """The last feature-map layer, when every layer's output shape is known without running."""
        shapes = [(layer, _static_shape(layer)) for layer in _leaf_layers(self.model)]
        if not shapes or any(shape is None for _, shape in shapes):
            return None
        return self._last_feature_map(shapes)

    def _choose_layer_by_running(self, images):
        """Run one image, noting every layer's output in the order they finish."""
        key = tuple(images.shape[1:])
        chosen = _CHOSEN.setdefault(self.model, {})
        if key not in chosen:
            finished = []

            def note(layer, value):
                finished.append((layer, tuple(value.shape) if hasattr(value, "shape") else None))
                return value

            with _recording(_leaf_layers(self.model), note):
                self.model(images[:1], training=False)
            chosen[key] = self._last_feature_map(finished)
        return self._find_layer(chosen[key])

    def _last_feature_map(self, shapes):
        for layer, shape in reversed(shapes):
            if is_feature_map(shape):
                return layer
        raise ValueError(f"model {self.model.name!r} has no layer whose output is a 4-D feature "
                         f"map (N, h, w, C) larger than 1x1; pass layer= explicitly")

    @property
    def layer_name(self):
        return None if self.layer is None else self.layer.name

    # --- inputs ----------------------------------------------------------------------

    def _input_spec(self):
        """(shape, dtype) of the model's input when the model declares it."""
        try:
            inputs = self.model.inputs
        except (AttributeError, ValueError):
            return None, None
        if not inputs:
            return None, None
        if len(inputs) > 1:
            raise ValueError(f"model {self.model.name!r} has {len(inputs)} inputs; "
                             f"class activation maps need a model with one image input")
        return tuple(inputs[0].shape), inputs[0].dtype

    def _input_channels(self, shape):
        if shape is not None and len(shape) == 4 and shape[-1] is not None:
            return shape[-1]
        for layer in _leaf_layers(self.model):
            if isinstance(layer, keras.layers.Conv2D) and layer.built:
                return layer.kernel.shape[-2]
        return None

    def prepare(self, images):
        """Check a batch ``(N, H, W, C)`` against the model and make it a tensor."""
        if not tf.is_tensor(images):
            images = np.asarray(images)
            if not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
                raise TypeError(f"images must be numeric; got dtype {images.dtype}")
        shape = tuple(images.shape)
        if len(shape) != 4:
            hint = " (for one image use images[None])" if len(shape) == 3 else ""
            raise ValueError(f"images must be a 4-D batch (N, H, W, C) for a Keras model; "
                             f"got shape {shape}{hint}")
        if shape[0] == 0:
            raise ValueError("images is an empty batch")
        expected, dtype = self._input_spec()
        channels = self._input_channels(expected)
        if channels is not None and shape[-1] != channels:
            if shape[1] == channels:
                raise ValueError(f"images look channels first {shape}; Keras models take channels "
                                 f"last (N, H, W, C): use np.transpose(images, (0, 2, 3, 1))")
            raise ValueError(f"images have {shape[-1]} channels; the model takes {channels}")
        if expected is not None and len(expected) == 4:
            for axis, name in ((1, "height"), (2, "width")):
                if expected[axis] is not None and shape[axis] != expected[axis]:
                    raise ValueError(f"images have {name} {shape[axis]}; the model takes "
                                     f"{expected[1:3]} (height, width); got shape {shape}")
        return tf.cast(tf.convert_to_tensor(images), dtype or "float32")

    @property
    def n_classes(self):
        try:
            outputs = self.model.outputs
        except (AttributeError, ValueError):
            return None
        if not outputs:
            return None
        try:
            selected = select_output(list(outputs), self.output)
        except ValueError:
            return None
        return selected.shape[-1] if len(selected.shape) == 2 else None

    # --- passes ----------------------------------------------------------------------

    def _traced(self, kind, images, build):
        if self.layer is None:
            self.layer = self._choose_layer_by_running(images)
        key = (kind, id(self.layer), repr(self.output), tuple(images.shape[1:]), images.dtype.name)
        functions = _TRACED.setdefault(self.model, {})
        if key not in functions:
            spec = tf.TensorSpec((None,) + tuple(images.shape[1:]), images.dtype)
            functions[key] = build(weakref.ref(self.model), weakref.ref(self.layer), self.output, spec)
        return functions[key]

    def forward(self, images, targets, gradients=True):
        """One pass over ``images``: activations (N, h, w, C), the gradients of each image's
        target score (None when ``gradients`` is False), the chosen targets and their scores.
        ``targets`` holds -1 where the top prediction is to be taken."""
        function = self._traced("gradients" if gradients else "activations", images,
                                _gradient_function if gradients else _activation_function)
        values = function(images, tf.constant(targets, dtype=tf.int32))
        activations, grads, outputs, chosen, scores = (
            None if value is None else value.numpy() for value in values)
        check_target_range(chosen, outputs.shape[1])
        if grads is not None:
            grads = grads.astype(np.float32, copy=False)
        return activations.astype(np.float32, copy=False), grads, chosen, scores

    def masked_scores(self, images, activations, targets, batch_size):
        """Target score of each image multiplied by each upsampled, [0, 1]-scaled channel."""
        function = self._traced("masked", images, _masked_function)
        n_images, _, _, n_channels = activations.shape
        scores = np.empty((n_images, n_channels), dtype=np.float32)
        for n in range(n_images):
            for start in range(0, n_channels, batch_size):
                chunk = activations[n:n + 1, :, :, start:start + batch_size]
                scores[n, start:start + chunk.shape[-1]] = function(
                    images[n:n + 1], tf.constant(chunk), tf.constant(targets[n], dtype=tf.int32)).numpy()
        return scores


def _run_and_record(model, layer, output, images, record):
    """Run the model with ``layer``'s output going through ``record``; return the output and it."""
    recorded = []

    def keep(_, value):
        value = record(value)
        recorded.append(value)
        return value

    with _recording([layer], keep):
        outputs = select_output(model(images, training=False), output)
    if len(recorded) != 1:
        raise ValueError(f"layer {layer.name!r} ran {len(recorded)} times in one forward pass; "
                         f"choose a layer that runs exactly once")
    activations = recorded[0]
    if not tf.is_tensor(activations) or not is_feature_map(tuple(activations.shape)):
        shape = tuple(activations.shape) if hasattr(activations, "shape") else type(activations).__name__
        raise ValueError(f"layer {layer.name!r} outputs {shape}; a class activation map needs a "
                         f"4-D feature map (N, h, w, C) larger than 1x1")
    _check_scores(outputs)
    return outputs, activations


def _targets_and_scores(outputs, targets):
    top = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    chosen = tf.where(targets < 0, top, targets)
    picked = tf.one_hot(chosen, tf.shape(outputs)[-1], dtype=outputs.dtype)
    return chosen, tf.reduce_sum(outputs * picked, axis=-1)


def _gradient_function(model_ref, layer_ref, output, spec):
    def run(images, targets):
        model, layer = model_ref(), layer_ref()
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            def watch(value):
                if tf.is_tensor(value):
                    tape.watch(value)
                return value

            outputs, activations = _run_and_record(model, layer, output, images, watch)
            chosen, scores = _targets_and_scores(outputs, targets)
        gradients = tape.gradient(scores, activations)
        if gradients is None:
            raise ValueError(f"the model's output does not depend on layer {layer.name!r}")
        return activations, gradients, outputs, chosen, scores

    return tf.function(run, input_signature=[spec, tf.TensorSpec((None,), tf.int32)])


def _activation_function(model_ref, layer_ref, output, spec):
    def run(images, targets):
        outputs, activations = _run_and_record(model_ref(), layer_ref(), output, images, lambda value: value)
        chosen, scores = _targets_and_scores(outputs, targets)
        return activations, None, outputs, chosen, scores

    return tf.function(run, input_signature=[spec, tf.TensorSpec((None,), tf.int32)])


def _masked_function(model_ref, layer_ref, output, spec):
    def run(image, channels, target):
        masks = tf.image.resize(tf.cast(channels, tf.float32), tf.shape(image)[1:3], method="bilinear")
        masks = tf.transpose(masks[0], (2, 0, 1))[..., None]
        low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
        masks = tf.math.divide_no_nan(masks - low, high - low)
        outputs = select_output(model_ref()(tf.cast(masks, image.dtype) * image, training=False), output)
        _check_scores(outputs)
        return outputs[:, target]

    return tf.function(run, input_signature=[spec, tf.TensorSpec((1, None, None, None), tf.float32),
                                             tf.TensorSpec((), tf.int32)])
