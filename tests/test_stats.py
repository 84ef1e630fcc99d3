"""Intervals that count the seed-to-seed (training) variance as well as the episode variance."""

import math

import numpy as np
import pytest

from bench.stats import Interval, mean_ci95, paired_two_level_ci, two_level_ci, welch_ci

T_1, T_2 = 12.7062047, 4.3026527  # 97.5% quantiles of t with 1 and 2 degrees of freedom (tables)


def test_two_level_interval_by_hand():
    """An additive 2 x 3 matrix (no interaction): seed effects 0, 1 and episode effects 0, 2, 4.
    MS_seeds = 3 * var(2, 3) = 1.5, MS_episodes = 2 * var(0.5, 2.5, 4.5) = 8, MS_interaction = 0."""
    interval = two_level_ci([[0, 2, 4], [1, 3, 5]])
    assert interval.mean == 2.5
    assert interval.half_width == pytest.approx(math.sqrt(T_2**2 * 8 / 6 + T_1**2 * 1.5 / 6), rel=1e-6)


def test_one_seed_gives_the_run_s_own_episode_interval():
    values = [0.2, 0.9, 0.4, 0.7, 0.6]
    mean, half = mean_ci95(values)
    interval = two_level_ci([values])
    assert interval.mean == pytest.approx(mean)
    assert interval.half_width == pytest.approx(half * 2.7764451 / 1.96, rel=1e-6)  # t with 4 degrees of freedom


def test_paired_interval_by_hand():
    """Two single-seed methods: the interval of the per-episode differences."""
    a, b = [[1.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 0.0]]
    d = [1.0, 0.0, 0.0, 1.0]
    mean, half = mean_ci95(d)
    interval = paired_two_level_ci(a, b)
    assert interval.mean == pytest.approx(0.5)
    assert interval.half_width == pytest.approx(half * 3.1824463 / 1.96, rel=1e-6)  # t with 3 degrees of freedom


def simulate(seeds, episodes, seed_sd, episode_sd, noise_sd, reports, rng):
    """Simulated reports of two methods on shared episodes; true means 0.90 and 0.85."""
    covered = {"two_level": 0, "pooled": 0, "paired": 0, "paired_episodes_only": 0}
    for _ in range(reports):
        shared = rng.normal(0, episode_sd, episodes)
        a = 0.90 + rng.normal(0, seed_sd, (seeds, 1)) + shared + rng.normal(0, noise_sd, (seeds, episodes))
        own = 0.8 * shared + rng.normal(0, 0.6 * episode_sd, episodes)
        b = 0.85 + rng.normal(0, 1.5 * seed_sd, (seeds, 1)) + own + rng.normal(0, noise_sd, (seeds, episodes))
        interval = two_level_ci(a)
        covered["two_level"] += abs(interval.mean - 0.90) <= interval.half_width
        mean, half = mean_ci95(a.flatten().tolist())  # seeds x episodes pooled as independent values
        covered["pooled"] += abs(mean - 0.90) <= half
        paired = paired_two_level_ci(a, b)
        covered["paired"] += abs(paired.mean - 0.05) <= paired.half_width
        mean, half = mean_ci95((a.mean(0) - b.mean(0)).tolist())
        covered["paired_episodes_only"] += abs(mean - 0.05) <= half
    return {k: v / reports for k, v in covered.items()}


@pytest.mark.parametrize("seeds,episodes,seed_sd", [(3, 300, 0.03), (5, 200, 0.01), (3, 300, 0.0)])
def test_coverage_of_simulated_reports(seeds, episodes, seed_sd):
    """With known seed, episode and interaction variance, the two-level intervals cover the
    true mean in about 95% of reports; pooling seeds and episodes does not, once seeds vary."""
    coverage = simulate(seeds, episodes, seed_sd, 0.1, 0.05, reports=600, rng=np.random.default_rng(seeds))
    assert 0.92 <= coverage["two_level"] <= 0.99, coverage
    assert 0.92 <= coverage["paired"] <= 0.99, coverage
    if seed_sd > 0.02:
        assert coverage["pooled"] < 0.6 and coverage["paired_episodes_only"] < 0.6, coverage


def test_welch_interval_by_hand():
    # variances 1 and 1, n 3 and 3: se^2 = 2/3, Welch-Satterthwaite df = 4, t(0.975, 4) = 2.7764451
    got = welch_ci([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
    assert got.mean == pytest.approx(3.0)
    assert got.half_width == pytest.approx(2.7764451 * math.sqrt(2 / 3), rel=1e-6)
    # one sample without spread: the other's variance alone, on its own n - 1 = 2 degrees of freedom
    uneven = welch_ci([0.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    assert uneven.mean == pytest.approx(1.0)
    assert uneven.half_width == pytest.approx(T_2 * math.sqrt(4 / 3), rel=1e-6)
    assert welch_ci([1.0, 1.0], [0.0, 0.0]) == Interval(1.0, 0.0)
    with pytest.raises(ValueError):
        welch_ci([1.0], [0.0, 1.0])
