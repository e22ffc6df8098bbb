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
rounds are sized by what is still missing. The precision check, whose lower bound is the explanation's claim,
looks only at a fixed grid of sample counts (:func:`~imgexplain.anchors.bandit.look_level`), unions over the
candidates of the step and shares delta over the anchor sizes (:meth:`AnchorSearch._look`, :func:`check_share`):
the chance that an anchor returned with success=True has a precision below threshold - epsilon_stop is at most
delta, whichever candidate of the step the check ends on.

Spending follows what each certification would still cost (:func:`~imgexplain.anchors.check.decision_costs`):
the empty anchor is pursued only while a few one-superpixel checks' worth of samples could pass it
(:meth:`AnchorSearch._check_empty_anchor`), each size first certifies its cheapest candidate, and the check of
KL-LUCB's choice takes any candidate that would pass sooner (:meth:`AnchorSearch._check_precision`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import (LOOK_BASE, LOOK_COUNTS, kl_lower_bound, kl_lucb, kl_upper_bound, last_look,
                                       look_level)
from imgexplain.anchors.check import (CHECK_GROWTH, Look, alternatives, check_share, cheapest_certification,
                                      decision_costs, next_look, would_pass)
from imgexplain.anchors.sampler import PerturbationSampler
from imgexplain.anchors.samples import Anchor, SampleStore, anchor_matrix

ROUNDS = ("adaptive", "fixed")
# The empty anchor is pursued while a look within this many one-superpixel checks could pass it.
EMPTY_ANCHOR_BUDGET = 3


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


class AnchorSearch:
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
            delta = s.delta * check_share(size) / len(candidates)
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

    def _check_empty_anchor(self) -> tuple[float, bool]:
        """The reference's test of the empty anchor with a sound bound, pursued only while it is cheap: it passes
        when its lower bound at a look exceeds the threshold itself.

        Certifying an empty anchor whose precision sits just above the threshold takes thousands of samples,
        while a one-superpixel anchor of precision near 1 is certified with about a hundred. So the empty anchor
        is sampled on only while a look at most EMPTY_ANCHOR_BUDGET times :meth:`single_check_cost` samples
        beyond the initial ones would pass it if its mean held (a passing empty anchor is the best answer there
        is, coverage 1, so it may cost a little more than the cheapest certification); otherwise the search goes
        on to anchors of one superpixel (whether to sample is not a claim, so any rule keeps the bound sound).
        The empty anchor's samples also count for every anchor of one superpixel that they kept
        (:meth:`_look`), so they are not lost when it fails.

        The empty anchor is fixed before any sample is drawn and every sample is drawn for it, so its samples in
        drawing order are i.i.d. draws from its distribution; its check gets the share ``EMPTY_SHARE`` of delta.
        """
        s = self.settings
        delta = s.delta * check_share(0)
        limit = self.store.size + EMPTY_ANCHOR_BUDGET * self.single_check_cost()

        def passes(lower, upper):
            return lower > s.threshold

        while True:
            look = self._look([()], since=0, delta=delta)
            if look.known[0] and look.lowers[0] > s.threshold:
                return float(look.plan_means[0]), True
            target = next_look(look.plan_means, look.index, delta, passes, np.array([limit]))[0]
            if target < 0 or not would_pass(look.plan_means[0], target, delta, s.threshold):
                positives, n_samples = self.store.counts([()])
                return float(positives[0] / n_samples[0]), False
            self.sample([((), int(LOOK_COUNTS[target] - look.n_valid[0]))])

    def single_check_cost(self) -> int:
        """Samples the check of a one-superpixel anchor of precision 1 needs (:func:`cheapest_certification`)."""
        s = self.settings
        return cheapest_certification(s.delta * check_share(1) / self.n_features, s.threshold - s.epsilon_stop)

    def _check_precision(self, anchors: list[Anchor], delta: float, since: int, others: list[Anchor] = (),
                         budget: float = np.inf) -> tuple[list[Anchor], np.ndarray, np.ndarray, np.ndarray]:
        """Check the chosen ``anchors`` until one passes or each is clearly below the threshold at a look, taking
        on the way any of ``others`` (the step's other candidates) that would pass sooner; return the anchors
        checked (the chosen ones and any that passed), their means and lower bounds at the last look, and whether
        each passes (mean >= threshold, lower bound > threshold - epsilon_stop).

        Each round samples the anchor whose decision is cheapest, and the chosen anchors within CHECK_GROWTH
        times its cost: the samples each still needs, if its mean held, to reach the look that decides it
        (:func:`~imgexplain.anchors.check.decision_costs`). An anchor of
        ``others`` counts only while its mean at a look is at least the threshold: a candidate whose precision
        sits just above the threshold is not pursued for thousands of samples when another of the same size,
        with a precision near 1, is certified with a few dozen. The check ends at the first anchor that passes
        (anchors of one size have the same coverage). With no chosen anchor, it certifies the cheapest of
        ``others`` while the samples that would take stay within ``budget`` samples in all (the search does so
        before choosing candidates with KL-LUCB, which costs more than a check when one candidate is clearly
        good).

        Only samples stored from row ``since`` on count, and ``delta`` is the share of one candidate of the step;
        see :meth:`_look` for why this makes the check's lower bound hold for whichever candidate is checked.
        The upper bound only decides that an anchor is clearly below the threshold and stops its sampling: a
        wrong upper bound loses an anchor but never makes a false claim, so the lower bound gets the whole of
        ``delta`` (one-sided) and the upper bound reuses its level.
        """
        s = self.settings
        low, high = s.threshold - s.epsilon_stop, s.threshold + s.epsilon_stop
        pool = list(anchors) + [anchor for anchor in others if anchor not in anchors]
        chosen = np.arange(len(pool)) < len(anchors)

        def decided(means):
            return lambda lower, upper: np.where(means[:, np.newaxis] >= s.threshold, lower > low, upper < high)

        while True:
            look = self._look(pool, since, delta)
            above = look.means >= s.threshold
            passes = look.known & above & (look.lowers > low)
            undecided = ~passes & ~(look.known & ~above & (look.uppers < high))
            active = undecided & (chosen | (look.known & above))
            costs = np.where(active, decision_costs(look, delta, decided(look.plan_means)), np.inf)
            finished = not (undecided & chosen).any() if chosen.any() else not costs.min() <= budget
            if passes.any() or finished:
                shown = chosen | passes
                return ([anchor for anchor, kept in zip(pool, shown) if kept], look.means[shown], look.lowers[shown],
                        passes[shown])
            todo = (np.arange(len(pool)) == np.argmin(costs)) | (chosen & (costs <= CHECK_GROWTH * costs.min()))
            if s.rounds == "fixed":
                requests = [(anchor, s.batch_size) for anchor, wanted in zip(pool, todo) if wanted]
            else:
                targets = next_look(look.plan_means, look.index, delta, decided(look.plan_means),
                                    CHECK_GROWTH * np.maximum(look.n_valid, LOOK_BASE))
                requests = [(anchor, int(LOOK_COUNTS[target] - n))
                            for anchor, wanted, target, n in zip(pool, todo, targets, look.n_valid) if wanted]
            self.sample(requests)
            budget -= sum(n for _, n in requests)

    def _look(self, anchors: list[Anchor], since: int, delta: float) -> "Look":
        """Each anchor's look: the first LOOK_COUNTS[k] of its valid samples stored from row ``since`` on, k the
        last look they reach, and the one-sided bounds at level look_level(k, delta).

        Why the bound holds. Take one anchor A fixed before row ``since`` was stored. Every later sample valid
        for A is, given everything drawn before it (including the choice to draw it), a draw from A's
        distribution (:meth:`SampleStore.valid_for`), so A's valid samples in storage order are i.i.d., however
        many of them are drawn: the event "A has n valid samples and the first n put the lower bound above A's
        precision" has the probability it has for n i.i.d. draws (extend the stream by fresh draws where it
        stops), at most delta w_k at look k (:func:`~imgexplain.anchors.bandit.look_level`). The looks use the
        first n samples, never the last, so no sample is picked after its label is known.

        Which anchor is checked depends on the samples, so the check unions over every anchor that could be:
        the candidates of the step, known when the step begins, each with the same ``delta``. Samples stored
        before the step began do not count: they chose the previous step's beam, and with it the candidates,
        and a candidate whose pooled samples were lucky is the likelier to be a candidate at all (at size 1 the
        candidates are every superpixel, fixed before any sample, and ``since`` is 0). Sizes share delta by
        :func:`check_share`; the sum over sizes, candidates and looks is at most delta.
        """
        rows = slice(since, self.store.size)
        valid = self.store.valid_for(anchor_matrix(anchors, self.n_features), rows)
        held = self.store.held[rows, np.newaxis]
        n_valid = valid.sum(axis=0)
        index = last_look(n_valid)
        known = index >= 0
        counts = np.where(known, LOOK_COUNTS[np.maximum(index, 0)], 0)
        in_look = valid & (np.cumsum(valid, axis=0) <= counts)
        means = (in_look & held).sum(axis=0) / np.maximum(counts, 1)
        plan_means = np.where(known, means, (valid & held).sum(axis=0) / np.maximum(n_valid, 1))
        level = look_level(np.maximum(index, 0), delta) / np.maximum(counts, 1)
        return Look(n_valid=n_valid, index=index, known=known, means=means, plan_means=plan_means,
                     lowers=np.where(known, kl_lower_bound(means, level), 0.0),
                     uppers=np.where(known, kl_upper_bound(means, level), 1.0))

    def _alternatives(self, anchor: Anchor, candidates: list[Anchor], since: int, delta: float) -> list[dict]:
        """The other candidates of the winner's step whose check passed or nearly passed, on the samples and at the
        level of that step's check, so their bounds hold as the winner's does (the check unions over every
        candidate of the step)."""
        others = [candidate for candidate in candidates if candidate != anchor]
        if not others:
            return []
        s = self.settings
        return alternatives([self.order[other] for other in others], self._look(others, since, delta), delta,
                            self.coverage(others), s.threshold, s.threshold - s.epsilon_stop)

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

