"""Problems and predictors shared by bench/run.py and the peer workers.

This file is imported in every virtual environment of the benchmark (imgexplain's and
each peer's), so both sides of a comparison run the very same predictor code. It needs
numpy only; the EfficientNet-Lite0 helpers import torch when called.
"""
import importlib.util
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

# seed 000's anchor arguments
ANCHOR_ARGS = {"threshold": 0.95, "p_sample": 0.5, "tau": 0.25}
SLIC_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "horse")

# Known-answer anchor problems: a textured image cut into a grid; the class is 1 iff
# the `anchor` cells are intact, so the one minimal anchor with precision 1 is `anchor`.
KNOWN_ANSWERS = {
    "grid 4x4, 64x64, anchor of 2": {"size": 64, "cells": 4, "anchor": [5, 10]},
    "grid 5x5, 100x100, anchor of 3": {"size": 100, "cells": 5, "anchor": [3, 12, 21]},
    "grid 5x5, 299x299, anchor of 2": {"size": 299, "cells": 5, "anchor": [6, 18]},
}


def textured_image(size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.float32)


def grid_segments(shape, cells):
    """Labels 0..cells**2 - 1 of a cells x cells grid over an image of ``shape``."""
    rows = np.arange(shape[0]) * cells // shape[0]
    cols = np.arange(shape[1]) * cells // shape[1]
    return (rows[:, None] * cells + cols[None, :]).astype(np.int64)


class FixedSegmentation:
    """A segmentation function that returns precomputed labels (the same on both sides)."""

    def __init__(self, segments):
        self.segments = np.asarray(segments)

    def __call__(self, image):
        return self.segments.copy()


class IntactCells:
    """(N, 2) probabilities: class 1 iff every pixel of the required superpixels is unchanged."""

    def __init__(self, image, segments, required):
        self.image = image
        self.mask = np.isin(segments, required)

    def __call__(self, images):
        images = np.asarray(images)
        intact = np.all(images[:, self.mask] == self.image[self.mask], axis=(1, 2))
        return np.stack([1.0 - intact, intact.astype(float)], axis=1)


def known_answer(name):
    spec = KNOWN_ANSWERS[name]
    image = textured_image(spec["size"])
    segments = grid_segments(image.shape[:2], spec["cells"])
    return image, segments, IntactCells(image, segments, spec["anchor"]), spec["anchor"]


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


def _torch_port():
    """imgexplain/zoo/torch_port.py loaded as a file, so peers need no imgexplain install."""
    spec = importlib.util.spec_from_file_location("bench_torch_port", ROOT / "imgexplain" / "zoo" / "torch_port.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def efficientnet_softmax():
    """EfficientNet-Lite0 (the packages' ImageNet weights) followed by a softmax, in eval mode."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(_torch_port().load_efficientnet_lite0(), torch.nn.Softmax(dim=1)).eval()


def efficientnet_input(images):
    """(N, 224, 224, 3) images in 0..255 -> the model's (N, 3, 224, 224) float32 input."""
    import torch

    x = (np.asarray(images, dtype=np.float32) - 127.0) / 128.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class EfficientNetPredictor:
    """(N, 224, 224, 3) images in 0..255 -> (N, 1000) ImageNet probabilities."""

    def __init__(self):
        self.model = efficientnet_softmax()

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
