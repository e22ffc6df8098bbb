"""The precision check's arithmetic: the shares of delta of its routes, the looks of the reuse route (a fixed grid
of sample counts, the share of each anchor size, where the next look should be) and the bets and evidence of a
verification.

The check's lower bound is the explanation's claim; why it holds is written in
:mod:`imgexplain.anchors.certify`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from imgexplain.anchors.bandit import LOOK_COUNTS, kl_lower_bound, kl_upper_bound, look_level

# A round of the precision check goes at most to the first look with this many times the anchor's samples.
CHECK_GROWTH = 2
# An alternative is nearly certified when a look with at most this many times its samples would pass it.
NEARLY_GROWTH = 4
# Shares of delta: the empty anchor's verification, the other verifications of the search (see verification_delta);
# the reuse route's looks get the rest, of which SINGLE_SHARE goes to anchors of one superpixel (see check_share).
EMPTY_SHARE = 0.05
VERIFY_SHARE = 0.8
SINGLE_SHARE = 0.6
# A verification bets at most this share of what it may bet on one sample (1 / low), so that one changed label
# costs it at most log(1 / (1 - BET_CAP)) nats of evidence.
BET_CAP = 0.9
# The first bets of a verification assume this many samples of precision (1 + low) / 2 (see bets).
PRIOR_SAMPLES = 2


def check_share(size: int) -> float:
    """Share of the reuse route's delta for the precision checks of anchors with ``size`` superpixels (1 or more).

    Parameters
    ----------
    size : int
        Number of superpixels of the anchor.

    Returns
    -------
    float
        ``SINGLE_SHARE`` for one superpixel and, for size k >= 2, the rest times 2 / (k (k + 1)); the shares of all
        sizes sum to 1. Small anchors get the larger shares: they are the cheap explanations, whose cost the check's
        level dominates, while a large anchor's cost is mostly the search that found it.
    """
    if size == 1:
        return SINGLE_SHARE
    return (1.0 - SINGLE_SHARE) * 2.0 / (size * (size + 1))


def reuse_delta(delta: float, size: int) -> float:
    """The reuse route's delta for the precision checks of anchors with ``size`` superpixels (1 or more): its share
    of ``delta``, 1 - EMPTY_SHARE - VERIFY_SHARE, times :func:`check_share`.

    Parameters
    ----------
    delta : float
        The explanation's delta.
    size : int
        Number of superpixels of the anchor.

    Returns
    -------
    float

    Examples
    --------
    >>> from imgexplain.anchors.check import empty_delta, reuse_delta, verification_delta
    >>> round(empty_delta(0.1), 3), round(reuse_delta(0.1, 1), 3), round(verification_delta(0.1, 1), 4)
    (0.005, 0.009, 0.0486)
    """
    return delta * (1.0 - EMPTY_SHARE - VERIFY_SHARE) * check_share(size)


def empty_delta(delta: float) -> float:
    """The delta of the empty anchor's verification: EMPTY_SHARE ``delta``."""
    return delta * EMPTY_SHARE


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


def bets(positives: np.ndarray, n_samples: np.ndarray, low: float) -> np.ndarray:
    """What a verification bets on each sample that the anchor's label holds: Kelly's bet (:func:`kelly_bets`) for
    the anchor's precision as the samples before it show it (:func:`expected_precision`).

    Parameters
    ----------
    positives, n_samples : ndarray of float
        For each sample, how many of the anchor's samples before it held, and how many there were.
    low : float
        The value the precision must exceed (threshold - epsilon_stop).

    Returns
    -------
    ndarray of float
    """
    return kelly_bets(expected_precision(positives, n_samples, low), low)


def expected_precision(positives: np.ndarray, n_samples: np.ndarray, low: float) -> np.ndarray:
    """The precision a verification expects from ``n_samples`` samples of which ``positives`` held: their mean with
    PRIOR_SAMPLES more at (1 + low) / 2, so that the first bets of an anchor with no samples yet are moderate."""
    prior = PRIOR_SAMPLES * (1.0 + low) / 2.0
    return (np.asarray(positives, dtype=float) + prior) / (np.asarray(n_samples, dtype=float) + PRIOR_SAMPLES)


def kelly_bets(precision: np.ndarray, low: float) -> np.ndarray:
    """The bet that makes a verification's log wealth grow fastest when the anchor's precision is ``precision``,
    (p - low) / (low (1 - low)), capped at BET_CAP / ``low`` and 0 where p is not above ``low``. A ``low`` at or
    outside 0 or 1 (threshold 0 or 1) is taken just inside, where the bets stay finite."""
    low = float(np.clip(low, 1e-6, 1.0 - 1e-6))
    return np.clip((np.asarray(precision, dtype=float) - low) / (low * (1.0 - low)), 0.0, BET_CAP / low)


def evidence(held: np.ndarray, positives_before: int, n_before: int, low: float) -> np.ndarray:
    """The log of a verification's wealth after each of its samples: the sum over its samples of
    log(1 + bet (x - low)), x 1 where the label held and 0 where it changed, each bet fixed from the samples before
    it (:func:`bets`). While the anchor's precision is at most ``low`` the wealth is a nonnegative supermartingale
    that starts at 1, so by Ville's inequality it ever reaches 1 / delta with probability at most delta.

    Parameters
    ----------
    held : ndarray of bool
        The verification's samples in drawing order: whether the label held.
    positives_before, n_before : int
        The anchor's samples before the first of them (they set the first bets but are not counted).
    low : float
        The value the precision must exceed.

    Returns
    -------
    ndarray of float
        The log wealth after each sample.
    """
    x = np.asarray(held, dtype=float)
    positives = positives_before + np.concatenate([[0.0], np.cumsum(x)[:-1]])
    n_samples = n_before + np.arange(len(x), dtype=float)
    return np.cumsum(np.log1p(bets(positives, n_samples, low) * (x - low)))


def evidence_rate(precision: np.ndarray, low: float) -> np.ndarray:
    """Expected growth of a verification's log wealth per sample when the anchor's precision is ``precision`` and
    the bets are made for it (0 where it is not above ``low``)."""
    p = np.asarray(precision, dtype=float)
    bet = kelly_bets(p, low)
    return p * np.log1p(bet * (1.0 - low)) + (1.0 - p) * np.log1p(-bet * low)


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
