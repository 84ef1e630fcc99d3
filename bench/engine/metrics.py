"""Pure per-task metric functions on tensors."""

from __future__ import annotations

import torch


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy [T] from logits [T, Q, C] and class indices [T, Q]."""
    return (logits.argmax(-1) == targets).float().mean(-1)


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-task mean squared error [T] from [T, Q, 1] outputs and targets."""
    return ((outputs - targets) ** 2).flatten(1).mean(1)
