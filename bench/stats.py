"""Pure statistics on plain numbers (no torch: the report uses them too)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% normal confidence interval, 1.96 * std / sqrt(n).

    Uses the sample standard deviation (n - 1); a single value has half-width 0.
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci95 of no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(var / n)


@dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its 95% interval."""

    mean: float
    half_width: float


def _t95(df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def _mean_squares(values) -> tuple[float, float, float, float, int, int]:
    """Grand mean and the two-way ANOVA mean squares (seeds, episodes, interaction) of a
    [seeds, episodes] matrix; then S and E."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    s, e = x.shape
    grand = float(x.mean())
    seed_means, episode_means = x.mean(axis=1), x.mean(axis=0)
    ms_seed = e * float(seed_means.var(ddof=1)) if s > 1 else 0.0
    ms_episode = s * float(episode_means.var(ddof=1)) if e > 1 else 0.0
    residual = x - seed_means[:, None] - episode_means[None, :] + grand
    ms_interaction = float((residual**2).sum()) / ((s - 1) * (e - 1)) if s > 1 and e > 1 else 0.0
    return grand, ms_seed, ms_episode, ms_interaction, s, e


def _seed_part(ms_seed: float, ms_interaction: float, s: int, e: int) -> float:
    """t-scaled variance of a mean over ``s`` seeds due to the seeds alone, var(seed) / S."""
    return _t95(s - 1) ** 2 * max(ms_seed - ms_interaction, 0.0) / (s * e) if s > 1 else 0.0


def two_level_ci(values) -> Interval:
    """95% interval of the mean of a [seeds, episodes] matrix (every seed tested on the same
    episodes) that counts both the seed-to-seed (training) and the episode variance.

    Model: value[s, e] = mu + seed effect + episode effect + interaction. The grand mean's
    variance is var(seed)/S + var(episode)/E + var(interaction)/(S E). The episode part,
    MS_episodes / (S E), is scaled by t on E - 1 degrees of freedom; the seed part,
    (MS_seeds - MS_interaction) / (S E), by t on S - 1 (it is known from S runs only); the
    two add in quadrature. With one seed this is that run's episode interval. In the simulated
    reports of ``tests/test_stats.py`` (3 or 5 seeds) it covered the true mean in 96-96.5 % of
    them, where pooling seeds and episodes as independent values covered it in 29-59 % once
    seeds varied (77 % when they did not: the shared episodes still count once per seed).
    """
    grand, ms_seed, ms_episode, ms_interaction, s, e = _mean_squares(values)
    episode_part = _t95(e - 1) ** 2 * ms_episode / (s * e)
    return Interval(grand, math.sqrt(episode_part + _seed_part(ms_seed, ms_interaction, s, e)))


def _welch_scaled(parts: list[tuple[float, int]]) -> float:
    """t(0.975)^2 times the sum of independent variance parts, each ``(variance, degrees of
    freedom)``, on Welch-Satterthwaite degrees of freedom; 0 when every part is 0."""
    total = sum(v for v, _ in parts)
    welch = sum(v * v / df for v, df in parts)
    return _t95(total * total / welch) ** 2 * total if welch > 0 else 0.0


def paired_two_level_ci(first, second) -> Interval:
    """95% interval of mean(first) - mean(second) for two methods' [seeds, episodes] matrices
    over the same episodes (their seeds are independent trainings, not pairs).

    The per-episode differences of the seed-averaged values carry the episode effects (shared
    by both methods, so they partly cancel) and both interactions (t on E - 1). The two
    methods' seed parts, each (MS_seeds - MS_interaction) / (S E), add as in Welch's test,
    with Welch-Satterthwaite degrees of freedom; the two parts add in quadrature.
    """
    import numpy as np

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    diff = a.mean(axis=0) - b.mean(axis=0)  # per episode
    e = diff.shape[0]
    seed_parts = []
    for x in (a, b):
        _, ms_seed, _, ms_interaction, s, _ = _mean_squares(x)
        if s > 1:
            seed_parts.append((max(ms_seed - ms_interaction, 0.0) / (s * e), s - 1))
    variance = _t95(e - 1) ** 2 * float(diff.var(ddof=1)) / e + _welch_scaled(seed_parts)
    return Interval(float(diff.mean()), math.sqrt(variance))


def welch_ci(first: Sequence[float], second: Sequence[float]) -> Interval:
    """95% interval of mean(first) - mean(second) for two independent samples (one number per
    training run, e.g. best validation accuracy per seed), Welch's t with Welch-Satterthwaite
    degrees of freedom; half-width 0 when neither sample varies."""
    parts = []
    for x in (first, second):
        if len(x) < 2:
            raise ValueError("welch_ci needs at least two values per sample")
        m = sum(x) / len(x)
        parts.append((sum((v - m) ** 2 for v in x) / (len(x) - 1) / len(x), len(x) - 1))
    difference = sum(first) / len(first) - sum(second) / len(second)
    return Interval(difference, math.sqrt(_welch_scaled(parts)))
