"""The extra model passes of the perturbation methods: Score-CAM's masked images and Ablation-CAM's
ablated channels, in chunks of at most ``batch_size`` images and ``max_chunk_bytes`` bytes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from imgexplain.cam.maps import resize_maps
from imgexplain.model_outputs import scores_of

__all__ = ["Passes"]


@dataclass
class Passes:
    """Runs the masked and ablated passes of :class:`imgexplain.CAM` through its backend.

    Attributes
    ----------
    backend : object
        The model's CAM backend.
    forward : callable or None
        Runs the masked images instead of the backend (``CAM(forward=...)``).
    batch_size, max_chunk_bytes : int
        Bounds on the images of one model call.
    verbose : bool
        Show a progress bar.
    """

    backend: Any
    forward: Callable | None
    batch_size: int
    max_chunk_bytes: int
    verbose: bool = False

    def _chunk(self, image_bytes):
        return max(1, min(self.batch_size, self.max_chunk_bytes // max(image_bytes, 1)))

    def _progress(self, total, description):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=description, disable=not self.verbose, leave=False)

    def _score_rows(self, outputs, expected, chosen, callable_target):
        if not isinstance(outputs, np.ndarray) or outputs.ndim < 2 or len(outputs) != expected:
            from imgexplain.predictor import PredictorError

            got = f"shape {outputs.shape}" if isinstance(outputs, np.ndarray) else type(outputs).__name__
            raise PredictorError(f"forward must return a numpy array with one row per image ({expected}); got {got}")
        callables = None if callable_target is None else [callable_target] * expected
        return scores_of(outputs, np.full(expected, chosen), callables)

    def masked_scores(self, images, activations, chosen, callables):
        """The target score of each image multiplied by each upsampled, [0, 1]-scaled channel."""
        pictures = np.asarray(self.backend.to_numpy(images), dtype=np.float32)
        height, width = self.backend.spatial_size(images)
        n_images, _, _, n_channels = activations.shape
        channels_first = self.backend.channels_first
        chunk = self._chunk(pictures[0].nbytes + height * width * 4)
        forward = self.forward or self.backend.predict
        scores = np.empty((n_images, n_channels), dtype=np.float32)
        with self._progress(n_images * n_channels, "scorecam") as progress:
            for n in range(n_images):
                for start in range(0, n_channels, chunk):
                    stop = min(start + chunk, n_channels)
                    masks = resize_maps(np.moveaxis(activations[n, :, :, start:stop], -1, 0),
                                                (height, width))
                    low = masks.min(axis=(1, 2), keepdims=True)
                    span = masks.max(axis=(1, 2), keepdims=True) - low
                    masks = np.divide(masks - low, span, out=np.zeros_like(masks), where=span > 0)
                    batch = pictures[n] * (masks[:, None] if channels_first else masks[..., None])
                    outputs = forward(batch)
                    scores[n, start:stop] = self._score_rows(
                        outputs, stop - start, chosen[n], None if callables is None else callables[n])
                    progress.update(stop - start)
        return scores

    def ablated_scores(self, images, index, n_channels, chosen, callables):
        """The target score of each image with each channel of layer ``index`` set to zero."""
        n_images = images.shape[0]
        chunk = self._chunk(int(np.prod(images.shape[1:])) * 4)
        scores = np.empty((n_images, n_channels), dtype=np.float32)
        with self._progress(n_images * n_channels, "ablationcam") as progress:
            for n in range(n_images):
                for start in range(0, n_channels, chunk):
                    stop = min(start + chunk, n_channels)
                    outputs = self.backend.ablated_outputs(images[n:n + 1], index, np.arange(start, stop))
                    scores[n, start:stop] = self._score_rows(
                        outputs, stop - start, chosen[n], None if callables is None else callables[n])
                    progress.update(stop - start)
        return scores
