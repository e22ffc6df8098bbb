"""A seeded generator of anchor problems whose true precision is known for any anchor.

Each problem is a tiny textured image of K superpixels (2x2 pixel blocks in a row, K from 8 to 30) and a
predictor that reads which superpixels are intact and applies a rule to that mask:

- ``and``: class 1 iff every superpixel of a set R (1 to 3 of them) is intact;
- ``linear``: class 1 iff the intact superpixels' weights sum to at least a fraction of the total;
- ``noisy and`` / ``noisy linear``: the same, with the label flipped on a fixed pseudo-random share of the
  masks (from 1% to 1% short of 1 - threshold; never on the unperturbed image), so that no anchor is exact
  while the rule's own superpixels still pass the threshold (a known answer exists).

Besides this mixed family, the families of issue 19 (``FAMILIES``; :func:`generate` with ``family=``):

- ``cliff``: class 1 unless every superpixel of R (1 to 3) is perturbed and the mask falls in a fixed
  pseudo-random share, so the empty anchor's true precision lies in [threshold, threshold + 0.04], each
  superpixel of R alone is an anchor of precision near 1 (label noise up to 1%), and the cheap answer is one
  superpixel, not the borderline empty anchor;
- ``near-threshold k`` (k = 1, 2, 3): an AND rule on k superpixels with label noise such that the rule's own
  anchor has a true precision in [threshold, threshold + 0.03].

The bounds of these ranges are the true precisions, checked on each problem (a problem outside is drawn again
from the next sub-seed).

The label depends on the mask alone and the same mask always gets the same label (deterministic models).
The true precision of an anchor is computed exactly by enumerating every mask of the other superpixels when
there are at most 2^14 of them, and otherwise on 10,000 fresh samples.

A test helper, imported by the tests, and by bench/anchors.py and the alibi worker (its own virtual
environment: numpy only, numpy 1 and 2) through the tests folder that bench/__init__.py puts on the path.
"""
from dataclasses import dataclass

import numpy as np

P_SAMPLE = 0.5
KINDS = ("and", "linear", "noisy and", "noisy linear")
FAMILIES = ("mixed", "cliff", "near-threshold 1", "near-threshold 2", "near-threshold 3")
CLIFF_WIDTH = 0.04
NEAR_WIDTH = 0.03
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
    cliff: float = 0.0       # cliff rules: class 0 on this share of the masks that perturb all of R

    def holds(self, masks: np.ndarray) -> np.ndarray:
        """Whether the instance's class holds for each (N, K) boolean mask (True = intact)."""
        masks = np.asarray(masks, dtype=bool)
        uniform = _pseudo_uniform(masks, self.seed, self.index)
        if self.cliff:
            holds = masks[:, list(self.required)].any(axis=1) | (uniform < 1.0 - self.cliff)
        elif self.required:
            holds = masks[:, list(self.required)].all(axis=1)
        else:
            holds = masks @ self.weights >= self.cut * self.weights.sum()
        if self.noise:
            holds = holds ^ ((uniform < self.noise) & ~masks.all(axis=1))
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


def generate(n: int = 120, seed: int = 0, family: str = "mixed") -> list:
    """``n`` problems of ``family`` (see :func:`make_problem`); the mixed family cycles through the rule kinds."""
    return [make_problem(index, seed, family) for index in range(n)]


def make_problem(index: int, seed: int = 0, family: str = "mixed") -> AnchorProblem:
    """Problem ``index`` of ``family`` (one of ``FAMILIES``) and ``seed``: K in 8..30, thresholds 0.9 and 0.95,
    beam sizes 1 and 2, tau 0.15 and 0.25, and, for about one mixed problem in four, background images. Mixed:
    label noise below 1 - threshold. Cliff and near-threshold: see the module docstring."""
    if family == "mixed":
        return _mixed_problem(index, seed)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")
    for attempt in range(100):
        problem = _edge_problem(index, seed, family, attempt)
        if _in_range(problem):
            return problem
    raise RuntimeError(f"no {family} problem {index} of seed {seed} in range after 100 attempts")


def _mixed_problem(index: int, seed: int) -> AnchorProblem:
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


def _edge_problem(index: int, seed: int, family: str, attempt: int) -> AnchorProblem:
    """A cliff or near-threshold problem drawn from the sub-seed ``attempt``; :func:`_in_range` checks it."""
    rng = np.random.default_rng([seed, index, FAMILIES.index(family), attempt])
    n_features = int(rng.integers(8, 31))
    size = int(rng.integers(1, 4)) if family == "cliff" else int(family[-1])
    required = tuple(sorted(int(k) for k in rng.choice(n_features, size, replace=False)))
    threshold = (0.9, 0.95)[int(rng.integers(2))]
    if family == "cliff":
        noise = float(rng.uniform(0.0, 0.01))
        empty_precision = float(rng.uniform(threshold, threshold + CLIFF_WIDTH))
        cliff, noise = (1.0 - empty_precision - noise) / 0.5 ** size, noise
    else:
        cliff, noise = 0.0, 1.0 - float(rng.uniform(threshold, threshold + NEAR_WIDTH))
    return AnchorProblem(
        seed=seed, index=index, kind=family, n_features=n_features, threshold=threshold,
        beam_size=int(rng.integers(1, 3)), tau=(0.15, 0.25)[int(rng.integers(2))], required=required,
        weights=np.zeros(n_features), cut=0.0, noise=noise, n_backgrounds=0, cliff=cliff)


def _in_range(problem: AnchorProblem) -> bool:
    """Whether the family's defining precision (the empty anchor's for cliffs, the rule's own anchor's for
    near-threshold problems) lies in its range."""
    if problem.kind == "cliff":
        precision, width = problem.true_precision(()), CLIFF_WIDTH
    else:
        precision, width = problem.true_precision(problem.required), NEAR_WIDTH
    return problem.threshold <= precision <= problem.threshold + width


def _pseudo_uniform(masks: np.ndarray, seed: int, index: int) -> np.ndarray:
    """A fixed number in [0, 1) for each mask, spread as if uniform (a hash of the mask's bits)."""
    multipliers = np.random.default_rng([seed, index, 3]).integers(1, 2 ** 31, masks.shape[1], dtype=np.int64)
    mixed = (masks.astype(np.int64) * multipliers).sum(axis=1) % 1000003
    return (mixed * 7919 % 1000003) / 1000003.0
