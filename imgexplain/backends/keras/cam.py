"""Keras 3 (TensorFlow backend): find the layers, run the model once, return activations and gradients.

A layer's output is taken by swapping the layer's ``call`` for a recording one while the
model runs, and putting it back afterwards, so any model works: Sequential, functional,
nested (a base model inside a Sequential) and subclassed. The forward and backward pass
is traced once per model, layers and input shape with ``tf.function`` (without autograph, so
that the library's own errors reach the caller as they are) and cached while the model
lives; the swap happens only while tracing, so calling again in a loop adds no graph nodes
and leaves nothing attached to the model. Callable targets run eagerly.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from imgexplain.model_outputs import call_target, check_target_range, select_output, token_grid
from imgexplain.outputs import SIGMOID_THRESHOLD, probability_mask

from . import CAM_COMPUTES
from .layers import (all_layers, find_layer, is_candidate, leaf_layers, no_candidate, recording, static_choice,
                     static_shape, token_layer)

# model -> {key: traced function}; entries go when the model is garbage collected.
_TRACED = weakref.WeakKeyDictionary()
# model -> {input shape: (the layer chosen by running the model, its token grid or None)}
_CHOSEN = weakref.WeakKeyDictionary()


def _class_scores(outputs, targets):
    """Scores of the chosen classes and the classes; ``targets`` holds -1 for the top class.
    A one-output model is a sigmoid: class 1 is its output, class 0 the complement."""
    if len(outputs.shape) != 2:
        raise ValueError(f"the model's output must be (N, n_classes) scores for class targets; got shape "
                         f"{tuple(outputs.shape)}; use a callable target (imgexplain.targets) otherwise")
    if outputs.shape[-1] == 1:
        column = outputs[:, 0]
        probability = tf.reduce_all(probability_mask(column))
        threshold = tf.where(probability, tf.constant(SIGMOID_THRESHOLD, column.dtype), tf.constant(0, column.dtype))
        chosen = tf.where(targets < 0, tf.cast(column > threshold, tf.int32), targets)  # the rule of imgexplain.outputs
        complement = tf.where(probability, 1 - column, -column)
        return chosen, tf.where(chosen == 1, column, complement)
    chosen = tf.where(targets < 0, tf.argmax(outputs, axis=-1, output_type=tf.int32), targets)
    picked = tf.one_hot(chosen, tf.shape(outputs)[-1], dtype=outputs.dtype)
    return chosen, tf.reduce_sum(outputs * picked, axis=-1)


def _callable_scores(outputs, targets):
    scores = []
    for target, row in zip(targets, tf.unstack(outputs)):
        score = call_target(target, row)
        scores.append(tf.reshape(tf.cast(score, tf.float32), ()))
    return tf.fill([len(scores)], -1), tf.stack(scores)


class CAMBackend:
    """Runs a Keras 3 model for :class:`imgexplain.cam.core.CAM` (channels last)."""

    channels_first = False
    computes = CAM_COMPUTES

    def __init__(self, model: keras.Model, layers: list | None = None, output: Any = None,
                 reshape_transform: Callable | None = None):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"Keras models are supported with the TensorFlow backend; "
                             f"this Keras runs on {keras.backend.backend()!r}")
        if keras.config.image_data_format() != "channels_last":
            raise ValueError("Keras models must be channels last "
                             "(keras.config.image_data_format() == 'channels_last')")
        self.model = model
        self.output = output
        self.output_layer = self._output_layer(output)
        self.reshape_transform = reshape_transform
        self.layers, self.grids = None, None
        # The explained output of the last pass (pytorch-grad-cam's ``cam.outputs``).
        self.outputs = None
        if layers is not None:
            self._set([find_layer(self.model, layer, self.reshape_transform) for layer in layers])
        else:
            layer = static_choice(self.model, self.reshape_transform)
            if layer is not None:
                self._set([layer])

    def _set(self, layers, grids=None):
        self.layers = layers
        self.grids = grids or [None if self.reshape_transform is not None else token_grid(static_shape(layer))
                               for layer in layers]

    def _output_layer(self, output):
        """The layer whose output is explained when ``output`` names a layer rather than one of the
        model's outputs (``output='logits'`` on a model ending in a softmax)."""
        if not isinstance(output, str) or output in (getattr(self.model, "output_names", None) or ()):
            return None
        return next((layer for layer in all_layers(self.model) if layer.name == output), None)

    def _call(self, images, layers=(), record=None):
        """Run the model with each of ``layers``' outputs going through ``record(layer, value)``;
        return the explained output (a layer's when ``output`` names one)."""
        explained = []

        def through(layer, value):
            if layer is self.output_layer:
                explained.append(value)
            return record(layer, value) if any(layer is other for other in layers) else value

        extra = [] if self.output_layer is None else [self.output_layer]
        with recording(list(layers) + extra, through):
            outputs = self.model(images, training=False)
        if self.output_layer is None:
            return select_output(outputs, self.output)
        if len(explained) != 1:
            raise ValueError(f"output layer {self.output!r} ran {len(explained)} times in one forward pass")
        return explained[0]

    @property
    def layer_names(self) -> list[str] | None:
        return None if self.layers is None else [layer.name for layer in self.layers]

    # --- the layers ------------------------------------------------------------------

    def _choose_layer_by_running(self, images):
        """Run one image, noting every layer's output in the order they finish (layers that run
        more than once are skipped); transformer tokens are chosen by their gradients."""
        key = tuple(images.shape[1:])
        chosen = _CHOSEN.setdefault(self.model, {})
        if key not in chosen:
            if not self.model.built:
                # A first call builds the layers, running some of them more than once.
                self.model(images[:1], training=False)
            finished = []
            with tf.GradientTape() as tape:
                def note(layer, value):
                    if tf.is_tensor(value):
                        tape.watch(value)
                        finished.append((layer, value))
                    return value

                outputs = self._call(images[:1], leaf_layers(self.model), note)
                score = tf.reduce_max(outputs) if len(outputs.shape) == 2 else tf.reduce_sum(outputs)
            runs = {}
            for layer, _ in finished:
                runs[id(layer)] = runs.get(id(layer), 0) + 1
            once = [(layer, value) for layer, value in finished if runs[id(layer)] == 1]
            candidates = [(layer, value) for layer, value in once if is_candidate(tuple(value.shape))]
            if not candidates:
                no_candidate(self.model)
            if len(candidates[-1][1].shape) == 4 or self.reshape_transform is not None:
                chosen[key] = (candidates[-1][0], None)
            else:
                chosen[key] = token_layer(candidates, tape.gradient(score, [v for _, v in candidates]))
        layer, grid = chosen[key]
        self._set([layer], [grid])

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

    def prepare(self, images: Any) -> tf.Tensor:
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
        finite = (tf.reduce_all(tf.math.is_finite(images)) if tf.is_tensor(images) and images.dtype.is_floating
                  else not np.issubdtype(np.asarray(images).dtype, np.floating) or np.isfinite(images).all())
        if not bool(finite):
            raise ValueError("images hold NaN or infinite values; a class activation map needs finite inputs")
        expected, dtype = self._input_spec()
        channels = expected[-1] if expected is not None and len(expected) == 4 else None
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
    def n_classes(self) -> int | None:
        try:
            outputs = self.model.outputs
        except (AttributeError, ValueError):
            return None
        if not outputs:
            return None
        if self.output_layer is not None:
            shape = static_shape(self.output_layer)
            return shape[-1] if shape is not None and len(shape) == 2 else None
        try:
            selected = select_output(list(outputs), self.output)
        except ValueError:
            return None
        return selected.shape[-1] if len(selected.shape) == 2 else None

    @staticmethod
    def spatial_size(images: tf.Tensor) -> tuple[int, int]:
        return tuple(images.shape[1:3])

    @staticmethod
    def flip(images: tf.Tensor) -> tf.Tensor:
        return tf.reverse(images, axis=[2])

    @staticmethod
    def to_numpy(images: tf.Tensor) -> np.ndarray:
        return images.numpy()

    # --- passes ----------------------------------------------------------------------

    def _as_map(self, index, tensor):
        """A recorded output as a ``(N, h, w, C)`` feature map, through reshape_transform."""
        if self.reshape_transform is not None:
            tensor = self.reshape_transform(tensor)
        elif self.grids[index] is not None:
            extra, side = self.grids[index]
            tensor = tf.reshape(tensor[:, extra:, :], (-1, side, side, tensor.shape[-1]))
        if not tf.is_tensor(tensor) or len(tensor.shape) != 4:
            shape = tuple(tensor.shape) if hasattr(tensor, "shape") else type(tensor).__name__
            through = " after reshape_transform" if self.reshape_transform is not None else ""
            raise ValueError(f"layer {self.layers[index].name!r} outputs {shape}{through}; a class activation "
                             f"map needs a 4-D feature map (N, h, w, C) (pass "
                             f"reshape_transform= to turn other outputs into one)")
        return tensor

    def _run(self, images, targets, gradients):
        """Activations and gradients (as feature maps), outputs, chosen classes and scores."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            def watch(value):
                if gradients and tf.is_tensor(value):
                    tape.watch(value)
                return value

            outputs, activations = self._run_and_record(images, watch)
            if isinstance(targets, list):
                chosen, scores = _callable_scores(outputs, targets)
            else:
                chosen, scores = _class_scores(outputs, targets)
        grads = None
        if gradients:
            grads = tape.gradient(scores, activations)
            missing = [layer.name for layer, grad in zip(self.layers, grads) if grad is None]
            if missing:
                raise ValueError(f"the model's output does not depend on layer {missing[0]!r}")
            grads = [self._as_map(index, grad) for index, grad in enumerate(grads)]
        activations = [self._as_map(index, value) for index, value in enumerate(activations)]
        return activations, grads, outputs, chosen, scores

    def _traced(self, kind, images, build):
        key = (kind, tuple(id(layer) for layer in self.layers or ()), repr(self.output),
               id(self.reshape_transform), tuple(images.shape[1:]), images.dtype.name)
        functions = _TRACED.setdefault(self.model, {})
        if key not in functions:
            spec = tf.TensorSpec((None,) + tuple(images.shape[1:]), images.dtype)
            functions[key] = build(spec)
        return functions[key]

    def forward(self, images: tf.Tensor, targets: np.ndarray | list, gradients: bool = True,
                hessian: bool = False) -> tuple:
        """One pass over ``images``: per layer, activations (N, h, w, C) and the gradients of each
        image's target score (None when ``gradients`` is False); the chosen classes (-1 for
        callable targets) and the scores. ``targets`` is an int array (-1: top class) or a list
        of callables (run eagerly). ``hessian`` is not computed here (see ``computes``)."""
        if self.layers is None:
            self._choose_layer_by_running(images)
        if isinstance(targets, list):
            values = self._run(images, targets, gradients)
        else:
            backend = weakref.ref(self)
            function = self._traced(
                "gradients" if gradients else "activations", images,
                lambda spec: tf.function(lambda x, t: backend()._run(x, t, gradients), autograph=False,
                                         input_signature=[spec, tf.TensorSpec((None,), tf.int32)]))
            values = function(images, tf.constant(targets, dtype=tf.int32))
        activations, grads, outputs, chosen, scores = values
        self.outputs = outputs
        chosen = chosen.numpy().astype(np.int64)
        if not isinstance(targets, list):
            check_target_range(chosen, outputs.shape[1])
        activations = [value.numpy().astype(np.float32, copy=False) for value in activations]
        if grads is not None:
            grads = [value.numpy().astype(np.float32, copy=False) for value in grads]
        return activations, grads, chosen, scores.numpy()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The explained output of a numpy batch, as numpy."""
        images = tf.convert_to_tensor(batch)
        backend = weakref.ref(self)
        function = self._traced("predict", images, lambda spec: tf.function(
            lambda x: backend()._call(x), autograph=False, input_signature=[spec]))
        return function(images).numpy()

    def ablated_outputs(self, image: tf.Tensor, index: int, channels: np.ndarray) -> np.ndarray:
        """The explained output of ``image`` (``(1, H, W, C)``) once per channel in ``channels``,
        with that channel of layer ``index``'s output set to zero."""
        channels = np.asarray(channels)

        def ablate(_, value):
            keep = np.ones((len(channels), value.shape[-1]), dtype=np.float32)
            keep[np.arange(len(channels)), channels] = 0
            shape = [len(channels)] + [1] * (len(value.shape) - 2) + [value.shape[-1]]
            return value * tf.cast(keep.reshape(shape), value.dtype)

        return np.asarray(self._call(tf.repeat(image, len(channels), axis=0), [self.layers[index]], ablate))

    def _run_and_record(self, images, record):
        """Run the model with each chosen layer's output going through ``record``; return the
        explained output and the recorded values, one per layer."""
        recorded = {id(layer): [] for layer in self.layers}

        def keep(layer, value):
            value = record(value)
            recorded[id(layer)].append(value)
            return value

        outputs = self._call(images, self.layers, keep)
        for layer in self.layers:
            if len(recorded[id(layer)]) != 1:
                raise ValueError(f"layer {layer.name!r} ran {len(recorded[id(layer)])} times in one forward "
                                 f"pass; choose a layer that runs exactly once")
        return outputs, [recorded[id(layer)][0] for layer in self.layers]

