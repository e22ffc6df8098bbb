"""The one model type: a classifier as the explainers use it (model, input size, preprocessing, a predictor of
probabilities, class names and what CAM explains), whatever its framework and wherever it was loaded from."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from imgexplain.backends import ModelError
from imgexplain.classes import top_indices


@dataclass
class Classifier:
    """A model as the explainers use it; images are (N, H, W, 3) floats in 0..255.

    The one model type of imgexplain: :func:`imgexplain.models.load_model` makes them from a saved file,
    and the built-in model (:class:`imgexplain.zoo.PretrainedModel`) is one. The comments of the fields
    say what each is.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.classes import numbered_classes
    >>> from imgexplain.classifier import Classifier
    >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
    ...     bright = np.asarray(images).reshape(len(images), -1).mean(axis=1) / 255
    ...     return np.stack([1 - bright, bright], axis=1)
    >>> toy = Classifier(name="toy", framework="none", model=None, input_size=(4, 4),
    ...                  preprocess=lambda images: images, predictor=predictor,
    ...                  top_classes=numbered_classes)
    >>> toy.top_classes(toy.predictor(np.full((1, 4, 4, 3), 204.0))[0])
    [(1, 'class 1', 0.8), (0, 'class 0', 0.19999999999999996)]
    """

    name: str
    framework: str
    model: object
    input_size: tuple[int, int]
    preprocess: Callable  # images -> the model's input (what CAM takes)
    predictor: Callable  # images -> (N, K) probabilities (what AnchorImage takes)
    top_classes: Callable  # (K,) probabilities, top -> [(class index, name, p), ...] best first
    cam_layer: str | None = None  # None: CAM picks the last feature map
    cam_model: object = None  # what CAM explains, when not ``model``: a one-output model as two outputs
    cam_output: str | None = None  # the output CAM explains, when not the model's last (CAM's ``output=``)
    cam_forward: Callable | None = None  # a faster forward pass for CAM's masked passes (CAM's ``forward=``)
    multilabel: bool = False  # outputs are independent probabilities, one per label (sigmoids, not a softmax)

    def with_labels(self, labels) -> "Classifier":
        """The same classifier, its classes named by ``labels`` (a list: class k is ``labels[k]``).

        Parameters
        ----------
        labels : sequence
            One name per class; each is made a str.

        Returns
        -------
        Classifier
            A new one; its ``top_classes`` raises ModelError for a model of another number of classes.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain.classes import numbered_classes
        >>> from imgexplain.classifier import Classifier
        >>> def predictor(images):  # two classes, "dark" and "bright": the mean brightness
        ...     bright = np.asarray(images).reshape(len(images), -1).mean(axis=1) / 255
        ...     return np.stack([1 - bright, bright], axis=1)
        >>> toy = Classifier(name="toy", framework="none", model=None, input_size=(4, 4),
        ...                  preprocess=lambda images: images, predictor=predictor,
        ...                  top_classes=numbered_classes)
        >>> named = toy.with_labels(["dark", "bright"])
        >>> named.top_classes(np.array([0.2, 0.8]), top=1)
        [(1, 'bright', 0.8)]
        """
        labels = [str(label) for label in labels]

        def top_classes(probs, top=5):
            if len(probs) != len(labels):
                raise ModelError(f"{len(labels)} labels were given for a model of {len(probs)} classes")
            return [(int(k), labels[k], float(probs[k])) for k in top_indices(probs, top)]

        named = copy.copy(self)
        named.top_classes = top_classes
        return named
