import math

import pytest
import torch

from bench.engine.metrics import accuracy, mse
from bench.stats import mean_ci95


def test_mean_ci95_matches_hand_computation():
    values = [0.5, 1.0, 0.75, 0.25]
    mean = 0.625
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    m, h = mean_ci95(values)
    assert m == pytest.approx(mean)
    assert h == pytest.approx(1.96 * std / 2)
    assert mean_ci95([0.3]) == (0.3, 0.0)
    with pytest.raises(ValueError):
        mean_ci95([])


def test_accuracy_and_mse_per_task():
    logits = torch.tensor([[[2.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    targets = torch.tensor([[0, 1], [1, 1]])
    assert accuracy(logits, targets).tolist() == [1.0, 0.0]
    out = torch.tensor([[[1.0], [3.0]]])
    assert mse(out, torch.zeros_like(out)).tolist() == [5.0]
