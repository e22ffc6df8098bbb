"""Stand-in for torchvision, for pytorch-grad-cam in bench/ only (see bench/README.md).

The CPU torch wheel used here has no matching torchvision. pytorch-grad-cam imports four
torchvision names at import time (transforms.Compose/Normalize/ToTensor for its
preprocessing helper, transforms.functional.resize for SESS, ops.box_iou for detection
targets); none of them is on the Grad-CAM path that the benchmark times. Each name here
raises if it is ever used, so a timing can never silently run stand-in code.
"""
from torchvision import ops, transforms

__version__ = "0.0-bench-standin"
__all__ = ["ops", "transforms"]

