"""The anchor search's precision checks: the claim an explanation makes, and the routes that earn it.

An anchor returned with success=True claims that its precision exceeds threshold - epsilon_stop. Three routes
may earn that claim, and each gets its own share of delta (:mod:`imgexplain.anchors.check`):

- the empty anchor's verification (:meth:`PrecisionChecks._check_empty_anchor`), share EMPTY_SHARE;
- the reuse route (:meth:`PrecisionChecks._check_precision` on :meth:`PrecisionChecks._look`), share
  1 - EMPTY_SHARE - VERIFY_SHARE: the check counts every sample of the step, including those that chose the
  candidate, so it unions over every candidate of the step, over the looks of a fixed grid and over the anchor
  sizes (:func:`~imgexplain.anchors.check.reuse_delta`);
- fresh verifications (:meth:`PrecisionChecks._verify`), share VERIFY_SHARE: one candidate is fixed first, from
  any samples, and only the samples valid for it that are drawn after that count. One candidate: no union over
  candidates, only over the search's verifications, the k-th at delta_k = VERIFY_SHARE delta 6 / (pi^2 k^2)
  (:func:`~imgexplain.anchors.check.verification_delta`).

A verification is a test by betting (:func:`~imgexplain.anchors.check.evidence`): starting from a wealth of 1, it
bets on each of its samples that the label holds, a stake fixed from the samples before, and wins
bet (1 - low) or loses bet low (low = threshold - epsilon_stop); it passes once its wealth has reached 1 / delta_k
after some sample. While the anchor's precision is at most low no bet gains in expectation, so the wealth is a
nonnegative supermartingale and, by Ville's inequality, it ever reaches 1 / delta_k with probability at most
delta_k, however the samples are drawn and whenever the search looks. So a verification may go on drawing until it
passes, with no union over looks and no sample count planned ahead, and every valid sample drawn after it started
counts, whoever drew it (KL-LUCB, the reuse route's rounds).

Guarantee: the chance that a search returns success=True for an anchor whose precision is at most
threshold - epsilon_stop is at most delta, whichever route certified it. The reuse route's looks are wrong
together with probability at most its share (:meth:`PrecisionChecks._look`). A verification of the candidate A_k
counts only samples drawn after A_k was fixed; given everything before, each is a draw from A_k's distribution
(the model's own randomness included: each is a new draw, or, for a deterministic model, the label a new
evaluation would give), so its wealth reaches 1 / delta_k with probability at most delta_k when A_k's precision is
at most low; the delta_k sum to VERIFY_SHARE delta, and the empty anchor, fixed before any sample, is verified on
all its samples at its own share. A union over the routes gives delta. A verification never counts a sample drawn
before its candidate was fixed: such a sample chose the candidate, and a candidate whose early samples were lucky is
the likelier to be verified (the bets may use those samples: a bet only has to be fixed before its own sample).

Which route the check takes is a matter of cost only (it changes no bound): for each anchor it compares the
samples the reuse route still needs (:func:`~imgexplain.anchors.check.decision_costs`) with those its
verification would still need (:meth:`PrecisionChecks._need`). The reuse route wins where samples are already
there (the empty anchor's samples at size 1, KL-LUCB's); a verification wins where the anchor's precision sits
near the threshold, whose reuse check at the union's level costs several times more.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgexplain.anchors.bandit import LOOK_BASE, LOOK_COUNTS, kl_lower_bound, kl_upper_bound, last_look, look_level
from imgexplain.anchors.check import (CHECK_GROWTH, Look, alternatives, cheapest_certification, decision_costs,
                                      empty_delta, evidence, evidence_rate, expected_precision, next_look, reuse_delta,
                                      verification_delta)
from imgexplain.anchors.samples import Anchor, anchor_matrix

# The empty anchor is pursued while its verification would pass within this many one-superpixel checks' samples.
EMPTY_ANCHOR_BUDGET = 1
# A verification that needs n more samples (if the anchor's mean held) draws VERIFY_ROUND n of them, at least
# VERIFY_MIN, and looks again: its evidence may arrive early, and samples drawn past that point are wasted.
VERIFY_ROUND = 0.5
VERIFY_MIN = 16


@dataclass
class Verification:
    """A verification: its anchor, the first store row it counts, its delta and the value the anchor's precision must
    exceed (threshold - epsilon_stop; the threshold itself for the empty anchor), fixed before its samples."""

    anchor: Anchor
    start: int
    delta: float
    low: float


class PrecisionChecks:
    """The precision checks of :class:`~imgexplain.anchors.search.AnchorSearch`, which inherits them; they use its
    ``settings``, ``store``, ``sample``, ``coverage``, ``order`` and ``n_features``, and keep its fresh
    verifications in ``verifications``."""

    def _check_empty_anchor(self) -> tuple[float, bool]:
        """Verify the empty anchor, pursued only while it is cheap; return its mean and whether it passes.

        The empty anchor is fixed before any sample is drawn and every sample is drawn for it, so it is verified
        on all its samples, at its own share of delta (:func:`~imgexplain.anchors.check.empty_delta`). As in the
        reference, it asks more of the empty anchor than of the others: evidence that its precision exceeds the
        threshold itself, not threshold - epsilon_stop (and a mean at least the threshold, :meth:`_passed`).

        Certifying an empty anchor whose precision sits just above the threshold takes hundreds of samples, while a
        one-superpixel anchor of precision near 1 is certified with a few dozen. So after the initial samples the
        empty anchor is sampled on only while its verification, if its mean held, would pass within
        EMPTY_ANCHOR_BUDGET times :meth:`single_check_cost` samples (a passing empty anchor is the best answer there
        is, coverage 1, so it may cost a little more than the cheapest certification); otherwise the search goes on
        to anchors of one superpixel (whether to sample is not a claim, so any rule keeps the bound sound). The empty
        anchor's samples also count for every anchor of one superpixel that they kept (:meth:`_look`), so they are
        not lost when it fails.
        """
        s = self.settings
        test = Verification((), 0, empty_delta(s.delta), s.threshold)
        limit = self.store.size + EMPTY_ANCHOR_BUDGET * self.single_check_cost()
        while True:
            positives, n_samples = self.store.counts([()])
            mean = float(positives[0] / n_samples[0])
            if self._passed(test, positives[0], n_samples[0]):
                return mean, True
            need = self._need(test, positives[0], n_samples[0])
            if not self.store.size + need <= limit:
                return mean, False
            self.sample([((), self._round(need))])

    def single_check_cost(self) -> int:
        """Samples the reuse route's check of a one-superpixel anchor of precision 1 needs
        (:func:`~imgexplain.anchors.check.cheapest_certification`)."""
        s = self.settings
        return cheapest_certification(reuse_delta(s.delta, 1) / self.n_features, s.threshold - s.epsilon_stop)

    def _check_precision(self, anchors: list[Anchor], delta: float, since: int, others: list[Anchor] = (),
                         budget: float = np.inf) -> tuple[list[Anchor], np.ndarray, np.ndarray, np.ndarray]:
        """Check the chosen ``anchors`` until one passes or each is clearly below the threshold at a look, taking
        on the way any of ``others`` (the step's other candidates) that would pass sooner; return the anchors
        checked (the chosen ones and any that passed), their means and lower bounds at the last look (for an anchor
        that passed a verification: its mean over all its samples and threshold - epsilon_stop, the bound its
        verification earned), and whether each passes (mean >= threshold, lower bound > threshold - epsilon_stop,
        or a passed verification).

        Each round samples the anchor whose decision is cheapest, and the chosen anchors within CHECK_GROWTH
        times its cost: the samples each still needs, if its mean held, to reach the look that decides it
        (:func:`~imgexplain.anchors.check.decision_costs`). An anchor of
        ``others`` counts only while its mean at a look is at least the threshold: a candidate whose precision
        sits just above the threshold is not pursued for thousands of samples when another of the same size,
        with a precision near 1, is certified with a few dozen. The check ends at the first anchor that passes
        (anchors of one size have the same coverage). With no chosen anchor, it certifies the cheapest of
        ``others`` while the samples that would take stay within ``budget`` samples in all (the search does so
        before choosing candidates with KL-LUCB, which costs more than a check when one candidate is clearly
        good); when that budget ends it, a verification of the candidate cheapest to verify is started, so that
        KL-LUCB's samples count for it).

        Only samples stored from row ``since`` on count, and ``delta`` is the share of one candidate of the step;
        see :meth:`_look` for why this makes the check's lower bound hold for whichever candidate is checked.
        The upper bound only decides that an anchor is clearly below the threshold and stops its sampling: a
        wrong upper bound loses an anchor but never makes a false claim, so the lower bound gets the whole of
        ``delta`` (one-sided) and the upper bound reuses its level.

        Where a verification (:meth:`_verify`) of an anchor whose mean over all its samples is at least the
        threshold would need fewer samples than the cheapest decision above (:meth:`_verification_costs`), the
        check draws for that verification instead; its samples count for the looks above too (they were drawn
        after ``since``). Before a round of the looks, a verification of the round's cheapest anchor is started
        (when its mean is above threshold - epsilon_stop and none is running), so that the round's samples count for
        it as well. An anchor that passes a verification, whoever drew its samples, ends the check.
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
            verified = self._verified(pool) & ~passes
            undecided = ~passes & ~verified & ~(look.known & ~above & (look.uppers < high))
            active = undecided & (chosen | (look.known & above))
            costs = np.where(active, decision_costs(look, delta, decided(look.plan_means)), np.inf)
            fresh = np.where(undecided, self._verification_costs(pool), np.inf)
            finished = (not (undecided & chosen).any() if chosen.any()
                        else not min(costs.min(), fresh.min()) <= budget)
            if finished and not chosen.any() and np.isfinite(fresh.min()):
                self._start_verification(pool[int(np.argmin(fresh))])  # KL-LUCB's samples will count for it
            if passes.any() or verified.any() or finished:
                positives, n_samples = self.store.counts(pool)
                means = np.where(verified, positives / np.maximum(n_samples, 1), look.means)
                return checked(chosen | passes | verified, means, np.where(verified, low, look.lowers),
                               passes | verified)
            if fresh.min() < costs.min():
                index = int(np.argmin(fresh))
                n = self._round(fresh[index])
                self._verify(pool[index], n)
                budget -= n
                continue
            cheapest = int(np.argmin(costs))
            positives, n_samples = self.store.counts([pool[cheapest]])
            if positives[0] > low * n_samples[0]:
                self._start_verification(pool[cheapest])  # so that the samples below count for it too
            todo = (np.arange(len(pool)) == cheapest) | (chosen & (costs <= CHECK_GROWTH * costs.min()))
            if s.rounds == "fixed":
                requests = [(anchor, s.batch_size) for anchor, wanted in zip(pool, todo) if wanted]
            else:
                targets = next_look(look.plan_means, look.index, delta, decided(look.plan_means),
                                    CHECK_GROWTH * np.maximum(look.n_valid, LOOK_BASE))
                requests = [(anchor, int(LOOK_COUNTS[target] - n))
                            for anchor, wanted, target, n in zip(pool, todo, targets, look.n_valid) if wanted]
            self.sample(requests)
            budget -= sum(n for _, n in requests)

    def _verification_costs(self, anchors: list[Anchor]) -> np.ndarray:
        """The samples each anchor's verification still needs if its mean held (:meth:`_need`), for its running
        verification or a new one, whichever needs fewer."""
        positives, n_samples = self.store.counts(anchors)
        return np.array([min([self._need(self._new_verification(anchor), p, n)]
                             + [self._need(test, p, n) for test in self.verifications if test.anchor == anchor])
                         for anchor, p, n in zip(anchors, positives, n_samples)])

    def _new_verification(self, anchor: Anchor) -> Verification:
        """The verification of ``anchor`` that would start here: the search's next, at its delta."""
        s = self.settings
        return Verification(anchor, self.store.size, verification_delta(s.delta, len(self.verifications) + 1),
                            s.threshold - s.epsilon_stop)

    def _need(self, test: Verification, positives: float, n_samples: float) -> float:
        """Samples ``test`` still needs if the anchor's mean over its ``n_samples`` samples (``positives`` held) held:
        the evidence it lacks over the expected growth per sample (:func:`~imgexplain.anchors.check.evidence_rate`);
        inf while that mean is below the threshold."""
        s = self.settings
        rate = float(evidence_rate(expected_precision(positives, n_samples, test.low), test.low))
        if n_samples == 0 or positives < s.threshold * n_samples or rate <= 0:
            return np.inf
        lacking = np.log(1.0 / test.delta) - self._evidence(test)[-1:].sum()
        return float(max(np.ceil(lacking / rate), 1.0))

    @staticmethod
    def _round(need: float) -> int:
        """Samples to draw towards a verification that needs ``need`` more: a share of it, so that evidence that
        arrives early is not paid past."""
        return int(max(VERIFY_MIN, np.ceil(VERIFY_ROUND * need)))

    def _verify(self, anchor: Anchor, n: int) -> bool:
        """Draw ``n`` samples for ``anchor``'s verification, started here unless a running one needs fewer samples
        than a new one would, and return whether the anchor is verified (:meth:`_verified`).

        A verification is fixed (its anchor, first row and delta) before its samples are drawn and never counts a
        sample stored before: those chose the anchor, and an anchor whose early samples were lucky is the likelier
        to be verified. The module docstring has the whole argument.
        """
        s = self.settings
        self._start_verification(anchor)
        self.sample([(anchor, n)])
        passed = bool(self._verified([anchor])[0])
        if s.log is not None:
            positives, n_samples = self.store.counts([anchor])
            s.log(f"verification of {anchor}: {n} new samples, precision {positives[0] / n_samples[0]:.3f}"
                  f"{', passes' if passed else ''}")
        return passed

    def _start_verification(self, anchor: Anchor) -> None:
        """Start a verification of ``anchor`` here, unless a running one needs fewer samples than a new one would."""
        positives, n_samples = self.store.counts([anchor])
        new = self._new_verification(anchor)
        running = [test for test in self.verifications if test.anchor == anchor]
        if not running or min(self._need(test, positives[0], n_samples[0]) for test in running) > \
                self._need(new, positives[0], n_samples[0]):
            self.verifications.append(new)

    def _verified(self, anchors: list[Anchor]) -> np.ndarray:
        """Whether each anchor passed one of its verifications (:meth:`_passed`)."""
        positives, n_samples = self.store.counts(anchors)
        return np.array([any(self._passed(test, p, n) for test in self.verifications if test.anchor == anchor)
                         for anchor, p, n in zip(anchors, positives, n_samples)], dtype=bool)

    def _passed(self, test: Verification, positives: float, n_samples: float) -> bool:
        """Whether ``test``'s anchor passes it: the anchor's mean over all its samples is at least the threshold and
        the test's evidence reached log(1 / delta) after one of its samples."""
        return bool(n_samples > 0 and positives >= self.settings.threshold * n_samples
                    and self._evidence(test).max(initial=0.0) >= np.log(1.0 / test.delta))

    def _evidence(self, test: Verification) -> np.ndarray:
        """The log wealth of a verification after each of its samples (:func:`~imgexplain.anchors.check.evidence`):
        the anchor's samples stored from its first row on, its bets set by every sample of the anchor before."""
        valid = self.store.valid_for(anchor_matrix([test.anchor], self.n_features), slice(0, self.store.size))[:, 0]
        held = self.store.held[:self.store.size][valid]
        before = int(np.count_nonzero(np.flatnonzero(valid) < test.start))
        return evidence(held[before:], int(held[:before].sum()), before, test.low)

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

