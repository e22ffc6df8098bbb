"""The precision check's arithmetic: the shares of delta of its two routes, the looks of the reuse route (a fixed
grid of sample counts, the share of each anchor size, where the next look should be) and the sample count of a
fresh verification.

The check's lower bound is the explanation's claim; why it holds is written in
:mod:`imgexplain.anchors.certify`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import LOOK_COUNTS, kl_bernoulli, kl_lower_bound, kl_upper_bound, look_level

# A round of the precision check goes at most to the first look with this many times the anchor's samples.
CHECK_GROWTH = 2
# An alternative is nearly certified when a look with at most this many times its samples would pass it.
NEARLY_GROWTH = 4
# Shares of delta for the checks of the empty anchor and of the anchors of one superpixel (see check_share).
EMPTY_SHARE = 0.05
SINGLE_SHARE = 0.6
# Share of delta for fresh verifications (see verification_delta); the reuse route's looks get the rest.
VERIFY_SHARE = 0.7
# A verification's sample count is planned for a lower bound of the mean seen so far at this level (nats), so that
# an anchor whose mean was a little lucky still passes.
PLAN_LEVEL = 0.1


def check_share(size: int) -> float:
    """Share of delta for the precision checks of anchors with ``size`` superpixels.

    Parameters
    ----------
    size : int
        Number of superpixels of the anchor, 0 for the empty anchor.

    Returns
    -------
    float
        ``EMPTY_SHARE`` for the empty anchor, ``SINGLE_SHARE`` for one superpixel and, for size k >= 2, the rest
        times 2 / (k (k + 1)); the shares of all sizes sum to 1. Small anchors get the larger shares: they are
        the cheap explanations, whose cost the check's level dominates, while a large anchor's cost is mostly
        the search that found it.
    """
    if size <= 1:
        return (EMPTY_SHARE, SINGLE_SHARE)[size]
    return (1.0 - EMPTY_SHARE - SINGLE_SHARE) * 2.0 / (size * (size + 1))


def reuse_delta(delta: float, size: int) -> float:
    """The reuse route's delta for the precision checks of anchors with ``size`` superpixels: its share of
    ``delta``, (1 - VERIFY_SHARE), times :func:`check_share`.

    Parameters
    ----------
    delta : float
        The explanation's delta.
    size : int
        Number of superpixels of the anchor, 0 for the empty anchor.

    Returns
    -------
    float

    Examples
    --------
    >>> from imgexplain.anchors.check import reuse_delta, verification_delta
    >>> round(reuse_delta(0.1, 1), 3), round(verification_delta(0.1, 1), 4)
    (0.018, 0.0426)
    """
    return delta * (1.0 - VERIFY_SHARE) * check_share(size)


def verification_delta(delta: float, attempt: int) -> float:
    """The delta of the ``attempt``-th fresh verification of a search (1, 2, ...): VERIFY_SHARE delta times
    6 / (pi^2 attempt^2). These sum to VERIFY_SHARE delta over all attempts, and the first, usually the only one,
    gets 61% of it.

    Parameters
    ----------
    delta : float
        The explanation's delta.
    attempt : int
        The verification's number in the search, from 1.

    Returns
    -------
    float
    """
    return delta * VERIFY_SHARE * 6.0 / (np.pi ** 2 * attempt ** 2)


def verification_sizes(positives: np.ndarray, n_samples: np.ndarray, delta: float, low: float) -> np.ndarray:
    """Fresh samples a verification at level ``delta`` needs for each anchor: the least n at which the lower bound
    of its planned mean at level log(1 / ``delta``) exceeds ``low``; the planned mean is the lower bound of the mean seen so far at
    PLAN_LEVEL nats (inf where it is not above ``low``).

    Parameters
    ----------
    positives, n_samples : ndarray of float
        Each anchor's samples so far (every valid sample: the plan is not a claim) and how many held.
    delta : float
        The verification's delta.
    low : float
        The value the lower bound must exceed (threshold - epsilon_stop).

    Returns
    -------
    ndarray of float
        The sample counts.
    """
    n_samples = np.maximum(np.asarray(n_samples, dtype=float), 1.0)
    planned = kl_lower_bound(np.asarray(positives, dtype=float) / n_samples, PLAN_LEVEL / n_samples)
    gain = np.where(planned > low, kl_bernoulli(planned, np.full_like(planned, low)), 0.0)
    with np.errstate(divide="ignore"):
        return np.where(gain > 0, np.floor(np.log(1.0 / delta) / np.maximum(gain, 1e-12)) + 1.0, np.inf)


@dataclass
class Look:
    """Each anchor's state at its last look (see :meth:`AnchorSearch._look`); ``known`` is False before the
    first look, ``plan_means`` is the mean at the look or, before it, over every sample counted so far."""

    n_valid: np.ndarray
    index: np.ndarray
    known: np.ndarray
    means: np.ndarray
    plan_means: np.ndarray
    lowers: np.ndarray
    uppers: np.ndarray


def next_look(means: np.ndarray, index: np.ndarray, delta: float, decided: Callable, limit: np.ndarray) -> np.ndarray:
    """For each anchor, the first look after ``index`` at which, if its mean held, ``decided(lower, upper)``
    would be True; when none is up to ``limit`` samples, the last look up to ``limit`` (-1 if there is none
    after ``index``, which only the empty anchor's limit can cause)."""
    looks = np.arange(len(LOOK_COUNTS))[np.newaxis, :]
    counts = LOOK_COUNTS[np.newaxis, :].astype(float)
    level = look_level(looks, delta) / counts
    mean = np.broadcast_to(np.asarray(means, dtype=float)[:, np.newaxis], (len(means), len(LOOK_COUNTS)))
    ahead = (looks > np.asarray(index)[:, np.newaxis]) & (counts <= np.asarray(limit)[:, np.newaxis])
    wanted = ahead & decided(kl_lower_bound(mean, level), kl_upper_bound(mean, level))
    last_ahead = np.where(ahead.any(axis=1), len(LOOK_COUNTS) - 1 - np.argmax(ahead[:, ::-1], axis=1), -1)
    first_wanted = np.argmax(wanted, axis=1)
    return np.where(wanted.any(axis=1), first_wanted, last_ahead)


def decision_costs(look: Look, delta: float, decided: Callable) -> np.ndarray:
    """For each anchor, the samples it still needs, if its mean held, to reach the first look at which
    ``decided(lower, upper)`` would be True (the last look of the grid when none is)."""
    targets = next_look(look.plan_means, look.index, delta, decided, np.full(len(look.n_valid), LOOK_COUNTS[-1]))
    return np.maximum(LOOK_COUNTS[np.maximum(targets, 0)] - look.n_valid, 0).astype(float)


def alternatives(features: list[list[int]], look: Look, delta: float, coverages: np.ndarray, threshold: float,
                 low: float) -> list[dict]:
    """The anchors whose mean at their last look is at least ``threshold`` and whose lower bound exceeds ``low``
    (threshold - epsilon_stop, ``certified``) or would, if the mean held, at a look with at most NEARLY_GROWTH
    times their samples (nearly certified), most certain first.

    Parameters
    ----------
    features : list of list of int
        Each anchor's superpixels, in the order the search added them.
    look : Look
        The anchors' looks.
    delta : float
        The level of each anchor's check (the share of one candidate).
    coverages : ndarray of float
        Each anchor's coverage.
    threshold, low : float
        The precision threshold, and the value the lower bound must exceed.

    Returns
    -------
    list of dict
        ``feature``, ``precision`` (the mean at the look), ``coverage``, ``lower`` and ``upper`` (the check's
        bounds at the look), ``n_samples`` (the look's sample count) and ``certified``.
    """
    costs = decision_costs(look, delta, lambda lower, upper: lower > low)
    listed = np.flatnonzero(look.known & (look.means >= threshold) & (costs <= (NEARLY_GROWTH - 1) * look.n_valid))
    return [{"feature": [int(f) for f in features[i]], "precision": float(look.means[i]),
             "coverage": float(coverages[i]), "lower": float(look.lowers[i]), "upper": float(look.uppers[i]),
             "n_samples": int(LOOK_COUNTS[look.index[i]]), "certified": bool(look.lowers[i] > low)}
            for i in listed[np.argsort(-look.lowers[listed], kind="stable")]]


def cheapest_certification(delta: float, low: float) -> int:
    """Samples the check of an anchor of precision 1 needs at level ``delta``: the first look at which its lower
    bound exceeds ``low`` (threshold - epsilon_stop), the cheapest certification of an anchor that is not empty."""
    target = next_look(np.ones(1), np.array([-1]), delta, lambda lower, upper: lower > low,
                       np.array([LOOK_COUNTS[-1]]))[0]
    return int(LOOK_COUNTS[target])


def would_pass(mean: float, look: int, delta: float, threshold: float) -> bool:
    """Whether the lower bound at ``look`` (level ``look_level(look, delta)``) of an anchor of this ``mean``
    exceeds ``threshold``."""
    level = look_level(np.array([look]), delta) / LOOK_COUNTS[look]
    return bool(kl_lower_bound(np.array([mean]), level)[0] > threshold)
