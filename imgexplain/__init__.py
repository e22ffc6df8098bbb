"""imgexplain: explain the predictions of image classifiers.

Anchors (black box, any model) and class activation maps (Keras and PyTorch).
Importing this package is light: every public name loads its module on first use
(PEP 562), so ``import imgexplain`` imports none of matplotlib, scikit-image's
segmentation, torch, TensorFlow, Keras, ONNX Runtime, Ray or pyarrow.
"""
from imgexplain._lazy import lazy_attributes
from imgexplain._version import __version__
from imgexplain.cam.methods import REGISTRY as _CAM_REGISTRY

_CAM_CLASSES = tuple(entry.class_name for entry in _CAM_REGISTRY.values())
# Where each public name lives (None: a subpackage); pytorch-grad-cam's classes (GradCAM, HiResCAM, ...) come
# from the CAM registry.
_HOMES = {
    "datasets": None, "evaluate": None, "targets": None, "zoo": None,
    "METHODS": "explainers",
    "AnchorImage": "anchors.image",
    "AnchorImageExplanation": "anchors.explanation",
    "scale_image": "anchors.explanation",
    "CAM": "cam.core",
    "explain_prediction": "cam.api",
    "show_prediction": "cam.api",
    "image_from_path": "cam.api",
    "CAMResult": "cam.core",
    "CAMExplanation": "cam.explanation",
    "TargetExplanation": "cam.explanation",
    "HeatmapArray": "cam.explanation",
    "format_as_image": "render",
    "heatmap_to_image": "render",
    "expand_heatmap": "render",
    "show_cam_on_image": "render",
    **{name: "cam.grad_cam" for name in _CAM_CLASSES},
    "FinerCAM": "cam.grad_cam",
    "RefineCAM": "cam.grad_cam",
    "GuidedBackpropReLUModel": "cam.grad_cam",
    "DeepFeatureFactorization": "cam.factorization",
    "preprocess_image": "cam.grad_cam",
    "deprocess_image": "cam.grad_cam",
    "explain_dataset": "pipeline",
    "explain_many": "pipeline",
    "Explanation": "explanation",
    "PredictorError": "predictor",
    "PredictorCallError": "predictor",
    "PredictorReturnTypeError": "predictor",
}

__all__ = ["__version__", *_HOMES]

__getattr__ = lazy_attributes(__name__, _HOMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
