"""The anchor search's statistics: pooling, pairing, the precision check, on generated known-answer problems."""
import logging

import numpy as np
import pytest

from anchor_problems import AnchorProblem, P_SAMPLE, generate, make_problem
from imgexplain import AnchorImage
from imgexplain.anchors.sampler import PerturbationSampler
from imgexplain.anchors.bandit import LOOK_COUNTS, kl_lower_bound, look_level
from imgexplain.anchors.check import check_share
from imgexplain.anchors.samples import SampleStore
from imgexplain.anchors.search import AnchorSearch, SearchSettings
from imgexplain.predictor import LabelPredictor

FAMILY = generate(24)


def explain(problem, seed=0, **kwargs):
    explainer = AnchorImage(problem.predictor(), problem.image().shape, segmentation_fn=lambda image: problem.segments(),
                            images_background=problem.backgrounds(), seed=seed)
    return explainer.explain(problem.image(), **{**problem.explain_kwargs(), **kwargs})


def noisy_single(precision=0.85, n_features=8):
    """Class 1 iff superpixel 0 is intact, flipped on a fixed 1 - ``precision`` share of the masks."""
    return AnchorProblem(seed=7, index=0, kind="noisy and", n_features=n_features, threshold=0.95, beam_size=1,
                         tau=0.25, required=(0,), weights=np.zeros(n_features), cut=0.0, noise=1 - precision,
                         n_backgrounds=0)


def test_generator_mixes_what_the_issue_asks_for():
    family = generate(120)
    assert {p.kind for p in family} == {"and", "linear", "noisy and", "noisy linear"}
    assert {p.threshold for p in family} == {0.9, 0.95} and {p.beam_size for p in family} == {1, 2}
    assert min(p.n_features for p in family) >= 8 and max(p.n_features for p in family) <= 30
    assert any(p.n_backgrounds for p in family)
    assert make_problem(5).required == family[5].required  # one problem rebuilt alone is the same


@pytest.mark.parametrize("problem", [p for p in FAMILY if p.kind == "and"][:3], ids=lambda p: f"and{p.index}")
def test_generator_true_precision_of_and_rules(problem):
    """Exact by enumeration up to 14 free superpixels, else within sampling error of 10,000 samples."""
    required = list(problem.required)

    def tolerance(anchor):
        return 1e-12 if problem.n_features - len(anchor) <= 14 else 0.02

    assert problem.true_precision(required) == 1.0
    assert problem.true_precision(required[1:]) == pytest.approx(1 - P_SAMPLE, abs=tolerance(required[1:]))
    assert problem.true_precision([]) == pytest.approx((1 - P_SAMPLE) ** len(required), abs=tolerance([]))


def test_generator_noise_and_the_unperturbed_image():
    problem = noisy_single(0.85, n_features=12)
    assert problem.holds(np.ones((1, 12), dtype=bool))[0]
    assert problem.true_precision([0]) == pytest.approx(0.85, abs=0.03)
    wide = noisy_single(0.85, n_features=24)  # 2^23 masks: fresh samples instead of enumeration
    assert wide.true_precision([0]) == pytest.approx(0.85, abs=0.02)


def test_pair_identity_is_exact():
    """mu_j - mu_i = q (b - a) on a noisy linear rule, every term computed by enumeration."""
    problem = next(p for p in FAMILY if p.kind == "noisy linear" and p.n_features <= 16)
    i, j = (0, 3), (0, 5)
    a = _conditional_precision(problem, i, not_all_of=[5])
    b = _conditional_precision(problem, j, not_all_of=[3])
    q = 1 - (1 - P_SAMPLE)
    assert problem.true_precision(j) - problem.true_precision(i) == pytest.approx(q * (b - a), abs=1e-12)


def _conditional_precision(problem, anchor, not_all_of):
    free = [k for k in range(problem.n_features) if k not in anchor]
    bits = ((np.arange(2 ** len(free))[:, None] >> np.arange(len(free))) & 1).astype(bool)
    masks = np.ones((len(bits), problem.n_features), dtype=bool)
    masks[:, free] = bits
    weights = (1 - P_SAMPLE) ** bits.sum(axis=1) * P_SAMPLE ** (~bits).sum(axis=1)
    inside = ~masks[:, not_all_of].all(axis=1)
    return np.sum(weights * problem.holds(masks) * inside) / np.sum(weights * inside)


def stored(problem, requests, seed=0):
    """A SampleStore holding ``requests`` [(anchor, n)] of ``problem``, labelled by its rule."""
    rng = np.random.default_rng(seed)
    store = SampleStore(problem.n_features, 100, 10)
    for anchor, n in requests:
        masks = rng.random((n, problem.n_features)) >= P_SAMPLE
        masks[:, list(anchor)] = True
        drawn_for = np.zeros_like(masks)
        drawn_for[:, list(anchor)] = True
        store.add(masks, drawn_for, problem.holds(masks), np.zeros(n, dtype=np.intp))
    return store


def test_samples_drawn_for_a_superset_never_count_for_a_subset():
    """Samples drawn for {0, 1} keep 1 by force: counting them for {0} would raise its precision 0.5 to 1."""
    problem = AnchorProblem(seed=0, index=0, kind="and", n_features=8, threshold=0.9, beam_size=1, tau=0.25,
                            required=(1,), weights=np.zeros(8), cut=0.0, noise=0.0, n_backgrounds=0)
    store = stored(problem, [((0, 1), 2000), ((0,), 2000), ((), 2000)])
    positives, n_samples = store.counts([(0,), (0, 1), ()])
    assert n_samples.tolist() == pytest.approx([2000 + 1000, 2000 + 1000 + 500, 2000], rel=0.08)
    assert positives[0] / n_samples[0] == pytest.approx(0.5, abs=0.04)
    assert positives[1] == n_samples[1]


def test_store_counts_each_sample_once():
    """Counts and pair counts equal a recount row by row, however many anchors the samples serve."""
    problem = next(p for p in FAMILY if p.kind == "noisy linear")
    anchors = [(0, 2), (0, 3), (2, 3), (1, 2)]
    store = stored(problem, [((0,), 300), ((2,), 300), ((0, 2), 100), ((2, 3), 100), ((), 300)], seed=1)
    positives, n_samples = store.counts(anchors)
    first, second = np.array([0, 0, 1, 3]), np.array([1, 2, 2, 0])
    pos_a, n_a, pos_b, n_b, q = store.pair_counts(anchors, first, second, P_SAMPLE)
    masks, drawn, held = store.masks[:store.size], store.drawn_for[:store.size], store.held[:store.size]

    def valid(anchor):
        members = np.isin(np.arange(problem.n_features), anchor)
        return masks[:, members].all(axis=1) & ~drawn[:, ~members].any(axis=1)

    for k, anchor in enumerate(anchors):
        assert n_samples[k] == valid(anchor).sum() and positives[k] == (valid(anchor) & held).sum()
    for k, (i, j) in enumerate(zip(first, second)):
        only_i = [f for f in anchors[i] if f not in anchors[j]]
        only_j = [f for f in anchors[j] if f not in anchors[i]]
        in_a = valid(anchors[i]) & ~masks[:, only_j].all(axis=1)
        in_b = valid(anchors[j]) & ~masks[:, only_i].all(axis=1)
        assert (n_a[k], pos_a[k], n_b[k], pos_b[k]) == (in_a.sum(), (in_a & held).sum(), in_b.sum(),
                                                       (in_b & held).sum())
        assert q[k] == 1 - (1 - P_SAMPLE) ** len(only_j)


@pytest.mark.parametrize("problem", [p for p in FAMILY if p.kind == "and"][:4], ids=lambda p: f"and{p.index}")
def test_and_rules_give_exactly_the_rule(problem):
    explanation = explain(problem)
    assert explanation.success
    assert sorted(explanation.raw["feature"]) == list(problem.required)
    assert explanation.precision == 1.0


def test_generated_problems_get_a_sound_anchor():
    """Every problem of the family has a known answer, so every search succeeds, and no anchor returned is below
    threshold - epsilon_stop."""
    epsilon_stop = 0.05
    for problem in FAMILY[:12]:
        explanation = explain(problem)
        assert explanation.success, problem
        assert problem.true_precision(explanation.raw["feature"]) >= problem.threshold - epsilon_stop


def test_a_superpixel_clearly_below_the_threshold_is_never_the_anchor(caplog):
    """True precision 0.85 < 0.95 - 0.05 for {0}: over many seeds, {0} alone is never returned as passing, nor
    listed as a certified alternative. (Some large anchors are exact on 8 superpixels, where the noise's hash
    leaves their few masks unflipped: they may pass, and every one that does is checked against the truth.)"""
    problem = noisy_single(0.85)
    assert problem.true_precision([0]) < 0.88
    caplog.set_level(logging.ERROR)
    successes = 0
    for seed in range(30):
        explanation = explain(problem, seed=seed)
        successes += explanation.success
        assert not explanation.success or problem.true_precision(explanation.raw["feature"]) >= 0.9
        certified = [alternative["feature"] for alternative in explanation.alternatives if alternative["certified"]]
        assert all(problem.true_precision(anchor) >= 0.9 for anchor in certified) and [0] not in certified
    assert successes  # the precision assertion above ran


def search_on(problem, seed):
    """The search AnchorImage.explain would run on ``problem``, before any sample is drawn."""
    predictor = LabelPredictor(problem.predictor(), problem.image().shape, np.float32)
    sampler = PerturbationSampler(problem.image(), problem.segments(), predictor, None, P_SAMPLE,
                                  np.random.default_rng(seed))
    settings = SearchSettings(threshold=problem.threshold, delta=0.1, tau=problem.tau, batch_size=100,
                              coverage_samples=100, beam_size=1, stop_on_first=False, max_anchor_size=None,
                              min_samples_start=100, n_covered_ex=0, initial_capacity=1000, capacity_margin=100,
                              epsilon_stop=0.05, rounds="adaptive", log=None, log_every=1)
    return AnchorSearch(sampler, 1, settings)


def test_precision_check_waits_for_the_lower_bound():
    """An anchor of true precision 0.85 whose first ten samples all held (mean 1 >= 0.95) must not pass until
    its lower bound clears threshold - epsilon_stop, which with more samples it never does."""
    problem = noisy_single(0.85)
    for seed in range(10):
        search = search_on(problem, seed)
        rng = np.random.default_rng(seed)
        masks = rng.random((200, problem.n_features)) >= P_SAMPLE
        masks[:, 0] = True
        masks = masks[problem.holds(masks)][:10]
        drawn_for = np.zeros_like(masks)
        drawn_for[:, 0] = True
        search.store.add(masks, drawn_for, np.ones(10, dtype=bool), np.zeros(10, dtype=np.intp))
        checked, means, lowers, passes = search._check_precision([(0,)], 0.1 * check_share(1) / problem.n_features, 0)
        assert checked == [(0,)] and not passes[0]
        assert search.store.size > 10  # it sampled before deciding


@pytest.mark.parametrize("rounds", ["adaptive", "fixed"])
def test_reference_rounds_find_the_same_known_answer(rounds):
    problem = next(p for p in FAMILY if p.kind == "and" and len(p.required) == 2)
    explanation = explain(problem, rounds=rounds)
    assert sorted(explanation.raw["feature"]) == list(problem.required)
    assert explanation.meta["params"]["rounds"] == rounds


def test_rounds_must_be_known():
    problem = FAMILY[0]
    with pytest.raises(ValueError, match="rounds must be one of"):
        explain(problem, rounds="fast")


def add_samples(search, anchor, held):
    """Store samples drawn for ``anchor`` that kept everything, labelled ``held``."""
    held = np.asarray(held, dtype=bool)
    masks = np.ones((len(held), search.n_features), dtype=bool)
    drawn_for = np.zeros_like(masks)
    drawn_for[:, list(anchor)] = True
    search.store.add(masks, drawn_for, held, np.zeros(len(held), dtype=np.intp))


def test_a_look_uses_the_first_samples_of_the_anchor_in_drawing_order():
    """16 changed labels, then 100 held: the last look (100 samples) holds the 16 changed ones; a look at the
    last 100 samples would see none of them and a precision of 1."""
    search = search_on(noisy_single(0.85), 0)
    add_samples(search, (0,), [False] * 16 + [True] * 100)
    look = search._look([(0,)], since=0, delta=0.01)
    count = LOOK_COUNTS[look.index[0]]
    assert look.n_valid[0] == 116 and count == 100
    assert look.means[0] == pytest.approx((count - 16) / count)
    assert look.lowers[0] == pytest.approx(
        kl_lower_bound(np.array([(count - 16) / count]), look_level(look.index, 0.01) / count)[0])


def test_a_look_counts_only_the_samples_stored_since_the_step_began():
    search = search_on(noisy_single(0.85), 0)
    add_samples(search, (0,), [True] * 200)
    since = search.store.size
    add_samples(search, (0,), [True] * 10 + [False] * 10)
    look = search._look([(0,)], since=since, delta=0.01)
    assert look.n_valid[0] == 20 and look.means[0] == pytest.approx(10 / 20)


def test_later_steps_check_only_samples_drawn_after_their_candidates_were_known(monkeypatch):
    """At size 1 every sample counts (the candidates, all superpixels, are fixed before any draw); at size 2
    only those stored after the step began."""
    problem = next(p for p in FAMILY if p.kind == "and" and len(p.required) == 2)
    search = search_on(problem, 0)
    seen = []
    check = AnchorSearch._check_precision

    def recording(self, anchors, delta, since, *others):
        seen.append((len((anchors or others[0])[0]), since, self.store.size))
        return check(self, anchors, delta, since, *others)

    monkeypatch.setattr(AnchorSearch, "_check_precision", recording)
    search.run()
    assert seen[0][:2] == (1, 0) and {size for size, _, _ in seen} == {1, 2}
    assert all((since == 0) == (size == 1) for size, since, _ in seen)


def test_the_checks_share_of_delta_over_sizes_sums_to_one():
    assert sum(check_share(size) for size in range(1, 10 ** 5)) == pytest.approx(1.0, abs=1e-4)
    assert check_share(1) > check_share(2) > check_share(8)


def test_anchors_just_below_the_claim_are_rarely_returned_as_successes(caplog):
    """True precision 0.89, just below threshold - epsilon_stop = 0.90: over 40 seeds at delta 0.1, at most a
    few successes (the budget allows 4 in expectation; a sound check has essentially none)."""
    problem = noisy_single(0.89)
    assert problem.true_precision([0]) < 0.9
    caplog.set_level(logging.ERROR, logger="imgexplain")  # restored after the test
    explanations = [explain(problem, seed=seed) for seed in range(40)]
    false = [e.success and problem.true_precision(e.raw["feature"]) < 0.9 for e in explanations]
    assert sum(false) <= 2
