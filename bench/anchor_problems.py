"""A seeded generator of anchor problems whose true precision is known for any anchor.

Each problem is a tiny textured image of K superpixels (2x2 pixel blocks in a row, K from 8 to 30) and a
predictor that reads which superpixels are intact and applies a rule to that mask:

- ``and``: class 1 iff every superpixel of a set R (1 to 3 of them) is intact;
- ``linear``: class 1 iff the intact superpixels' weights sum to at least a fraction of the total;
- ``noisy and`` / ``noisy linear``: the same, with the label flipped on a fixed pseudo-random share of the
  masks (from 1% to 1% short of 1 - threshold; never on the unperturbed image), so that no anchor is exact
  while the rule's own superpixels still pass the threshold (a known answer exists).

The label depends on the mask alone and the same mask always gets the same label (deterministic models).
The true precision of an anchor is computed exactly by enumerating every mask of the other superpixels when
there are at most 2^14 of them, and otherwise on 10,000 fresh samples.

Imported by bench/anchors.py, by the alibi worker (its own virtual environment: numpy only, numpy 1 and 2)
and by the tests.
"""
from dataclasses import dataclass

import numpy as np

P_SAMPLE = 0.5
KINDS = ("and", "linear", "noisy and", "noisy linear")
ENUMERATION_LIMIT = 14
FRESH_SAMPLES = 10000


@dataclass
class AnchorProblem:
    """One generated problem: the rule, and the arguments of the search on it."""

    seed: int
    index: int
    kind: str
    n_features: int
    threshold: float
    beam_size: int
    tau: float
    required: tuple          # R of the ``and`` rules; empty for linear rules
    weights: np.ndarray      # weights of the linear rules; all zero for ``and`` rules
    cut: float               # linear rules: class 1 iff kept weight >= cut * total weight
    noise: float             # share of masks whose label is flipped
    n_backgrounds: int       # 0: perturbed superpixels take their mean value

    def holds(self, masks: np.ndarray) -> np.ndarray:
        """Whether the instance's class holds for each (N, K) boolean mask (True = intact)."""
        masks = np.asarray(masks, dtype=bool)
        if self.required:
            holds = masks[:, list(self.required)].all(axis=1)
        else:
            holds = masks @ self.weights >= self.cut * self.weights.sum()
        if self.noise:
            flipped = _pseudo_uniform(masks, self.seed, self.index) < self.noise
            holds = holds ^ (flipped & ~masks.all(axis=1))
        return holds

    def true_precision(self, anchor) -> float:
        """P(class holds) when the ``anchor`` superpixels are kept and every other one is perturbed with
        probability P_SAMPLE: exact by enumeration, or on FRESH_SAMPLES seeded samples."""
        anchor = sorted(int(feature) for feature in anchor)
        free = [k for k in range(self.n_features) if k not in anchor]
        if len(free) <= ENUMERATION_LIMIT:
            bits = (np.arange(2 ** len(free))[:, None] >> np.arange(len(free))) & 1
            masks = np.ones((len(bits), self.n_features), dtype=bool)
            masks[:, free] = bits.astype(bool)
            kept = bits.sum(axis=1)
            weights = (1 - P_SAMPLE) ** kept * P_SAMPLE ** (len(free) - kept)
            return float(np.sum(weights * self.holds(masks)))
        rng = np.random.default_rng([self.seed, self.index, *anchor])
        masks = rng.random((FRESH_SAMPLES, self.n_features)) >= P_SAMPLE
        masks[:, anchor] = True
        return float(self.holds(masks).mean())

    def image(self) -> np.ndarray:
        """(2, 2K, 3) float32 texture; superpixel k is the 2x2 block of columns 2k and 2k + 1."""
        rng = np.random.default_rng([self.seed, self.index, 1])
        return rng.uniform(0, 255, (2, 2 * self.n_features, 3)).astype(np.float32)

    def segments(self) -> np.ndarray:
        return np.tile(np.repeat(np.arange(self.n_features), 2), (2, 1))

    def backgrounds(self):
        if not self.n_backgrounds:
            return None
        rng = np.random.default_rng([self.seed, self.index, 2])
        return rng.uniform(0, 255, (self.n_backgrounds, 2, 2 * self.n_features, 3)).astype(np.float32)

    def predictor(self):
        return RulePredictor(self)

    def explain_kwargs(self) -> dict:
        return {"threshold": self.threshold, "tau": self.tau, "beam_size": self.beam_size, "p_sample": P_SAMPLE,
                "batch_size": 100}


class RulePredictor:
    """(N, 2, 2K, 3) images -> (N, 2) probabilities: class 1 iff the problem's rule holds on the intact mask."""

    def __init__(self, problem: AnchorProblem):
        self.problem = problem
        self.reference = problem.image()[0, 0::2, 0]

    def __call__(self, images):
        masks = np.asarray(images)[:, 0, 0::2, 0] == self.reference
        holds = self.problem.holds(masks)
        return np.stack([~holds, holds], axis=1).astype(np.float32)


def generate(n: int = 120, seed: int = 0) -> list:
    """``n`` problems (see :func:`make_problem`), cycling through the rule kinds."""
    return [make_problem(index, seed) for index in range(n)]


def make_problem(index: int, seed: int = 0) -> AnchorProblem:
    """Problem ``index`` of the family ``seed``: K in 8..30, thresholds 0.9 and 0.95, beam sizes 1 and 2,
    tau 0.15 and 0.25, label noise below 1 - threshold and, for about one problem in four, background images."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    n_features = int(rng.integers(8, 31))
    required, weights, cut = (), np.zeros(n_features), 0.0
    if kind.endswith("and"):
        required = tuple(sorted(int(k) for k in rng.choice(n_features, int(rng.integers(1, 4)), replace=False)))
    else:
        weights = rng.gamma(0.5, size=n_features)
        cut = float(rng.uniform(0.5, 0.75))
    threshold = (0.9, 0.95)[int(rng.integers(2))]
    return AnchorProblem(
        seed=seed, index=index, kind=kind, n_features=n_features, threshold=threshold,
        beam_size=int(rng.integers(1, 3)), tau=(0.15, 0.25)[int(rng.integers(2))], required=required,
        weights=weights, cut=cut, noise=float(rng.uniform(0.01, 0.99 - threshold)) if kind.startswith("noisy") else 0.0,
        n_backgrounds=3 if rng.random() < 0.25 else 0)


def _pseudo_uniform(masks: np.ndarray, seed: int, index: int) -> np.ndarray:
    """A fixed number in [0, 1) for each mask, spread as if uniform (a hash of the mask's bits)."""
    multipliers = np.random.default_rng([seed, index, 3]).integers(1, 2 ** 31, masks.shape[1], dtype=np.int64)
    mixed = (masks.astype(np.int64) * multipliers).sum(axis=1) % 1000003
    return (mixed * 7919 % 1000003) / 1000003.0
