"""KL confidence bounds and KL-LUCB arm selection."""
import numpy as np
import pytest

from imgexplain.anchors.bandit import kl_bernoulli, kl_lower_bound, kl_lucb, kl_upper_bound


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


@pytest.mark.parametrize("top_n, expected", [(1, [3]), (2, [2, 3])])
def test_kl_lucb_finds_the_best_arms(top_n, expected):
    rng = np.random.default_rng(0)
    true_means = np.array([0.2, 0.4, 0.6, 0.9])
    positives = rng.binomial(10, true_means).astype(float)
    n_samples = np.full(4, 10.0)
    calls = []

    def sample_arms(arms):
        calls.append(list(arms))
        for arm in arms:
            positives[arm] += rng.binomial(100, true_means[arm])
            n_samples[arm] += 100
        return positives.copy(), n_samples.copy()

    chosen = kl_lucb(positives, n_samples, sample_arms, top_n=top_n, epsilon=0.1, delta=0.1)
    assert sorted(chosen.tolist()) == expected
    assert calls and all(len(arms) == 2 for arms in calls)


def test_kl_lucb_returns_every_arm_when_the_beam_holds_them_all():
    chosen = kl_lucb(np.array([1.0, 2.0]), np.array([5.0, 5.0]), lambda arms: None, top_n=2, epsilon=0.1, delta=0.1)
    assert chosen.tolist() == [0, 1]
