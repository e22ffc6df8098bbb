"""Class activation maps (Grad-CAM and its family) for Keras 3 and PyTorch image classifiers.

Only numpy code is imported here; TensorFlow or torch load when a model of theirs is explained.
The methods are the entries of :data:`REGISTRY`; pytorch-grad-cam's classes are in
:mod:`imgexplain.cam.grad_cam` (and at the top level), its metrics here. :class:`imgexplain.CAM` has
one public path, the top level (it is defined in :mod:`imgexplain.cam.core`).
"""
from imgexplain._lazy import lazy_attributes

# Each public name -> the module of this package that defines it (loaded on first use).
_HOMES = {
    "explain_prediction": "api", "show_prediction": "api", "image_from_path": "api",
    "CAMResult": "core",
    "CAMExplanation": "explanation", "HeatmapArray": "explanation", "TargetExplanation": "explanation",
    "METHODS": "methods", "REGISTRY": "methods", "Method": "methods",
    **{name: "metrics" for name in ("CamMultImageConfidenceChange", "DropInConfidence", "IncreaseInConfidence",
                                    "NoisyLinearImputer", "ROADMostRelevantFirst", "ROADLeastRelevantFirst",
                                    "ROADMostRelevantFirstAverage", "ROADLeastRelevantFirstAverage",
                                    "ROADCombined")},
}

__all__ = list(_HOMES)

__getattr__ = lazy_attributes(__name__, _HOMES)
