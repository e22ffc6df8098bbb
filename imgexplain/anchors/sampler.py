"""Perturbed images from superpixel masks, and predictions memoised by mask."""
from __future__ import annotations

import numpy as np

from imgexplain.predictor import LabelPredictor
from imgexplain.segmentation import superpixel_means


class PerturbationSampler:
    """Draws superpixel masks and labels the perturbed images they describe.

    A mask row holds True where a superpixel keeps its original pixels. A False superpixel takes its mean
    value or, with ``images_background``, the pixels of a background image drawn at random for that sample.
    The predictor is called only for (mask, background) pairs it has not seen: predictions are memoised
    under bit-packed keys, and the new images of one request go to the model in one call.
    """

    def __init__(self, image: np.ndarray, segments: np.ndarray, predictor: LabelPredictor,
                 images_background: np.ndarray | None, p_sample: float, rng: np.random.Generator):
        self.image = image.astype(predictor.dtype, copy=False)
        self.segments = segments
        self.n_features = int(segments.max()) + 1
        self.predictor = predictor
        self.p_sample = p_sample
        self.rng = rng
        if images_background is None:
            self.fills = _cast(superpixel_means(image, segments), predictor.dtype)[np.newaxis]
        else:
            self.fills = images_background.astype(predictor.dtype, copy=False)
        self._value_segments = np.repeat(segments.ravel(), self.image.shape[-1])
        self._flat_image = self.image.ravel()
        self._flat_fills = self.fills.reshape(len(self.fills), -1)
        self._memo: dict[bytes, int] = {}
        self.n_requested = 0
        self.n_from_memo = 0

    def remember_instance(self, label: int) -> None:
        """Record the instance's label: a mask that keeps every superpixel is the instance itself."""
        all_kept = np.ones((len(self.fills), self.n_features), dtype=bool)
        self._memo.update(dict.fromkeys(_keys(all_kept, np.arange(len(self.fills)) if len(self.fills) > 1 else None),
                                        int(label)))

    def draw(self, anchor: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` masks with the ``anchor`` superpixels kept and every other one perturbed with
        probability ``p_sample``, and the background image index of each (all 0 without backgrounds)."""
        masks = self.rng.random((n_samples, self.n_features)) >= self.p_sample
        masks[:, anchor] = True
        backgrounds = self.rng.integers(len(self.fills), size=n_samples)
        return masks, backgrounds

    def images(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """The perturbed images of ``masks``, built in one vectorised step.

        The choice between original and fill is made on flattened (pixel, channel) values: a long,
        contiguous inner loop is several times faster than broadcasting a per-pixel mask over channels.
        """
        kept_values = masks[:, self._value_segments]
        fills = self._flat_fills[0] if len(self._flat_fills) == 1 else self._flat_fills[backgrounds]
        return np.where(kept_values, self._flat_image, fills).reshape((len(masks),) + self.image.shape)

    def predict(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """Labels of the perturbed images; only (mask, background) pairs never seen before reach the model."""
        keys = _keys(masks, backgrounds if len(self.fills) > 1 else None)
        first_row_of_new_key: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self._memo:
                first_row_of_new_key.setdefault(key, row)
        if first_row_of_new_key:
            rows = np.fromiter(first_row_of_new_key.values(), dtype=np.intp, count=len(first_row_of_new_key))
            new_labels = self.predictor(self.images(masks[rows], backgrounds[rows]))
            self._memo.update(zip(first_row_of_new_key, new_labels.tolist()))
        self.n_requested += len(masks)
        self.n_from_memo += len(masks) - len(first_row_of_new_key)
        return np.fromiter((self._memo[key] for key in keys), dtype=np.int64, count=len(keys))


def _keys(masks: np.ndarray, backgrounds: np.ndarray | None) -> list[bytes]:
    packed = np.packbits(masks, axis=1)
    if backgrounds is not None:
        packed = np.concatenate([packed, backgrounds.astype("<u4")[:, None].view(np.uint8)], axis=1)
    return [row.tobytes() for row in packed]


def _cast(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        image = np.round(image)
    return image.astype(dtype)
