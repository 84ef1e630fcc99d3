"""Pure metric functions."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy [T] from logits [T, Q, C] and class indices [T, Q]."""
    return (logits.argmax(-1) == targets).float().mean(-1)


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task mean squared error [T] from [T, Q, 1] outputs and targets."""
    return ((outputs - targets) ** 2).flatten(1).mean(1)


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
