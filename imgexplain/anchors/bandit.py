"""KL confidence bounds for Bernoulli means and the KL-LUCB arm selection (Kaufmann & Kalyanakrishnan, 2013)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

_BISECTION_STEPS = 16


def kl_bernoulli(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL divergence between Bernoulli(p) and Bernoulli(q), elementwise."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    q = np.clip(q, 1e-7, 1 - 1e-7)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def kl_upper_bound(mean: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Largest q >= mean with KL(mean, q) <= level, by bisection."""
    mean = np.asarray(mean, dtype=float)
    low = mean.copy()
    high = np.minimum(mean + np.sqrt(np.asarray(level) / 2.0), 1.0)
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        too_far = kl_bernoulli(mean, middle) > level
        high = np.where(too_far, middle, high)
        low = np.where(too_far, low, middle)
    return high


def kl_lower_bound(mean: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Smallest q <= mean with KL(mean, q) <= level, by bisection."""
    mean = np.asarray(mean, dtype=float)
    high = mean.copy()
    low = np.clip(mean - np.sqrt(np.asarray(level) / 2.0), 0.0, 1.0)
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        too_far = kl_bernoulli(mean, middle) > level
        low = np.where(too_far, middle, low)
        high = np.where(too_far, high, middle)
    return low


def lucb_exploration_rate(n_arms: int, step: int, delta: float) -> float:
    """The exploration rate beta(t) of KL-LUCB used by the Anchors reference (alpha = 1.1, k = 405.5)."""
    rate = np.log(405.5 * n_arms * step ** 1.1 / delta)
    return float(rate + np.log(rate))


def kl_lucb(
    positives: np.ndarray,
    n_samples: np.ndarray,
    sample_arms: Callable[[Sequence[int]], tuple[np.ndarray, np.ndarray]],
    top_n: int,
    epsilon: float,
    delta: float,
    log: Callable[[str], None] | None = None,
    log_every: int = 1,
) -> np.ndarray:
    """Indices of the ``top_n`` arms with the highest mean, within ``epsilon`` with probability 1 - delta.

    ``positives`` and ``n_samples`` hold each arm's statistics so far (updated in place).
    ``sample_arms(arms)`` draws a batch for each arm listed and returns the new (positives, n_samples) of
    *every* arm, so that samples one arm's draw also gives to another are counted.
    """
    n_arms = len(positives)
    if n_arms <= top_n:
        return np.arange(n_arms)
    step = 1
    while True:
        means = positives / n_samples
        order = np.argsort(means, kind="stable")
        best, rest = order[-top_n:], order[:-top_n]
        level = lucb_exploration_rate(n_arms, step, delta)
        upper = kl_upper_bound(means[rest], level / n_samples[rest])
        lower = kl_lower_bound(means[best], level / n_samples[best])
        challenger = rest[np.argmax(upper)]
        weakest = best[np.argmin(lower)]
        gap = upper.max() - lower.min()
        if gap <= epsilon:
            return best
        if log is not None and step % log_every == 0:
            log(f"KL-LUCB step {step}: best arm {weakest} (mean {means[weakest]:.3f}, n {n_samples[weakest]:.0f}, "
                f"lb {lower.min():.3f}), challenger {challenger} (mean {means[challenger]:.3f}, "
                f"n {n_samples[challenger]:.0f}, ub {upper.max():.3f}), gap {gap:.3f}")
        positives[:], n_samples[:] = sample_arms([weakest, challenger])
        step += 1
