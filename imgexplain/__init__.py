"""imgexplain: explain the predictions of image classifiers.

Anchors (black box, any model) and class activation maps (Keras and PyTorch).
Importing this package never imports TensorFlow or torch; framework code loads
only when a model of that framework is explained.
"""
from imgexplain import datasets, evaluate, targets, zoo
from imgexplain._version import __version__
from imgexplain.anchors.explanation import AnchorImageExplanation, scale_image
from imgexplain.anchors.image import AnchorImage
from imgexplain.cam.api import CAM, explain_prediction, image_from_path, show_prediction
from imgexplain.cam.core import CAMResult
from imgexplain.cam.explanation import CAMExplanation, HeatmapArray, TargetExplanation
from imgexplain.cam.factorization import DeepFeatureFactorization
from imgexplain.cam.grad_cam import (CLASSES, FinerCAM, GuidedBackpropReLUModel, RefineCAM, deprocess_image,
                                     preprocess_image)
from imgexplain.cam.methods import METHODS as CAM_METHODS
from imgexplain.explanation import Explanation
from imgexplain.pipeline import explain_dataset, explain_many
from imgexplain.predictor import PredictorCallError, PredictorError, PredictorReturnTypeError
from imgexplain.render import expand_heatmap, format_as_image, heatmap_to_image, show_cam_on_image

globals().update(CLASSES)   # pytorch-grad-cam's classes: GradCAM, HiResCAM, ..., one per CAM method

METHODS = ("anchor",) + CAM_METHODS
"""The explanation methods: ``anchor`` (:class:`AnchorImage`) and the class activation maps of :class:`CAM`."""

__all__ = [
    "__version__",
    "METHODS",
    "AnchorImage",
    "AnchorImageExplanation",
    "scale_image",
    "CAM",
    "CAMResult",
    "CAMExplanation",
    "TargetExplanation",
    "HeatmapArray",
    "explain_prediction",
    "show_prediction",
    "image_from_path",
    "format_as_image",
    "heatmap_to_image",
    "expand_heatmap",
    "show_cam_on_image",
    *CLASSES,
    "FinerCAM",
    "RefineCAM",
    "GuidedBackpropReLUModel",
    "DeepFeatureFactorization",
    "preprocess_image",
    "deprocess_image",
    "explain_dataset",
    "explain_many",
    "Explanation",
    "PredictorError",
    "PredictorCallError",
    "PredictorReturnTypeError",
    "datasets",
    "evaluate",
    "targets",
    "zoo",
]
