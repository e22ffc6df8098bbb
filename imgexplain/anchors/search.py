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

KL-LUCB's bounds hold at all sample counts at once (:func:`~imgexplain.anchors.bandit.uniform_level`), so its
rounds are sized by what is still missing. The precision check, whose lower bound is the explanation's claim, is
:class:`~imgexplain.anchors.certify.PrecisionChecks`: a reuse route that counts the step's samples and unions
over the step's candidates, its looks and the anchor sizes, and verifications, tests by betting of one candidate
fixed before the samples they count are drawn; delta is split between them and the empty anchor's verification,
so the chance that an anchor returned with success=True has a precision below threshold - epsilon_stop is at most
delta, whichever route certified it.

Spending follows what each certification would still cost: the empty anchor is pursued only while one
one-superpixel check's worth of samples could pass it, each size first certifies its cheapest candidate, and
the check of KL-LUCB's choice takes any candidate that would pass sooner, by either route.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import kl_lucb
from imgexplain.anchors.certify import PrecisionChecks, Verification
from imgexplain.anchors.check import reuse_delta
from imgexplain.anchors.sampler import PerturbationSampler
from imgexplain.anchors.samples import Anchor, SampleStore, anchor_matrix

ROUNDS = ("adaptive", "fixed")


@dataclass
class SearchSettings:
    """The arguments of :meth:`AnchorImage.explain` that steer the search, under the same names (see there),
    except ``initial_capacity`` (``binary_cache_size``), ``capacity_margin`` (max(``cache_margin``,
    ``batch_size``)), ``log`` (a callable for progress lines, or None) and ``log_every`` (``verbose_every``)."""

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


@dataclass
class SearchResult:
    """What the search found, in the terms of the reference's ``raw`` dictionary: the anchor's superpixels in
    the order they were added (``feature``), the mean, precision and coverage after each, the empty anchor's
    precision (``all_precision``), whether the anchor passed the precision check (``success``), and the covered
    examples of each step (``example_masks``) and the other anchors of its size that the check certified or nearly
    certified (``alternatives``)."""

    feature: list[int]
    mean: list[float]
    precision: list[float]
    coverage: list[float]
    all_precision: float
    success: bool
    # Per step: masks and background indices of covered samples where the label held, then where it changed.
    example_masks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    # The other anchors of the final size that passed or nearly passed the check (see check.alternatives).
    alternatives: list[dict] = field(default_factory=list)


class AnchorSearch(PrecisionChecks):
    """Beam search for the anchor of one image; see the module docstring.

    Parameters
    ----------
    sampler : PerturbationSampler
        Draws and labels the perturbed images of the image.
    instance_label : int
        The label the anchor must keep.
    settings : SearchSettings
        The search's arguments.
    """

    def __init__(self, sampler: PerturbationSampler, instance_label: int, settings: SearchSettings):
        self.sampler = sampler
        self.label = instance_label
        self.settings = settings
        self.n_features = sampler.n_features
        self.store = SampleStore(self.n_features, settings.initial_capacity, settings.capacity_margin)
        self.order: dict[Anchor, list[int]] = {(): []}
        self.verifications: list[Verification] = []
        coverage_masks, _ = sampler.draw(np.zeros(0, dtype=np.intp), settings.coverage_samples)
        self.coverage_masks = coverage_masks.astype(np.float32)
        self.max_size = self.n_features if settings.max_anchor_size is None else min(settings.max_anchor_size,
                                                                                    self.n_features)

    def coverage(self, anchors: list[Anchor]) -> np.ndarray:
        """Fraction of the coverage samples that keep every superpixel of each anchor.

        Parameters
        ----------
        anchors : list of tuple of int
            The anchors.

        Returns
        -------
        ndarray of float
        """
        members = anchor_matrix(anchors, self.n_features)
        return (self.coverage_masks @ members.T.astype(np.float32) == members.sum(axis=1)).mean(axis=0)

    def sample(self, requests: list[tuple[Anchor, int]]) -> slice:
        """Draw ``n`` samples for each (anchor, n) requested, label them all in one model call, store them.

        Parameters
        ----------
        requests : list of (tuple of int, int)
            Anchors to draw for, and how many samples each.

        Returns
        -------
        slice
            The rows of the new samples in the store.
        """
        draws = [self.sampler.draw(np.array(anchor, dtype=np.intp), n) for anchor, n in requests]
        masks = np.concatenate([masks for masks, _ in draws])
        backgrounds = np.concatenate([backgrounds for _, backgrounds in draws])
        drawn_for = np.repeat(anchor_matrix([anchor for anchor, _ in requests], self.n_features),
                              [n for _, n in requests], axis=0)
        held = self.sampler.predict(masks, backgrounds) == self.label
        return self.store.add(masks, drawn_for, held, backgrounds)

    def run(self) -> SearchResult:
        """Search: the empty anchor first, then one size after another until the best anchor is found.

        Returns
        -------
        SearchResult
        """
        s = self.settings
        self.sample([((), s.min_samples_start)])
        empty_mean, empty_passes = self._check_empty_anchor()
        if empty_passes:
            return self._result((), success=True, all_precision=empty_mean)

        cheap = self.single_check_cost()
        best_of_size: dict[int, list[Anchor]] = {0: [()]}
        best_anchor: Anchor = ()
        best_coverage = -1.0
        final_step = None
        size = 1
        while size <= self.max_size:
            since = 0 if size == 1 else self.store.size
            candidates = self._propose(best_of_size[size - 1])
            coverages = self.coverage(candidates)
            keep = coverages > best_coverage
            candidates = [anchor for anchor, kept in zip(candidates, keep) if kept]
            if not candidates:
                break
            delta = reuse_delta(s.delta, size) / len(candidates)
            checked, means, lowers, passes = self._check_precision([], delta, since, candidates, cheap)
            best_of_size[size] = checked
            if not passes.any():
                chosen = self._select(candidates, min(s.beam_size, len(candidates)))
                best_of_size[size] = [candidates[index] for index in chosen]
                checked, means, lowers, passes = self._check_precision(best_of_size[size], delta, since, candidates)
            checked_coverages = self.coverage(checked)
            better = np.flatnonzero(passes & (checked_coverages > best_coverage))
            if s.log is not None:
                for anchor, mean, lower, coverage in zip(checked, means, lowers, checked_coverages):
                    s.log(f"size {size}: {anchor} precision {mean:.3f} lb {lower:.3f} coverage {coverage:.3f}")
            if better.size:
                winner = better[np.argmax(checked_coverages[better])]
                best_coverage = float(checked_coverages[winner])
                best_anchor = checked[winner]
                final_step = (candidates, since, delta)
                if best_coverage == 1.0 or s.stop_on_first:
                    break
            size += 1

        if best_anchor:
            result = self._result(best_anchor, success=True)
            result.alternatives = self._alternatives(best_anchor, *final_step)
            return result
        tried = [anchor for k in range(1, size) for anchor in best_of_size.get(k, [])]
        if not tried:
            return self._result((), success=False, all_precision=empty_mean)
        return self._result(tried[self._select(tried, 1)[0]], success=False)

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

    def _covered_examples(self, anchor: Anchor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The latest samples valid for ``anchor`` where the label held, and where it changed."""
        rows = slice(0, self.store.size)
        valid = self.store.valid_for(anchor_matrix([anchor], self.n_features), rows)[:, 0]
        held = self.store.held[rows]
        n = self.settings.n_covered_ex
        held_rows = np.flatnonzero(valid & held)[::-1][:n]
        changed_rows = np.flatnonzero(valid & ~held)[::-1][:n]
        return (self.store.masks[held_rows], self.store.backgrounds[held_rows],
                self.store.masks[changed_rows], self.store.backgrounds[changed_rows])

