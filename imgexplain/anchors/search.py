"""Beam search for anchors over superpixel sets, with KL-LUCB arm selection and pooled samples.

The search follows the Anchors paper (Ribeiro et al., AAAI 2018) and the reference implementation's
control flow. Where it saves model calls, it keeps the statistics valid:

- a sample drawn for anchor B is a sample of anchor A whenever B is a subset of A and the sample kept every
  superpixel of A, so each anchor's precision is estimated on every such sample drawn so far (the reference
  reuses only its parent's);
- the samples requested for several arms at one step go to the model in a single call, and when the arms
  share most of their superpixels they are drawn once for the shared part, which is valid for every arm
  whose other superpixels it happened to keep (see :meth:`AnchorSearch._sample_for`);
- a mask (with its background image) is sent to the model once (see :class:`PerturbationSampler`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import kl_lower_bound, kl_lucb, kl_upper_bound
from imgexplain.anchors.sampler import PerturbationSampler

Anchor = tuple[int, ...]


@dataclass
class SearchSettings:
    """The arguments of :meth:`AnchorImage.explain` that steer the search (see there)."""

    threshold: float
    delta: float
    tau: float
    batch_size: int
    coverage_samples: int
    beam_size: int
    stop_on_first: bool
    max_anchor_size: int | None
    min_samples_start: int
    n_covered_ex: int
    initial_capacity: int
    capacity_margin: int
    epsilon_stop: float
    log: Callable[[str], None] | None
    log_every: int


class SampleStore:
    """Every sample drawn: its mask, the anchor it was drawn for, and whether the label held."""

    def __init__(self, n_features: int, capacity: int, margin: int):
        self.masks = np.zeros((capacity, n_features), dtype=bool)
        self.drawn_for = np.zeros((capacity, n_features), dtype=bool)
        self.held = np.zeros(capacity, dtype=bool)
        self.backgrounds = np.zeros(capacity, dtype=np.intp)
        self.size = 0
        self.growth = capacity
        self.margin = margin

    def add(self, masks: np.ndarray, anchors: np.ndarray, held: np.ndarray, backgrounds: np.ndarray) -> slice:
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
        """(positives, n_samples) of each anchor over the stored samples valid for it (or over ``rows``)."""
        if rows is None:
            rows = slice(0, self.size)
        members = _anchor_matrix(anchors, self.masks.shape[1])
        valid = self.valid_for(members, rows)
        return valid[self.held[rows]].sum(axis=0).astype(float), valid.sum(axis=0).astype(float)

    def valid_for(self, members: np.ndarray, rows: slice) -> np.ndarray:
        """(n_rows, n_anchors): the sample kept all of the anchor's superpixels and was drawn for a subset."""
        masks = self.masks[rows].astype(np.float32)
        drawn = self.drawn_for[rows].astype(np.float32)
        kept_all = masks @ members.T.astype(np.float32) == members.sum(axis=1)
        drawn_for_subset = drawn @ (~members).T.astype(np.float32) == 0
        return kept_all & drawn_for_subset


@dataclass
class SearchResult:
    """What the search found, in the terms of the reference's ``raw`` dictionary."""

    feature: list[int]
    mean: list[float]
    precision: list[float]
    coverage: list[float]
    all_precision: float
    success: bool
    # Per step: masks and background indices of covered samples where the label held, then where it changed.
    example_masks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class AnchorSearch:
    """Beam search for the anchor of one image; see the module docstring."""

    def __init__(self, sampler: PerturbationSampler, instance_label: int, settings: SearchSettings):
        self.sampler = sampler
        self.label = instance_label
        self.settings = settings
        self.n_features = sampler.n_features
        self.store = SampleStore(self.n_features, settings.initial_capacity, settings.capacity_margin)
        self.order: dict[Anchor, list[int]] = {(): []}
        coverage_masks, _ = sampler.draw(np.zeros(0, dtype=np.intp), settings.coverage_samples)
        self.coverage_masks = coverage_masks.astype(np.float32)

    def coverage(self, anchors: list[Anchor]) -> np.ndarray:
        """Fraction of the coverage samples that keep every superpixel of each anchor."""
        members = _anchor_matrix(anchors, self.n_features)
        return (self.coverage_masks @ members.T.astype(np.float32) == members.sum(axis=1)).mean(axis=0)

    def sample(self, anchors: list[Anchor], n_each: int) -> slice:
        """Draw ``n_each`` samples for every anchor, label them in one model call, store them."""
        draws = [self.sampler.draw(np.array(anchor, dtype=np.intp), n_each) for anchor in anchors]
        masks = np.concatenate([masks for masks, _ in draws])
        backgrounds = np.concatenate([backgrounds for _, backgrounds in draws])
        drawn_for = np.repeat(_anchor_matrix(anchors, self.n_features), n_each, axis=0)
        held = self.sampler.predict(masks, backgrounds) == self.label
        return self.store.add(masks, drawn_for, held, backgrounds)

    def run(self) -> SearchResult:
        s = self.settings
        self.sample([()], s.min_samples_start)
        positives, n_samples = self.store.counts([()])
        mean = positives / n_samples
        level = np.log(1.0 / s.delta)
        lower = kl_lower_bound(mean, level / n_samples)
        while mean[0] > s.threshold and lower[0] < s.threshold - s.tau:
            self.sample([()], s.batch_size)
            positives, n_samples = self.store.counts([()])
            mean = positives / n_samples
            lower = kl_lower_bound(mean, level / n_samples)
        if lower[0] > s.threshold:
            return self._result((), success=True, all_precision=float(mean[0]))

        max_size = self.n_features if s.max_anchor_size is None else min(s.max_anchor_size, self.n_features)
        best_of_size: dict[int, list[Anchor]] = {0: [()]}
        best_anchor: Anchor = ()
        best_coverage = -1.0
        size = 1
        while size <= max_size:
            candidates = self._propose(best_of_size[size - 1])
            coverages = self.coverage(candidates)
            keep = coverages > best_coverage
            candidates = [anchor for anchor, kept in zip(candidates, keep) if kept]
            coverages = coverages[keep]
            if not candidates:
                break
            positives, n_samples = self._counts_with_one_sample_each(candidates)
            chosen = kl_lucb(positives, n_samples, self._arm_sampler(candidates),
                             min(s.beam_size, len(candidates)), s.tau, s.delta, s.log, s.log_every)
            best_of_size[size] = [candidates[index] for index in chosen]
            means, lowers = self._settle_precision(best_of_size[size])
            valid = (means >= s.threshold) & (lowers > s.threshold - s.epsilon_stop)
            better = np.flatnonzero(valid & (coverages[chosen] > best_coverage))
            if s.log is not None:
                for anchor, mean_, lower_, coverage_ in zip(best_of_size[size], means, lowers, coverages[chosen]):
                    s.log(f"size {size}: {anchor} precision {mean_:.3f} lb {lower_:.3f} coverage {coverage_:.3f}")
            if better.size:
                winner = better[np.argmax(coverages[chosen][better])]
                best_coverage = float(coverages[chosen][winner])
                best_anchor = best_of_size[size][winner]
                if best_coverage == 1.0 or s.stop_on_first:
                    break
            size += 1

        if best_anchor:
            return self._result(best_anchor, success=True)
        tried = [anchor for k in range(1, size) for anchor in best_of_size.get(k, [])]
        if not tried:
            return self._result((), success=False, all_precision=float(mean[0]))
        positives, n_samples = self._counts_with_one_sample_each(tried)
        chosen = kl_lucb(positives, n_samples, self._arm_sampler(tried), 1, s.tau, s.delta, s.log, s.log_every)
        return self._result(tried[chosen[0]], success=False)

    def _propose(self, previous_best: list[Anchor]) -> list[Anchor]:
        """Every anchor made by adding one superpixel to one of ``previous_best``, in a fixed order."""
        proposals: list[Anchor] = []
        for feature in range(self.n_features):
            for parent in previous_best:
                if feature in parent:
                    continue
                child = tuple(sorted(parent + (feature,)))
                if child not in self.order:
                    self.order[child] = self.order[parent] + [feature]
                if child not in proposals:
                    proposals.append(child)
        return proposals

    def _counts_with_one_sample_each(self, anchors: list[Anchor]) -> tuple[np.ndarray, np.ndarray]:
        positives, n_samples = self.store.counts(anchors)
        unsampled = [anchor for anchor, n in zip(anchors, n_samples) if n == 0]
        if unsampled:
            self.sample(unsampled, 1)
            positives, n_samples = self.store.counts(anchors)
        return positives, n_samples

    def _arm_sampler(self, anchors: list[Anchor]):
        positives, n_samples = self.store.counts(anchors)

        def sample_arms(arms):
            rows = self._sample_for([anchors[arm] for arm in arms])
            new_positives, new_n = self.store.counts(anchors, rows)
            positives[:] += new_positives
            n_samples[:] += new_n
            return positives.copy(), n_samples.copy()

        return sample_arms

    def _sample_for(self, arms: list[Anchor]) -> slice:
        """Give each arm about ``batch_size`` new samples, as cheaply as the pooling allows.

        Samples drawn for the arms' common part C are valid for an arm A when they keep A's other
        superpixels, which happens with probability (1 - p_sample) ** |A - C|. When that makes drawing for C
        no dearer than drawing for each arm apart, draw for C: every other candidate that contains C gets
        samples too.
        """
        batch_size = self.settings.batch_size
        common = tuple(sorted(set(arms[0]).intersection(*arms[1:])))
        extra = max(len(arm) - len(common) for arm in arms)
        kept_probability = (1.0 - self.sampler.p_sample) ** extra
        if kept_probability * len(arms) >= 1.0:
            return self.sample([common], int(np.ceil(batch_size / kept_probability)))
        return self.sample(arms, batch_size)

    def _settle_precision(self, anchors: list[Anchor]) -> tuple[np.ndarray, np.ndarray]:
        """Sample the chosen anchors until each is clearly above or below the threshold."""
        s = self.settings
        level = np.log(1.0 / (s.delta / (1 + (s.beam_size - 1) * self.n_features)))
        positives, n_samples = self.store.counts(anchors)
        while True:
            means = positives / n_samples
            lowers = kl_lower_bound(means, level / n_samples)
            uppers = kl_upper_bound(means, level / n_samples)
            undecided = (((means >= s.threshold) & (lowers < s.threshold - s.epsilon_stop))
                         | ((means < s.threshold) & (uppers >= s.threshold + s.epsilon_stop)))
            if not undecided.any():
                return means, lowers
            rows = self.sample([anchor for anchor, todo in zip(anchors, undecided) if todo], s.batch_size)
            new_positives, new_n = self.store.counts(anchors, rows)
            positives += new_positives
            n_samples += new_n

    def _result(self, anchor: Anchor, success: bool, all_precision: float = 0.0) -> SearchResult:
        result = SearchResult(feature=[], mean=[], precision=[], coverage=[],
                              all_precision=all_precision, success=success)
        prefix: Anchor = ()
        for feature in self.order[anchor]:
            prefix = tuple(sorted(prefix + (feature,)))
            positives, n_samples = self.store.counts([prefix])
            result.feature.append(feature)
            result.mean.append(float(positives[0] / n_samples[0]))
            result.precision.append(float(positives[0] / n_samples[0]))
            result.coverage.append(float(self.coverage([prefix])[0]))
            result.example_masks.append(self._covered_examples(prefix))
        return result

    def _covered_examples(self, anchor: Anchor):
        """The latest samples valid for ``anchor`` where the label held, and where it changed."""
        rows = slice(0, self.store.size)
        valid = self.store.valid_for(_anchor_matrix([anchor], self.n_features), rows)[:, 0]
        held = self.store.held[rows]
        n = self.settings.n_covered_ex
        held_rows = np.flatnonzero(valid & held)[::-1][:n]
        changed_rows = np.flatnonzero(valid & ~held)[::-1][:n]
        return (self.store.masks[held_rows], self.store.backgrounds[held_rows],
                self.store.masks[changed_rows], self.store.backgrounds[changed_rows])


def _anchor_matrix(anchors: list[Anchor], n_features: int) -> np.ndarray:
    members = np.zeros((len(anchors), n_features), dtype=bool)
    for row, anchor in enumerate(anchors):
        members[row, list(anchor)] = True
    return members


def _grow(array: np.ndarray, extra: int) -> np.ndarray:
    return np.concatenate([array, np.zeros((extra,) + array.shape[1:], dtype=array.dtype)])
