"""Covered examples of an anchor, kept as superpixel masks: each picture is built when it is read.

alibi keeps ``raw['examples']`` as full-size float pictures (ten per kind and anchor step: gigabytes for a
3000 x 3000 image). :class:`CoveredExamples` holds one row of booleans per example (which superpixels kept
their pixels) and the background of each, and builds a picture, scaled to 0..255 as alibi's are, only when
it is indexed; ``to_json`` writes the masks.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgexplain.anchors.explanation import scale_image
from imgexplain.segmentation import superpixel_means

EXAMPLES_TAG = "__covered_examples__"


class ExampleSource:
    """What the pictures of covered examples are made of: the instance, its superpixels and the fills.

    Parameters
    ----------
    image : (H, W, C) ndarray
        The instance (not copied).
    segments : (H, W) int ndarray
        Superpixel labels 0..K-1.
    backgrounds : (B, H, W, C) ndarray or None
        Images whose pixels fill perturbed superpixels (not copied); None: each superpixel's mean value.
    shape : tuple of int
        The instance's shape as the user gave it ((H, W) or (H, W, C)).
    dtype : numpy dtype
        The dtype the predictor received (fills are cast to it, as the samples were).
    """

    def __init__(self, image, segments, backgrounds, shape, dtype):
        self.image, self.segments, self.backgrounds = image, segments, backgrounds
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._means = None

    def pictures(self, masks: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
        """The perturbed images of ``masks`` (True: the superpixel keeps its pixels), in the user's layout."""
        image = self.image.astype(self.dtype, copy=False)
        if self.backgrounds is None:
            if self._means is None:
                means = superpixel_means(self.image, self.segments)
                self._means = np.round(means) if np.issubdtype(self.dtype, np.integer) else means
            fills = np.broadcast_to(self._means.astype(self.dtype), (len(masks),) + image.shape)
        else:
            fills = self.backgrounds[backgrounds].astype(self.dtype, copy=False)
        kept = masks[:, self.segments][..., np.newaxis]
        return np.where(kept, image, fills).reshape((len(masks),) + self.shape)


class CoveredExamples(Sequence):
    """Covered examples as masks; ``examples[i]`` is the i-th picture (float64, scaled to 0..255).

    Parameters
    ----------
    masks : (n, K) bool ndarray
        Per example, True where a superpixel keeps its pixels.
    backgrounds : (n,) int ndarray
        Per example, the background image that filled the rest (0 without background images).
    source : ExampleSource or None
        What the pictures are made of; None for examples read back from JSON before
        :meth:`attach` (their masks are there, their pictures are not).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.anchors.examples import CoveredExamples, ExampleSource
    >>> image = np.array([[[0.0], [1.0]], [[2.0], [3.0]]])
    >>> segments = np.array([[0, 0], [1, 1]])
    >>> source = ExampleSource(image, segments, None, image.shape, np.float32)
    >>> examples = CoveredExamples(np.array([[True, False]]), np.array([0]), source)
    >>> len(examples), examples.masks.nbytes
    (1, 2)
    >>> examples[0][:, :, 0]  # superpixel 1 took its mean (2.5), then scaled to 0..255
    array([[  0., 102.],
           [255., 255.]])
    """

    def __init__(self, masks, backgrounds, source: ExampleSource | None = None):
        self.masks = np.asarray(masks, dtype=bool)
        self.backgrounds = np.asarray(backgrounds, dtype=np.int64)
        self.source = source

    def attach(self, source: ExampleSource) -> None:
        """Build pictures from ``source`` from now on (after :meth:`from_json_value`)."""
        self.source = source

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if self.source is None:
            raise ValueError("these covered examples were read back without the images they are made of "
                             "(the background images are not saved in JSON); their masks are in .masks")
        row = range(len(self))[index]
        return scale_image(self.source.pictures(self.masks[row:row + 1], self.backgrounds[row:row + 1])[0])

    def __array__(self, dtype=None, copy=None):
        if not len(self):
            return np.zeros((0,), dtype=dtype or np.float64)
        return np.stack(list(self)).astype(dtype or np.float64, copy=False)

    def __eq__(self, other) -> bool:
        return (isinstance(other, CoveredExamples) and np.array_equal(self.masks, other.masks)
                and np.array_equal(self.backgrounds, other.backgrounds))

    def __repr__(self) -> str:
        return f"CoveredExamples({len(self)} examples of {self.masks.shape[1]} superpixels, as masks)"

    def to_json_value(self) -> dict:
        """The masks and backgrounds as JSON (the pictures are rebuilt from them)."""
        return {EXAMPLES_TAG: {"masks": np.packbits(self.masks, axis=1).tolist(), "n_features": self.masks.shape[1],
                               "backgrounds": self.backgrounds.tolist()}}

    @classmethod
    def from_json_value(cls, value: dict) -> "CoveredExamples":
        """The examples :meth:`to_json_value` wrote, without a source until :meth:`attach`."""
        content = value[EXAMPLES_TAG]
        n_bytes = (content["n_features"] + 7) // 8
        packed = np.asarray(content["masks"], dtype=np.uint8).reshape(len(content["backgrounds"]), n_bytes)
        masks = np.unpackbits(packed, axis=1, count=content["n_features"]).astype(bool)
        return cls(masks, content["backgrounds"])


def covered_examples(example_masks: list, source: ExampleSource) -> list[dict]:
    """alibi's ``raw['examples']``: per anchor step, the covered samples where the prediction held
    (``covered_true``) and changed (``covered_false``), as :class:`CoveredExamples` of ``source``."""
    return [{"covered_true": CoveredExamples(held_masks, held_bg, source),
             "covered_false": CoveredExamples(changed_masks, changed_bg, source),
             "uncovered_true": np.array([]), "uncovered_false": np.array([])}
            for held_masks, held_bg, changed_masks, changed_bg in example_masks]
