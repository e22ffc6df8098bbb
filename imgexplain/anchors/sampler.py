"""Perturbed images from superpixel masks, and predictions memoised by mask while the model is deterministic."""
from __future__ import annotations

import logging

import numpy as np

from imgexplain.predictor import LabelPredictor, rows_per_batch
from imgexplain.segmentation import superpixel_means

logger = logging.getLogger(__name__)

# Spot checks: each model call re-evaluates up to this many masks labelled by an earlier call.
MAX_CHECKS_PER_CALL = 4
# ... one per this many new images, counted over the calls.
IMAGES_PER_CHECK = 25


class PerturbationSampler:
    """Draws superpixel masks and labels the perturbed images they describe.

    A mask row holds True where a superpixel keeps its original pixels. A False superpixel takes its mean
    value or, with ``images_background``, the pixels of a background image drawn at random for that sample.

    While ``memoise`` holds, the predictor is called only for (mask, background) pairs it has not seen:
    predictions are memoised under bit-packed keys. That is valid only for a deterministic model, so with
    ``deterministic=None`` every model call also re-evaluates a few masks labelled by an earlier call (the
    first call: the instance itself); one different label turns the memo off for good, with a warning, and
    from then on every sample is a new model evaluation. ``deterministic=True`` trusts the model and makes no
    checks, ``deterministic=False`` never memoises. The images of one request go to the model in chunks of
    at most :data:`imgexplain.predictor.MAX_BATCH_BYTES`.

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
        The image to explain.
    segments : ndarray of int, shape (H, W)
        Superpixel labels 0..K-1.
    predictor : LabelPredictor
        The model, answering labels.
    images_background : ndarray or None, shape (B, H, W, C)
        Images whose pixels fill perturbed superpixels; None fills them with their mean value.
    p_sample : float
        Probability that a superpixel outside the anchor is perturbed.
    rng : numpy.random.Generator
        Source of every random draw.
    deterministic : bool or None
        Whether the model gives the same label for the same image: None checks, True trusts, False never
        memoises.
    """

    def __init__(self, image: np.ndarray, segments: np.ndarray, predictor: LabelPredictor,
                 images_background: np.ndarray | None, p_sample: float, rng: np.random.Generator,
                 deterministic: bool | None = None):
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
        # A chunk holds the images and the boolean choice of each of their values.
        self._images_per_chunk = rows_per_batch(self._flat_image.size * (self.image.itemsize + 1))
        self._memo: dict[bytes, int] = {}
        self.memoise = deterministic is not False
        self.checking = deterministic is None
        self.nondeterministic = deterministic is False
        self._to_check: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._checks_owed = 0.0
        self.n_requested = 0
        self.n_from_memo = 0
        self.n_checks = 0

    def remember_instance(self, label: int) -> None:
        """Record the instance's label: a mask that keeps every superpixel is the instance itself.

        Parameters
        ----------
        label : int
            The model's label of the unperturbed image.
        """
        all_kept = np.ones((len(self.fills), self.n_features), dtype=bool)
        backgrounds = np.arange(len(self.fills))
        if self.memoise:
            self._memo.update(dict.fromkeys(self._keys(all_kept, backgrounds), int(label)))
        if self.checking:
            first_check = np.resize(backgrounds, MAX_CHECKS_PER_CALL)
            self._to_check = (all_kept[first_check], first_check, np.full(len(first_check), int(label)))

    def draw(self, anchor: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Masks with the ``anchor`` superpixels kept and every other one perturbed with probability
        ``p_sample``.

        Parameters
        ----------
        anchor : ndarray of int
            Superpixels to keep.
        n_samples : int
            Number of masks.

        Returns
        -------
        masks : ndarray of bool, shape (n_samples, K)
            True where a superpixel keeps its pixels.
        backgrounds : ndarray of int, shape (n_samples,)
            Background image of each mask (all 0 without backgrounds).
        """
        masks = self.rng.random((n_samples, self.n_features)) >= self.p_sample
        masks[:, anchor] = True
        backgrounds = self.rng.integers(len(self.fills), size=n_samples)
        return masks, backgrounds

    def images(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """The perturbed images of ``masks``, built in one vectorised step (a new array).

        Parameters
        ----------
        masks : ndarray of bool, shape (N, K)
            True where a superpixel keeps its pixels.
        backgrounds : ndarray of int, shape (N,)
            Background image of each mask.

        Returns
        -------
        ndarray, shape (N, H, W, C)

        Notes
        -----
        The choice between original and fill is made on flattened (pixel, channel) values: a long,
        contiguous inner loop is several times faster than broadcasting a per-pixel mask over channels.
        """
        kept_values = masks[:, self._value_segments]
        if len(self._flat_fills) == 1:
            flat = np.where(kept_values, self._flat_image, self._flat_fills[0])
        else:
            flat = self._flat_fills[backgrounds]
            np.copyto(flat, self._flat_image, where=kept_values)
        return flat.reshape((len(masks),) + self.image.shape)

    def predict(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """Labels of the perturbed images; while memoising, only (mask, background) pairs never seen before
        reach the model.

        Parameters
        ----------
        masks : ndarray of bool, shape (N, K)
            True where a superpixel keeps its pixels.
        backgrounds : ndarray of int, shape (N,)
            Background image of each mask.

        Returns
        -------
        ndarray of int, shape (N,)

        Raises
        ------
        imgexplain.predictor.PredictorError
            When the model fails or answers wrongly.
        """
        self.n_requested += len(masks)
        if not self.memoise:
            return self._label(masks, backgrounds)
        keys = self._keys(masks, backgrounds)
        first_row_of_new_key: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self._memo:
                first_row_of_new_key.setdefault(key, row)
        rows = np.fromiter(first_row_of_new_key.values(), dtype=np.intp, count=len(first_row_of_new_key))
        new_labels = self._label(masks[rows], backgrounds[rows])
        if not self.memoise:  # the spot check of that call found the model non-deterministic
            labels = np.empty(len(masks), dtype=np.int64)
            labels[rows] = new_labels
            seen = np.ones(len(masks), dtype=bool)
            seen[rows] = False
            labels[seen] = self._label(masks[seen], backgrounds[seen])
            return labels
        self._memo.update(zip(first_row_of_new_key, new_labels.tolist()))
        self.n_from_memo += len(masks) - len(rows)
        return np.fromiter((self._memo[key] for key in keys), dtype=np.int64, count=len(keys))

    def _label(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """Model labels of the images of ``masks``, with this call's spot check of earlier labels."""
        check = self.checking and self._to_check is not None and len(masks) > 0
        if check:
            checked_masks, checked_backgrounds, earlier_labels = self._to_check
            masks = np.concatenate([masks, checked_masks])
            backgrounds = np.concatenate([backgrounds, checked_backgrounds])
        labels = np.empty(len(masks), dtype=np.int64)
        for start in range(0, len(masks), self._images_per_chunk):
            chunk = slice(start, start + self._images_per_chunk)
            labels[chunk] = self.predictor(self.images(masks[chunk], backgrounds[chunk]), fresh=True)
        if check:
            n_checked = len(earlier_labels)
            self.n_checks += n_checked
            labels, rechecked = labels[:-n_checked], labels[-n_checked:]
            if np.any(rechecked != earlier_labels):
                self._stop_memoising(int(np.sum(rechecked != earlier_labels)), n_checked)
                return labels
            self._to_check = None
        if self.checking and self._to_check is None and len(labels):
            self._to_check = self._pick_checks(masks[:len(labels)], backgrounds[:len(labels)], labels)
        return labels

    def _pick_checks(self, masks, backgrounds, labels):
        """Evenly spaced rows of this call, to be re-evaluated by the next one: one per IMAGES_PER_CHECK images
        labelled so far, counted over the calls (many small calls cost no more checks than one large one), at
        most MAX_CHECKS_PER_CALL; None while less than one is owed."""
        self._checks_owed += len(labels) / IMAGES_PER_CHECK
        n_checks = min(MAX_CHECKS_PER_CALL, int(self._checks_owed))
        if n_checks == 0:
            return None
        self._checks_owed -= n_checks
        rows = np.linspace(0, len(labels) - 1, n_checks).round().astype(np.intp)
        return masks[rows], backgrounds[rows], labels[rows]

    def _stop_memoising(self, n_changed: int, n_checked: int) -> None:
        logger.warning("The predictor is not deterministic: %d of %d images evaluated again got a different "
                       "label. Predictions are no longer memoised for this explanation (every sample is a new "
                       "model evaluation); pass deterministic=False to skip the check.", n_changed, n_checked)
        self.memoise = self.checking = False
        self.nondeterministic = True
        self._memo.clear()

    def _keys(self, masks: np.ndarray, backgrounds: np.ndarray) -> list[bytes]:
        packed = np.packbits(masks, axis=1)
        if len(self.fills) > 1:
            packed = np.concatenate([packed, backgrounds.astype("<u4")[:, None].view(np.uint8)], axis=1)
        return [row.tobytes() for row in packed]


def _cast(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        image = np.round(image)
    return image.astype(dtype)
