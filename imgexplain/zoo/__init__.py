"""Pretrained image classifiers that work offline, and the ImageNet class index.

Nothing here downloads anything, and importing this package imports neither torch nor
TensorFlow: a framework loads only when a model of that framework is asked for.
"""
from imgexplain.zoo.efficientnet import PretrainedModel, efficientnet_lite0
from imgexplain.zoo.imagenet import ImageNetClass, decode_predictions, imagenet_class_index
from imgexplain.zoo.keras_port import cache_dir

__all__ = ["PretrainedModel", "efficientnet_lite0", "ImageNetClass", "decode_predictions",
           "imagenet_class_index", "cache_dir"]
