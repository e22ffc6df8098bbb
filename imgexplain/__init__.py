"""imgexplain: explain the predictions of image classifiers.

Anchors (black box, any model) and class activation maps (Keras and PyTorch).
Importing this package never imports TensorFlow or torch; framework code loads
only when a model of that framework is explained.
"""
from imgexplain import datasets, evaluate, targets, zoo
from imgexplain._version import __version__
from imgexplain.anchors.image import AnchorImage, scale_image
from imgexplain.cam.api import CAM, METHODS, explain_prediction, image_from_path, show_prediction
from imgexplain.pipeline import explain_dataset, explain_many
from imgexplain.explanation import Explanation
from imgexplain.predictor import PredictorError
from imgexplain.render import format_as_image, show_cam_on_image

__all__ = [
    "__version__",
    "AnchorImage",
    "scale_image",
    "CAM",
    "METHODS",
    "explain_prediction",
    "show_prediction",
    "format_as_image",
    "show_cam_on_image",
    "image_from_path",
    "explain_dataset",
    "explain_many",
    "Explanation",
    "PredictorError",
    "datasets",
    "evaluate",
    "targets",
    "zoo",
]
