"""What a class activation map explains: callables on one image's model output.

A target is any callable that takes one image's output (a row ``(n_classes,)`` of a
classifier, ``(C, H, W)`` or ``(H, W, C)`` of a segmentation model, ...) and returns the
scalar to explain, as in pytorch-grad-cam. Pass one per image, or one for all images, as
``targets=`` of :class:`imgexplain.CAM`. The output is a torch tensor, a TensorFlow tensor
or, for masked passes run by a ``forward=`` callable, a numpy array; the targets here
work on all three.

pytorch-grad-cam's target classes exist here under their names and with their signatures
(:class:`ClassifierOutputTarget`, :class:`ClassifierOutputSoftmaxTarget`, :class:`ClassifierOutputReST`,
:class:`BinaryClassifierOutputTarget`, :class:`SoftmaxOutputTarget`, :class:`RawScoresOutputTarget`,
:class:`SemanticSegmentationTarget`, :class:`FinerWeightedTarget`). A target with an int attribute
``category`` is reported as that class in :attr:`imgexplain.CAMResult.targets`. Object detection
targets (pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``) are out of scope: imgexplain explains classifiers.
"""
from __future__ import annotations

import numpy as np

from imgexplain._checks import check_class_index, check_number
from imgexplain.backends import tensor_backend
from imgexplain.outputs import log_softmax, softmax

__all__ = ["ClassScore", "ClassProbability", "SegmentationRegion", "RegressionOutput", "ClassifierOutputTarget",
           "ClassifierOutputSoftmaxTarget", "ClassifierOutputReST", "BinaryClassifierOutputTarget",
           "SoftmaxOutputTarget", "RawScoresOutputTarget", "SemanticSegmentationTarget", "FinerWeightedTarget"]


def _total(value):
    backend = tensor_backend(value)
    return np.sum(value) if backend is None else backend.tensor_sum(value)


def _softmax(value):
    backend = tensor_backend(value)
    if backend is not None:
        return backend.tensor_softmax(value)
    return softmax(value)


def _log_softmax(value):
    backend = tensor_backend(value)
    if backend is not None:
        return backend.tensor_log_softmax(value)
    return log_softmax(value)


class ClassScore:
    """The model's output for class ``category`` as it is (a logit, or a probability when
    the model ends in a softmax).

    Parameters
    ----------
    category : int
        The class index, >= 0.

    Raises
    ------
    TypeError
        `category` is not an int.
    ValueError
        `category` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import ClassScore
    >>> float(ClassScore(2)(np.array([0.5, 1.5, 3.0])))
    3.0
    """

    def __init__(self, category: int) -> None:
        self.category = check_class_index(category, "category")

    def __call__(self, output):
        return output[..., self.category]

    def __repr__(self):
        return f"ClassScore({self.category})"


class ClassProbability:
    """The softmax probability of class ``category``, for models that output logits.

    Parameters
    ----------
    category : int
        The class index, >= 0.

    Raises
    ------
    TypeError
        `category` is not an int.
    ValueError
        `category` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import ClassProbability
    >>> round(float(ClassProbability(0)(np.log(np.array([3.0, 1.0])))), 6)
    0.75
    """

    def __init__(self, category: int) -> None:
        self.category = check_class_index(category, "category")

    def __call__(self, output):
        return _softmax(output)[..., self.category]

    def __repr__(self):
        return f"ClassProbability({self.category})"


class SegmentationRegion:
    """The sum of class ``category``'s output over the pixels where ``mask`` is true, for a
    segmentation model whose output is ``(C, H, W)`` (PyTorch) or ``(H, W, C)`` (Keras)
    per image, with ``mask`` of shape ``(H, W)``.

    Parameters
    ----------
    category : int
        The class index, >= 0.
    mask : (H, W) array-like
        The region; nonzero pixels count.

    Raises
    ------
    TypeError
        `category` is not an int.
    ValueError
        `category` is negative or `mask` is not 2-D; when called, an output that is
        neither (C, H, W) nor (H, W, C).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import SegmentationRegion
    >>> output = np.arange(8.0).reshape(2, 2, 2)  # (C, H, W): two classes of 2 x 2 pixels
    >>> float(SegmentationRegion(1, mask=[[1, 0], [0, 1]])(output))
    11.0
    """

    def __init__(self, category: int, mask: np.ndarray) -> None:
        self.category = check_class_index(category, "category")
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be a 2-D (H, W) array; got shape {mask.shape}")
        self.mask = mask.astype(np.float32)

    def __call__(self, output):
        shape = tuple(output.shape)
        if len(shape) == 3 and shape[1:] == self.mask.shape:
            plane = output[self.category]
        elif len(shape) == 3 and shape[:2] == self.mask.shape:
            plane = output[..., self.category]
        else:
            raise ValueError(f"a segmentation output of one image must be (C, H, W) or (H, W, C) with "
                             f"(H, W) = the mask's {self.mask.shape}; got {shape}")
        backend = tensor_backend(output)
        mask = self.mask if backend is None else backend.tensor_mask(self.mask, plane)
        return _total(plane * mask)

    def __repr__(self):
        return f"SegmentationRegion({self.category}, mask of shape {self.mask.shape})"


class RegressionOutput:
    """A regression model's output ``index`` (None: the sum of all its outputs).

    Parameters
    ----------
    index : int or None
        Which output, >= 0; None sums them.

    Raises
    ------
    ValueError
        `index` is neither None nor an int >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import RegressionOutput
    >>> output = np.array([1.0, 2.0])
    >>> float(RegressionOutput()(output)), float(RegressionOutput(0)(output))
    (3.0, 1.0)
    """

    def __init__(self, index: int | None = None) -> None:
        self.index = None if index is None else check_class_index(index, "index")

    def __call__(self, output):
        return _total(output) if self.index is None else output[..., self.index]

    def __repr__(self):
        return f"RegressionOutput({self.index})"


# --- pytorch-grad-cam's targets, same names and signatures --------------------------------------


class ClassifierOutputTarget(ClassScore):
    """pytorch-grad-cam's name for :class:`ClassScore`: the output for class ``category``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import ClassifierOutputTarget
    >>> float(ClassifierOutputTarget(1)(np.array([0.5, 1.5])))
    1.5
    """

    def __repr__(self):
        return f"ClassifierOutputTarget({self.category})"


class ClassifierOutputSoftmaxTarget(ClassProbability):
    """pytorch-grad-cam's name for :class:`ClassProbability`: the softmax probability of ``category``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import ClassifierOutputSoftmaxTarget
    >>> round(float(ClassifierOutputSoftmaxTarget(0)(np.log(np.array([1.0, 3.0])))), 6)
    0.25
    """

    def __repr__(self):
        return f"ClassifierOutputSoftmaxTarget({self.category})"


class ClassifierOutputReST(ClassScore):
    """The logit of ``category`` minus its cross-entropy loss, ``z_c + log softmax(z)_c``: pre- and
    post-softmax together (the ReST target of Cai et al., 2025, for ShapleyCAM).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import ClassifierOutputReST
    >>> round(float(ClassifierOutputReST(0)(np.array([2.0, 2.0]))), 6)   # 2 + log(0.5)
    1.306853
    """

    def __call__(self, output):
        return output[..., self.category] + _log_softmax(output)[..., self.category]

    def __repr__(self):
        return f"ClassifierOutputReST({self.category})"


class BinaryClassifierOutputTarget(ClassScore):
    """A one-output (sigmoid or logit) model's output for ``category`` 1, its negative for 0.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import BinaryClassifierOutputTarget
    >>> float(BinaryClassifierOutputTarget(0)(np.array([0.75]))[0])
    -0.75
    """

    def __call__(self, output):
        return output if self.category == 1 else -output

    def __repr__(self):
        return f"BinaryClassifierOutputTarget({self.category})"


class SoftmaxOutputTarget:
    """The softmax of the whole output (for one-output uses such as metrics).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import SoftmaxOutputTarget
    >>> SoftmaxOutputTarget()(np.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def __call__(self, output):
        return _softmax(output)

    def __repr__(self):
        return "SoftmaxOutputTarget()"


class RawScoresOutputTarget:
    """The output as it is (a CAM needs one number per image: a one-output model's score).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import RawScoresOutputTarget
    >>> RawScoresOutputTarget()(np.array([0.25])).tolist()
    [0.25]
    """

    def __call__(self, output):
        return output

    def __repr__(self):
        return "RawScoresOutputTarget()"


class SemanticSegmentationTarget(SegmentationRegion):
    """pytorch-grad-cam's name for :class:`SegmentationRegion`: class ``category`` summed over ``mask``.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import SemanticSegmentationTarget
    >>> float(SemanticSegmentationTarget(0, np.eye(2))(np.ones((2, 2, 2))))
    2.0
    """

    def __repr__(self):
        return f"SemanticSegmentationTarget({self.category}, mask of shape {self.mask.shape})"


class FinerWeightedTarget:
    """Finer-CAM's target (Zhang et al., 2025): the main class's score minus ``alpha`` times each
    comparison class's, averaged with the comparison classes' softmax probabilities as weights,
    ``sum_j p_j (y_main - alpha y_j) / sum_j p_j``.

    Parameters
    ----------
    main_category : int
        The class explained, >= 0 (also ``category``).
    comparison_categories : sequence of int
        The similar classes to tell it apart from.
    alpha : float
        How much of the comparison classes' scores is subtracted.

    Raises
    ------
    TypeError
        A category that is not an int, or an `alpha` that is not a number.
    ValueError
        A negative category, or no comparison category.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.targets import FinerWeightedTarget
    >>> float(FinerWeightedTarget(0, [1], alpha=1.0)(np.array([3.0, 1.0, 0.0])))
    2.0
    """

    def __init__(self, main_category: int, comparison_categories, alpha: float) -> None:
        self.category = self.main_category = check_class_index(main_category, "main_category")
        self.comparison_categories = [check_class_index(index, "comparison_categories")
                                      for index in comparison_categories]
        if not self.comparison_categories:
            raise ValueError("comparison_categories must name at least one class")
        self.alpha = check_number(alpha, "alpha")

    def __call__(self, output):
        main = output[..., self.main_category]
        probabilities = _softmax(output)
        weights = [probabilities[..., index] for index in self.comparison_categories]
        numerator = sum(weight * (main - self.alpha * output[..., index])
                        for weight, index in zip(weights, self.comparison_categories))
        return numerator / (sum(weights) + 1e-9)

    def __repr__(self):
        return f"FinerWeightedTarget({self.main_category}, {self.comparison_categories}, alpha={self.alpha})"
