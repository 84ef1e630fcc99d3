"""The one interface every meta-learning method implements, and the method registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.episodes import Batch
from bench.registry import Registry
from bench.tasks import TaskSpec


class Method(nn.Module):
    """A meta-learner: adapts to each episode's support set and predicts its queries.

    Subclasses set ``name``, ``kinds`` (task kinds supported), ``Config`` (a frozen dataclass
    of the method's settings) and ``profiles`` (path of a YAML file of named profiles), and
    implement ``forward``. ``self.training`` selects meta-training behaviour (for example
    MAML's training inner steps and second-order graph). Methods never print or write files.

    Args:
        config: an instance of ``Config``.
        task: the task it is trained on.
        ways: training ways (the width of a classifier head; 0 for regression).
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    Config: ClassVar[type]
    profiles: ClassVar[Path]

    def __init__(self, config: Any, task: TaskSpec, ways: int):
        super().__init__()
        self.config = config
        self.task = task
        self.ways = ways

    @property
    def max_ways(self) -> int | None:
        """The most ways it can be tested on (its head's width); None when unbounded."""
        return self.ways or None

    @property
    def graph_factor(self) -> float:
        """Activation memory a training episode keeps, relative to its modules' outputs
        (the memory estimate's multiplier; MAML's second-order graph roughly doubles it)."""
        return 1.0

    def forward(self, batch: Batch) -> torch.Tensor:
        """Query predictions [T, Q, batch.ways] (logits) or [T, Q, 1] (regression)."""
        raise NotImplementedError

    def unadapted(self, batch: Batch) -> torch.Tensor | None:
        """Query predictions before any adaptation to the support set, for comparison
        (MAML: zero inner steps; CSN: no shifts); None where that means nothing."""
        return None

    def info(self) -> dict:
        """Facts decided while running (e.g. the implementation chosen), recorded with results."""
        return {}

    def restore_info(self, info: dict) -> None:
        """Restores what ``info`` recorded when a run resumes (so choices stay the same)."""

    def train_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The meta-training loss (mean over tasks); by default the task loss."""
        return task_loss(outputs, batch.query_y, self.task.kind).mean()


def task_loss(outputs: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-task mean loss [T]: cross-entropy for classification, MSE for regression."""
    if kind == "classification":
        t, q, c = outputs.shape
        return F.cross_entropy(outputs.reshape(t * q, c), targets.reshape(-1), reduction="none").view(t, q).mean(1)
    return ((outputs - targets) ** 2).flatten(1).mean(1)


def mask_logits(logits: torch.Tensor, ways: int) -> torch.Tensor:
    """Keeps the first ``ways`` logits: an N-way head tested on M <= N ways."""
    return logits[..., :ways]


METHODS: Registry[type[Method]] = Registry("method")
