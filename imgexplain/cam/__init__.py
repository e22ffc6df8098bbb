"""Class activation maps (Grad-CAM and its family) for Keras 3 and PyTorch image classifiers.

Only numpy code is imported here; TensorFlow or torch load when a model of theirs is explained.
The methods are the entries of :data:`REGISTRY`; pytorch-grad-cam's classes are in
:mod:`imgexplain.cam.grad_cam` (and at the top level), its metrics here.
"""
from imgexplain.cam.api import CAM, CAMResult, explain_prediction, image_from_path, show_prediction
from imgexplain.cam.explanation import CAMExplanation, HeatmapArray, TargetExplanation
from imgexplain.cam.methods import METHODS, REGISTRY, Method
from imgexplain.cam.metrics import (CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence,
                                    NoisyLinearImputer, ROADCombined, ROADLeastRelevantFirst,
                                    ROADLeastRelevantFirstAverage, ROADMostRelevantFirst, ROADMostRelevantFirstAverage)

__all__ = ["CAM", "CAMResult", "CAMExplanation", "HeatmapArray", "TargetExplanation", "METHODS", "REGISTRY", "Method",
           "explain_prediction", "show_prediction", "image_from_path", "CamMultImageConfidenceChange",
           "DropInConfidence", "IncreaseInConfidence", "NoisyLinearImputer", "ROADMostRelevantFirst",
           "ROADLeastRelevantFirst", "ROADMostRelevantFirstAverage", "ROADLeastRelevantFirstAverage", "ROADCombined"]
