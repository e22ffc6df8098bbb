"""Class activation maps (Grad-CAM and its family) for Keras 3 and PyTorch image classifiers.

Only numpy code is imported here; TensorFlow or torch load when a model of theirs is explained.
"""
from imgexplain.cam.api import CAM, CAMResult, explain_prediction, image_from_path, show_prediction
from imgexplain.cam.explanation import CAMExplanation, HeatmapArray, TargetExplanation
from imgexplain.cam.methods import METHODS

__all__ = ["CAM", "CAMResult", "CAMExplanation", "HeatmapArray", "TargetExplanation", "METHODS",
           "explain_prediction", "show_prediction", "image_from_path"]
