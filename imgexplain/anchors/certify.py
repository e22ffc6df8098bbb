"""The anchor search's precision checks: the claim an explanation makes, and the two routes that earn it.

An anchor returned with success=True claims that its precision exceeds threshold - epsilon_stop. Two routes
may earn that claim, and each gets its own share of delta:

- the reuse route (:meth:`PrecisionChecks._check_precision` on :meth:`PrecisionChecks._look`), share
  1 - VERIFY_SHARE: the check counts every sample of the step, including those that chose the candidate, so
  it unions over every candidate of the step, over the looks of a fixed grid and over the anchor sizes
  (:func:`~imgexplain.anchors.check.reuse_delta`);
- the fresh verification (:meth:`PrecisionChecks._verify`), share VERIFY_SHARE: the candidate and the sample
  count n are fixed first, from any samples, and the check looks once, at the first n samples drawn after
  that. One candidate and one look: no union over candidates or looks, only over the search's verification
  attempts, the k-th at level VERIFY_SHARE delta 6 / (pi^2 k^2)
  (:func:`~imgexplain.anchors.check.verification_delta`).

Guarantee: the chance that a search returns success=True for an anchor whose precision is at most
threshold - epsilon_stop is at most delta, whichever route certified it. The reuse route's looks are wrong
together with probability at most (1 - VERIFY_SHARE) delta (:meth:`PrecisionChecks._look`). A verification
attempt k draws its n samples for the candidate A_k after A_k and n were fixed, so given everything before,
they are n i.i.d. draws from A_k's distribution (the model's own randomness included: each is a new draw, or,
for a deterministic model, the label a new evaluation would give), and Chernoff's bound makes its lower bound
exceed A_k's precision with probability at most delta_k; the delta_k sum to VERIFY_SHARE delta. A union over
the two routes gives delta. The verification never counts a sample drawn before its candidate was fixed: such
a sample chose the candidate, and a candidate whose early samples were lucky is the likelier to be verified.

Which route the check takes is a matter of cost only (it changes no bound): for each anchor it compares the
samples the reuse route still needs (:func:`~imgexplain.anchors.check.decision_costs`) with the fresh samples a
verification would need (:func:`~imgexplain.anchors.check.verification_sizes`). The reuse route wins where
samples are already there (the empty anchor's samples at size 1, KL-LUCB's); the verification wins where the
anchor's precision sits near the threshold, whose reuse check at the union's level costs several times more.
"""
from __future__ import annotations

import numpy as np

from imgexplain.anchors.bandit import LOOK_BASE, LOOK_COUNTS, kl_lower_bound, kl_upper_bound, last_look, look_level
from imgexplain.anchors.check import (CHECK_GROWTH, Look, alternatives, cheapest_certification, decision_costs,
                                      next_look, reuse_delta, verification_delta, verification_sizes, would_pass)
from imgexplain.anchors.samples import Anchor, anchor_matrix

# The empty anchor is pursued while a look within this many one-superpixel checks could pass it.
EMPTY_ANCHOR_BUDGET = 3


class PrecisionChecks:
    """The precision checks of :class:`~imgexplain.anchors.search.AnchorSearch`, which inherits them; they use its
    ``settings``, ``store``, ``sample``, ``coverage``, ``order`` and ``n_features``, and count its verification
    attempts in ``verifications``."""

    verifications = 0

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
        drawing order are i.i.d. draws from its distribution; its check gets the reuse route's share for size 0
        (:func:`~imgexplain.anchors.check.reuse_delta`).
        """
        s = self.settings
        delta = reuse_delta(s.delta, 0)
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
        """Samples the reuse route's check of a one-superpixel anchor of precision 1 needs
        (:func:`~imgexplain.anchors.check.cheapest_certification`)."""
        s = self.settings
        return cheapest_certification(reuse_delta(s.delta, 1) / self.n_features, s.threshold - s.epsilon_stop)

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

        Where a fresh verification (:meth:`_verify`) of an anchor whose mean over all its samples is at least the
        threshold costs fewer samples than the cheapest decision above, the check verifies that anchor instead:
        a pass ends the check with it; a failure leaves its samples to the looks above (they were drawn after
        ``since``), and the anchor may be verified again at the next attempt's level while that is cheaper.
        """
        s = self.settings
        low, high = s.threshold - s.epsilon_stop, s.threshold + s.epsilon_stop
        pool = list(anchors) + [anchor for anchor in others if anchor not in anchors]
        chosen = np.arange(len(pool)) < len(anchors)

        def decided(means):
            return lambda lower, upper: np.where(means[:, np.newaxis] >= s.threshold, lower > low, upper < high)

        def checked(shown, means, lowers, passes):
            return [anchor for anchor, kept in zip(pool, shown) if kept], means[shown], lowers[shown], passes[shown]

        while True:
            look = self._look(pool, since, delta)
            above = look.means >= s.threshold
            passes = look.known & above & (look.lowers > low)
            undecided = ~passes & ~(look.known & ~above & (look.uppers < high))
            active = undecided & (chosen | (look.known & above))
            costs = np.where(active, decision_costs(look, delta, decided(look.plan_means)), np.inf)
            fresh = np.where(undecided, self._verification_sizes(pool), np.inf)
            finished = (not (undecided & chosen).any() if chosen.any()
                        else not min(costs.min(), fresh.min()) <= budget)
            if passes.any() or finished:
                return checked(chosen | passes, look.means, look.lowers, passes)
            if fresh.min() < costs.min():
                index = int(np.argmin(fresh))
                mean, lower, passed = self._verify(pool[index], int(fresh[index]))
                budget -= fresh[index]
                if passed:
                    verified = np.arange(len(pool)) == index
                    means, lowers = look.means.copy(), look.lowers.copy()
                    means[index], lowers[index] = mean, lower
                    return checked(chosen | verified, means, lowers, verified)
                continue
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

    def _verification_sizes(self, anchors: list[Anchor]) -> np.ndarray:
        """The fresh samples the next verification of each anchor would draw (inf for an anchor whose mean over
        all its samples is below the threshold): see :func:`~imgexplain.anchors.check.verification_sizes`."""
        s = self.settings
        positives, n_samples = self.store.counts(anchors)
        sizes = verification_sizes(positives, n_samples, verification_delta(s.delta, self.verifications + 1),
                                   s.threshold - s.epsilon_stop)
        return np.where((n_samples > 0) & (positives >= s.threshold * n_samples), sizes, np.inf)

    def _verify(self, anchor: Anchor, n: int) -> tuple[float, float, bool]:
        """Fresh verification of ``anchor``, fixed with ``n`` before this call: draw n samples for it, and return
        their mean, their lower bound at the level of the search's next attempt
        (:func:`~imgexplain.anchors.check.verification_delta`) and whether it passes (mean >= threshold, lower
        bound > threshold - epsilon_stop).

        Every sample drawn for the anchor is a draw from its distribution (:meth:`SampleStore.valid_for`) and
        none of them was seen when the anchor and n were chosen, so the bound fails with probability at most
        the attempt's delta; the module docstring has the whole argument.
        """
        s = self.settings
        self.verifications += 1
        delta = verification_delta(s.delta, self.verifications)
        held = self.store.held[self.sample([(anchor, n)])]
        mean = float(held.mean())
        lower = float(kl_lower_bound(np.array([mean]), np.array([np.log(1.0 / delta) / n]))[0])
        passed = mean >= s.threshold and lower > s.threshold - s.epsilon_stop
        if s.log is not None:
            s.log(f"verification {self.verifications} of {anchor}: {n} fresh samples, precision {mean:.3f} "
                  f"lb {lower:.3f}{' passes' if passed else ''}")
        return mean, lower, passed

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
        :func:`~imgexplain.anchors.check.reuse_delta`; the sum over sizes, candidates and looks is at most the reuse
        route's share of delta.
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

