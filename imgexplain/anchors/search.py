"""Beam search for anchors over superpixel sets, with KL-LUCB arm selection on pooled and paired samples.

The search follows the Anchors paper (Ribeiro et al., AAAI 2018) and the reference implementation's control
flow: grow the best anchors one superpixel at a time, pick the best candidates of each size with KL-LUCB,
check their precision, keep the one with the largest coverage. It saves model evaluations only by steps
that are exact, each explained where it is made:

- pooling (:meth:`SampleStore.valid_for`): a sample counts for an anchor only when it was drawn for a
  subset of the anchor and kept every superpixel of it; such a sample is a draw from the anchor's own
  distribution;
- pairing (:meth:`SampleStore.pair_counts`): two candidates of equal size are compared on the samples that
  tell them apart, mu_j - mu_i = q (b - a);
- the source of a draw (:meth:`AnchorSearch._draw_for_pair`): the critical arms may be fed by samples drawn
  for a subset of them, which also feed every other open candidate containing that subset;
- the memo (:class:`~imgexplain.anchors.sampler.PerturbationSampler`): a deterministic model gives a mask
  the same label every time, so a repeated mask is an independent draw whose label is already known.

Every confidence bound holds at all sample counts at once (:func:`~imgexplain.anchors.bandit.uniform_level`),
so rounds are sized by what is still missing and the precision check may look after every round.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import MIN_ROUND, kl_lower_bound, kl_lucb, kl_upper_bound, uniform_level
from imgexplain.anchors.sampler import PerturbationSampler

Anchor = tuple[int, ...]
ROUNDS = ("adaptive", "fixed")
EMPTY_ANCHOR_GROWTH = 4


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
    rounds: str
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
        rows = slice(0, self.size) if rows is None else rows
        valid = self.valid_for(_anchor_matrix(anchors, self.masks.shape[1]), rows)
        return valid[self.held[rows]].sum(axis=0).astype(float), valid.sum(axis=0).astype(float)

    def valid_for(self, members: np.ndarray, rows: slice) -> np.ndarray:
        """(n_rows, n_anchors): whether each sample is a draw from each anchor's distribution.

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
        """For each pair of anchors i = first[k], j = second[k]: (positives_a, n_a, positives_b, n_b, q).

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
        members = _anchor_matrix(anchors, n_features)
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
        self.max_size = self.n_features if settings.max_anchor_size is None else min(settings.max_anchor_size,
                                                                                    self.n_features)
        # The precision checks share delta over the sizes 0..max_size and, at each size, over every candidate
        # the chosen anchors were picked from: the check stays valid for whichever anchor the search keeps.
        self.check_delta = settings.delta / (self.max_size + 1)

    def coverage(self, anchors: list[Anchor]) -> np.ndarray:
        """Fraction of the coverage samples that keep every superpixel of each anchor."""
        members = _anchor_matrix(anchors, self.n_features)
        return (self.coverage_masks @ members.T.astype(np.float32) == members.sum(axis=1)).mean(axis=0)

    def sample(self, requests: list[tuple[Anchor, int]]) -> slice:
        """Draw ``n`` samples for each (anchor, n) requested, label them all in one model call, store them."""
        draws = [self.sampler.draw(np.array(anchor, dtype=np.intp), n) for anchor, n in requests]
        masks = np.concatenate([masks for masks, _ in draws])
        backgrounds = np.concatenate([backgrounds for _, backgrounds in draws])
        drawn_for = np.repeat(_anchor_matrix([anchor for anchor, _ in requests], self.n_features),
                              [n for _, n in requests], axis=0)
        held = self.sampler.predict(masks, backgrounds) == self.label
        return self.store.add(masks, drawn_for, held, backgrounds)

    def run(self) -> SearchResult:
        s = self.settings
        self.sample([((), s.min_samples_start)])
        empty_mean, empty_passes = self._check_empty_anchor()
        if empty_passes:
            return self._result((), success=True, all_precision=empty_mean)

        best_of_size: dict[int, list[Anchor]] = {0: [()]}
        best_anchor: Anchor = ()
        best_coverage = -1.0
        size = 1
        while size <= self.max_size:
            candidates = self._propose(best_of_size[size - 1])
            coverages = self.coverage(candidates)
            keep = coverages > best_coverage
            candidates = [anchor for anchor, kept in zip(candidates, keep) if kept]
            coverages = coverages[keep]
            if not candidates:
                break
            chosen = self._select(candidates, min(s.beam_size, len(candidates)))
            best_of_size[size] = [candidates[index] for index in chosen]
            means, lowers, passes = self._check_precision(best_of_size[size], len(candidates))
            better = np.flatnonzero(passes & (coverages[chosen] > best_coverage))
            if s.log is not None:
                for anchor, mean, lower, coverage in zip(best_of_size[size], means, lowers, coverages[chosen]):
                    s.log(f"size {size}: {anchor} precision {mean:.3f} lb {lower:.3f} coverage {coverage:.3f}")
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
            return self._result((), success=False, all_precision=empty_mean)
        return self._result(tried[self._select(tried, 1)[0]], success=False)

    def _check_empty_anchor(self) -> tuple[float, bool]:
        """The reference's test of the empty anchor, with a bound valid at every look: it passes when its lower
        bound exceeds the threshold itself. It is sampled while its mean is above the threshold and, if the mean
        held, EMPTY_ANCHOR_GROWTH times its samples would clear the threshold (the reference samples until the
        lower bound reaches threshold - tau, which a bound valid at every look reaches too early to decide)."""
        s = self.settings
        while True:
            positives, n_samples = self.store.counts([()])
            mean = positives / n_samples
            lower = kl_lower_bound(mean, self._check_level(n_samples, 1))[0]
            reachable = kl_lower_bound(mean, self._check_level(EMPTY_ANCHOR_GROWTH * n_samples, 1))[0] > s.threshold
            if lower > s.threshold or mean[0] <= s.threshold or not reachable:
                return float(mean[0]), bool(lower > s.threshold)
            self.sample([((), self._check_round(n_samples[0]))])

    def _check_level(self, n_samples: np.ndarray, n_candidates: int) -> np.ndarray:
        """Two-sided level of the precision check, valid at every look (``check_delta``: see ``__init__``)."""
        return uniform_level(n_samples, self.check_delta / n_candidates / 2.0) / n_samples

    def _check_round(self, n_samples: float) -> int:
        if self.settings.rounds == "fixed":
            return self.settings.batch_size
        return int(np.clip(0.5 * n_samples, MIN_ROUND, self.settings.batch_size))

    def _check_precision(self, anchors: list[Anchor], n_candidates: int):
        """Sample the chosen anchors until each is clearly above or below the threshold; return their means,
        lower bounds and whether each passes (mean >= threshold, lower bound > threshold - epsilon_stop)."""
        s = self.settings
        while True:
            positives, n_samples = self.store.counts(anchors)
            means = positives / n_samples
            level = self._check_level(n_samples, n_candidates)
            lowers, uppers = kl_lower_bound(means, level), kl_upper_bound(means, level)
            above = means >= s.threshold
            undecided = ((above & (lowers < s.threshold - s.epsilon_stop))
                         | (~above & (uppers >= s.threshold + s.epsilon_stop)))
            if not undecided.any():
                return means, lowers, above & (lowers > s.threshold - s.epsilon_stop)
            n_each = self._check_round(n_samples[undecided].max())
            self.sample([(anchor, n_each) for anchor, todo in zip(anchors, undecided) if todo])

    def _select(self, anchors: list[Anchor], top_n: int) -> np.ndarray:
        """KL-LUCB over ``anchors`` with pooled counts, paired bounds and shared draws."""
        s = self.settings
        self._give_one_sample_each(anchors)

        def counts():
            return self.store.counts(anchors)

        def pair_counts(first, second):
            return self.store.pair_counts(anchors, first, second, self.sampler.p_sample)

        def draw(i, j, per_arm, open_arms):
            self._draw_for_pair(anchors[i], anchors[j], per_arm, [anchors[k] for k in open_arms])

        return kl_lucb(counts, draw, top_n, s.tau, s.delta, pair_counts=pair_counts, batch_size=s.batch_size,
                       adaptive_rounds=s.rounds == "adaptive", log=s.log, log_every=s.log_every)

    def _give_one_sample_each(self, anchors: list[Anchor]) -> None:
        _, n_samples = self.store.counts(anchors)
        unsampled = [(anchor, 1) for anchor, n in zip(anchors, n_samples) if n == 0]
        if unsampled:
            self.sample(unsampled)

    def _draw_for_pair(self, first: Anchor, second: Anchor, per_arm: int, open_anchors: list[Anchor]) -> None:
        """Give both critical arms about ``per_arm`` valid samples, drawing each from the source that feeds
        the most open arms per model evaluation: the arm itself, one of its parents (the arm less one
        superpixel) or the part it shares with the other arm.

        A sample drawn for a subset C of an open arm A is valid for A with probability
        (1 - p_sample)^|A - C| (:meth:`SampleStore.valid_for`), so C feeds the open arms at the rate
        sum over open A containing C of (1 - p_sample)^|A - C| per evaluation, and an arm needs
        per_arm / (1 - p_sample)^|arm - C| draws from C. Arms choosing the same source share its draws.
        """
        keep = 1.0 - self.sampler.p_sample
        open_sets = [set(anchor) for anchor in open_anchors]
        common = tuple(sorted(set(first) & set(second)))

        def rate(source):
            return sum(keep ** len(arm - set(source)) for arm in open_sets if arm.issuperset(source))

        requests: dict[Anchor, int] = {}
        for arm in (first, second):
            options = sorted({arm, common} | {tuple(f for f in arm if f != left_out) for left_out in arm})
            options = [source for source in options if keep ** (len(arm) - len(source)) > 0]
            source = max(options, key=lambda option: (rate(option), len(option)))
            need = int(np.ceil(per_arm / keep ** (len(arm) - len(source))))
            requests[source] = max(requests.get(source, 0), need)
        self.sample(list(requests.items()))

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
