"""Pure statistics on plain numbers (no torch: the report uses them too)."""

from __future__ import annotations

import math
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
