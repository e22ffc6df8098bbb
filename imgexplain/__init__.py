"""imgexplain: explain the predictions of image classifiers.

Anchors (black box, any model) and class activation maps (Keras and PyTorch).
Importing this package never imports TensorFlow or torch; framework code loads
only when a model of that framework is explained.
"""
from imgexplain._version import __version__
from imgexplain.anchors.image import AnchorImage, scale_image
from imgexplain.explanation import Explanation

__all__ = ["__version__", "AnchorImage", "scale_image", "Explanation"]
