"""Problems and predictors shared by the benchmarks and the peer workers.

This module is imported in every virtual environment of the benchmark (imgexplain's and
each peer's), so both sides of a comparison run the very same predictor code. It needs
numpy only; the EfficientNet-Lite0 helpers import torch, and imgexplain's zoo, when called
(the peers import imgexplain from the checkout: bench/peers.py puts it on their PYTHONPATH).
"""
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

# seed 000's anchor arguments
ANCHOR_ARGS = {"threshold": 0.95, "p_sample": 0.5, "tau": 0.25}
SLIC_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "horse")
# A block in the middle of efficientnet-lite-pytorch's network (in `efficientnet_softmax`'s model): the
# second layer of the CAM parity benchmark.
EFFICIENTNET_BLOCK_10 = "0._blocks.10"
# Its last batch norm (14x14x112): the layer of the perturbation methods in bench/cam_methods.py, a module
# pytorch-grad-cam's AblationCAM can replace (the block itself is called with a keyword it does not take).
EFFICIENTNET_BLOCK_10_PROJECTION = "0._blocks.10._bn2"


class FixedSegmentation:
    """A segmentation function that returns precomputed labels (the same on both sides)."""

    def __init__(self, segments):
        self.segments = np.asarray(segments)

    def __call__(self, image):
        return self.segments.copy()


class Counted:
    """Wraps a predictor: counts calls and images, and the seconds spent inside it."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.reset()

    def reset(self):
        self.calls = 0
        self.images = 0
        self.seconds = 0.0

    def __call__(self, images):
        start = time.perf_counter()
        output = self.predictor(images)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.images += len(images)
        return output

    def counts(self):
        return {"calls": self.calls, "images": self.images, "model_seconds": self.seconds}


def efficientnet_softmax():
    """EfficientNet-Lite0 of `imgexplain.zoo` (ImageNet weights, PyTorch, CPU) followed by a softmax.

    Returns
    -------
    model : torch.nn.Sequential
        The network and a softmax, in eval mode.
    layer : str
        Name of the module of ``model`` whose output is the last feature map: the layer for CAM.
    """
    import torch

    from imgexplain import zoo

    torch.manual_seed(0)
    lite = zoo.efficientnet_lite0(framework="torch", device="cpu")
    return torch.nn.Sequential(lite.model, torch.nn.Softmax(dim=1)).eval(), f"0.{lite.feature_layer}"


def efficientnet_input(images):
    """(N, 224, 224, 3) images in 0..255 -> the model's (N, 3, 224, 224) float32 input."""
    import torch

    x = (np.asarray(images, dtype=np.float32) - 127.0) / 128.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class EfficientNetPredictor:
    """(N, 224, 224, 3) images in 0..255 -> (N, 1000) ImageNet probabilities."""

    def __init__(self):
        self.model, _ = efficientnet_softmax()

    def __call__(self, images):
        import torch

        with torch.no_grad():
            return self.model(efficientnet_input(images)).numpy()


def seconds_per_image(explain, images, batch, repeats):
    """Seconds per image of ``explain(images[i:i + batch])``: the best call after one warm-up call.

    The best call, as in ``timeit``, is the least disturbed by other work on the machine. The
    same protocol runs on both sides of every timing comparison.
    """
    explain(images[:batch])
    per_image = []
    for _ in range(repeats):
        for start in range(0, len(images) - batch + 1, batch):
            began = time.perf_counter()
            explain(images[start:start + batch])
            per_image.append((time.perf_counter() - began) / batch)
    return {"best": float(np.min(per_image)), "median": float(np.median(per_image)), "samples": per_image}
