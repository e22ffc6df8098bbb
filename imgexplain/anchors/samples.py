"""The sample store of the anchor search: every perturbed sample drawn, and which anchors it counts for.

Two counts are exact here: pooling (:meth:`SampleStore.valid_for`), which counts a sample for every anchor
whose own distribution it was drawn from, and pairing (:meth:`SampleStore.pair_counts`), which compares two
candidates on the samples that tell them apart.
"""
from __future__ import annotations

import numpy as np

Anchor = tuple[int, ...]


class SampleStore:
    """Every sample drawn: its mask, the anchor it was drawn for, and whether the label held.

    Parameters
    ----------
    n_features : int
        Number of superpixels.
    capacity : int
        Rows allocated at first; the store grows by as many rows when fewer than ``margin`` remain free.
    margin : int
        Free rows kept available.
    """

    def __init__(self, n_features: int, capacity: int, margin: int):
        self.masks = np.zeros((capacity, n_features), dtype=bool)
        self.drawn_for = np.zeros((capacity, n_features), dtype=bool)
        self.held = np.zeros(capacity, dtype=bool)
        self.backgrounds = np.zeros(capacity, dtype=np.intp)
        self.size = 0
        self.growth = capacity
        self.margin = margin

    def add(self, masks: np.ndarray, anchors: np.ndarray, held: np.ndarray, backgrounds: np.ndarray) -> slice:
        """Append samples.

        Parameters
        ----------
        masks : ndarray of bool, shape (N, n_features)
            True where a superpixel kept its pixels.
        anchors : ndarray of bool, shape (N, n_features)
            True on the superpixels of the anchor each sample was drawn for.
        held : ndarray of bool, shape (N,)
            Whether the instance's label held.
        backgrounds : ndarray of int, shape (N,)
            Background image of each sample.

        Returns
        -------
        slice
            The rows of the new samples.
        """
        needed = self.size + len(masks)
        if needed > len(self.held) - self.margin:
            extra = max(self.growth, needed + self.margin - len(self.held))
            self.masks = _grow(self.masks, extra)
            self.drawn_for = _grow(self.drawn_for, extra)
            self.held = _grow(self.held, extra)
            self.backgrounds = _grow(self.backgrounds, extra)
        rows = slice(self.size, needed)
        self.masks[rows], self.drawn_for[rows], self.held[rows], self.backgrounds[rows] = (
            masks, anchors, held, backgrounds)
        self.size = needed
        return rows

    def counts(self, anchors: list[Anchor], rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Counts of each anchor over the stored samples valid for it.

        Parameters
        ----------
        anchors : list of tuple of int
            The anchors.
        rows : slice or None
            Rows to count; None counts every stored sample.

        Returns
        -------
        positives, n_samples : ndarray of float
            Valid samples where the label held, and valid samples.
        """
        rows = slice(0, self.size) if rows is None else rows
        valid = self.valid_for(anchor_matrix(anchors, self.masks.shape[1]), rows)
        return valid[self.held[rows]].sum(axis=0).astype(float), valid.sum(axis=0).astype(float)

    def valid_for(self, members: np.ndarray, rows: slice) -> np.ndarray:
        """Whether each sample is a draw from each anchor's distribution.

        Parameters
        ----------
        members : ndarray of bool, shape (n_anchors, n_features)
            The anchors' superpixels.
        rows : slice
            Rows of the store.

        Returns
        -------
        ndarray of bool, shape (n_rows, n_anchors)

        Notes
        -----

        A sample drawn for C kept C and perturbed every other superpixel independently with probability
        p_sample. When C is a subset of anchor A and the sample happened to keep all of A, the superpixels
        outside A are still independent and perturbed with probability p_sample, so the sample is a draw
        from A's distribution. A sample drawn for a set with a superpixel outside A kept that superpixel by
        force, not by chance: it is not a draw for A and never counts.
        """
        masks = self.masks[rows].astype(np.float32)
        drawn = self.drawn_for[rows].astype(np.float32)
        kept_all = masks @ members.T.astype(np.float32) == members.sum(axis=1)
        drawn_for_subset = drawn @ (~members).T.astype(np.float32) == 0
        return kept_all & drawn_for_subset

    def pair_counts(self, anchors: list[Anchor], first: np.ndarray, second: np.ndarray,
                    p_sample: float) -> tuple[np.ndarray, ...]:
        """The counts of the paired bound for each pair of anchors i = first[k], j = second[k].

        Parameters
        ----------
        anchors : list of tuple of int
            The anchors.
        first, second : ndarray of int
            Indices into ``anchors`` of each pair.
        p_sample : float
            Probability that a superpixel outside the anchor is perturbed.

        Returns
        -------
        tuple of ndarray of float
            (positives_a, n_a, positives_b, n_b, q), one entry per pair.

        Notes
        -----

        Let S = i - j and T = j - i with |S| = |T|. Under i's distribution, all of T is kept with probability
        r = (1 - p_sample)^|T|, and then the sample is distributed as one of j's that kept all of S (both
        keep i | j, the rest independent). So mu_i = r c + (1 - r) a and mu_j = r c + (1 - r) b, with c the
        precision of i | j, a that of i on its samples where not all of T was kept and b that of j where not
        all of S was kept: mu_j - mu_i = q (b - a) with q = 1 - r, exactly. The samples counted for a are i's
        valid samples that did not keep all of T, draws from a's distribution (likewise for b). Pairs of
        different sizes get n_a = n_b = 0 (no paired bound).
        """
        rows = slice(0, self.size)
        n_features = self.masks.shape[1]
        members = anchor_matrix(anchors, n_features)
        only_first = members[first] & ~members[second]
        only_second = members[second] & ~members[first]
        size_s, size_t = only_first.sum(axis=1), only_second.sum(axis=1)
        masks = self.masks[rows].astype(np.float32)
        kept_all_t = masks @ only_second.T.astype(np.float32) == size_t
        kept_all_s = masks @ only_first.T.astype(np.float32) == size_s
        valid = self.valid_for(members, rows)
        in_a = valid[:, first] & ~kept_all_t
        in_b = valid[:, second] & ~kept_all_s
        same_size = (size_s == size_t).astype(float)
        held = self.held[rows]
        return (in_a[held].sum(axis=0) * same_size, in_a.sum(axis=0) * same_size,
                in_b[held].sum(axis=0) * same_size, in_b.sum(axis=0) * same_size,
                1.0 - (1.0 - p_sample) ** size_t)


def anchor_matrix(anchors: list[Anchor], n_features: int) -> np.ndarray:
    """(n_anchors, n_features) booleans: which superpixels each anchor holds."""
    members = np.zeros((len(anchors), n_features), dtype=bool)
    for row, anchor in enumerate(anchors):
        members[row, list(anchor)] = True
    return members


def _grow(array: np.ndarray, extra: int) -> np.ndarray:
    return np.concatenate([array, np.zeros((extra,) + array.shape[1:], dtype=array.dtype)])
