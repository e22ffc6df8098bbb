"""KL confidence bounds, time-uniform levels and KL-LUCB with pairwise bounds."""
import numpy as np
import pytest

from imgexplain.anchors.bandit import (FIRST_EPOCHS, FIRST_EPOCHS_SHARE, LOOK_COUNTS, MIN_ROUND, _Levels, epoch_delta,
                                       kl_bernoulli, kl_lower_bound, kl_lucb,
                                       kl_upper_bound, last_look, look_level, pair_gap_bounds, uniform_level)


def test_kl_bernoulli_known_values():
    assert kl_bernoulli(np.array(0.5), np.array(0.5)) == pytest.approx(0.0)
    assert kl_bernoulli(np.array(1.0), np.array(0.9)) == pytest.approx(np.log(1 / 0.9), rel=1e-4)
    assert kl_bernoulli(np.array(0.5), np.array(0.25)) == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))


@pytest.mark.parametrize("mean", [0.05, 0.5, 0.9])
@pytest.mark.parametrize("level", [0.01, 0.1])
def test_bounds_sit_where_kl_reaches_the_level(mean, level):
    mean, level = np.array([mean]), np.array([level])
    upper, lower = kl_upper_bound(mean, level), kl_lower_bound(mean, level)
    assert lower[0] < mean[0] < upper[0]
    np.testing.assert_allclose(kl_bernoulli(mean, upper), level, rtol=1e-3)
    np.testing.assert_allclose(kl_bernoulli(mean, lower), level, rtol=1e-3)


def test_bounds_stay_in_the_unit_interval():
    assert kl_upper_bound(np.array([1.0]), np.array([0.5]))[0] == 1.0
    assert kl_lower_bound(np.array([0.0]), np.array([0.5]))[0] == 0.0


def test_uniform_level_holds_at_every_sample_count():
    """Over 1,000 looks, the lower bound at the time-uniform level is crossed in fewer than delta of the runs;
    the fixed level log(1 / delta), valid for one look only, is crossed far more often."""
    rng = np.random.default_rng(0)
    mu, delta, looks = 0.8, 0.2, 1000
    means = np.cumsum(rng.random((1000, looks)) < mu, axis=1) / np.arange(1, looks + 1)
    n = np.arange(1, looks + 1)

    def crossed(level):
        return np.mean(np.any(kl_lower_bound(means, level / n) > mu, axis=1))

    assert crossed(uniform_level(n, delta)) <= delta
    assert crossed(np.full(looks, np.log(1 / delta))) > 1.5 * delta


def test_look_levels_hold_at_every_look_at_once():
    """Looking at the first LOOK_COUNTS[k] draws with level look_level(k, delta), the lower bound is above the
    mean at some look in fewer than delta of the runs; the same looks at the fixed level log(1 / delta), without
    the looks' weights, are wrong far more often."""
    rng = np.random.default_rng(1)
    mu, delta, n_looks = 0.9, 0.2, 30
    counts = LOOK_COUNTS[:n_looks]
    positives = np.cumsum(rng.random((2000, counts[-1])) < mu, axis=1)[:, counts - 1]
    means = positives / counts

    def wrong(level):
        return np.mean(np.any(kl_lower_bound(means, level / counts) > mu, axis=1))

    assert wrong(look_level(np.arange(n_looks), delta)) <= delta
    assert wrong(np.full(n_looks, np.log(1 / delta))) > 1.5 * delta


def test_looks_grow_geometrically_and_their_weights_sum_to_one():
    assert LOOK_COUNTS[0] == 16 and np.all(np.diff(LOOK_COUNTS) > 0)
    assert last_look(np.array([0, 15, 16, 19, 20])).tolist() == [-1, -1, 0, 0, 1]
    weights = np.exp(-look_level(np.arange(10 ** 6), 1.0))
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)


def test_uniform_level_is_flat_over_the_first_epochs_then_grows_slowly():
    levels = uniform_level(np.array([1, 10, 1000, 2 ** FIRST_EPOCHS, 10 ** 6]), 0.05)
    assert levels[0] == levels[1] == levels[2] > np.log(1 / 0.05)
    assert levels[2] < levels[3] < levels[4] < 2.5 * levels[0]  # about 2 log log n more


def test_the_epochs_shares_sum_to_delta():
    shares = epoch_delta(np.arange(10 ** 6), 0.05)
    assert shares.sum() == pytest.approx(0.05, rel=1e-5)
    assert shares[0] == pytest.approx(0.05 * FIRST_EPOCHS_SHARE / FIRST_EPOCHS)


def test_pair_bound_is_q_times_the_bound_on_the_difference():
    levels = _Levels(0.05, 0.01)
    means, n = np.array([0.5, 0.5]), np.array([400.0, 400.0])
    cells = tuple(np.array([value]) for value in (90.0, 100.0, 85.0, 100.0, 0.5))
    gap = pair_gap_bounds(means, n, cells, np.array([0]), np.array([1]), levels)[0]
    expected = 0.5 * (kl_upper_bound(np.array([0.85]), levels.cell(np.array([100.0])))
                      - kl_lower_bound(np.array([0.9]), levels.cell(np.array([100.0]))))[0]
    assert gap == pytest.approx(expected)
    direct = pair_gap_bounds(means, n, None, np.array([0]), np.array([1]), levels)[0]
    assert direct > gap  # the pair settles what the arms' own bounds cannot yet


class Arms:
    """Independent Bernoulli arms that record every draw."""

    def __init__(self, true_means, seed=0):
        self.true_means = np.asarray(true_means)
        self.rng = np.random.default_rng(seed)
        self.positives = self.rng.binomial(10, self.true_means).astype(float)
        self.n = np.full(len(self.true_means), 10.0)
        self.draws = []

    def counts(self):
        return self.positives.copy(), self.n.copy()

    def draw(self, i, j, per_arm, open_arms):
        self.draws.append(per_arm)
        for arm in (i, j):
            self.positives[arm] += self.rng.binomial(per_arm, self.true_means[arm])
            self.n[arm] += per_arm


@pytest.mark.parametrize("top_n, expected", [(1, [3]), (2, [2, 3])])
@pytest.mark.parametrize("adaptive", [True, False])
def test_kl_lucb_finds_the_best_arms(top_n, expected, adaptive):
    arms = Arms([0.2, 0.4, 0.6, 0.9])
    chosen = kl_lucb(arms.counts, arms.draw, top_n=top_n, epsilon=0.1, delta=0.1, batch_size=100,
                     adaptive_rounds=adaptive)
    assert sorted(chosen.tolist()) == expected
    assert arms.draws
    if adaptive:
        assert min(arms.draws) >= MIN_ROUND
    else:
        assert set(arms.draws) == {100}


def test_kl_lucb_returns_every_arm_when_the_beam_holds_them_all():
    chosen = kl_lucb(lambda: (np.array([1.0, 2.0]), np.array([5.0, 5.0])), None, top_n=2, epsilon=0.1, delta=0.1)
    assert chosen.tolist() == [0, 1]
