"""The one interface every meta-learning method implements, and the batch of episodes it gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.interface.task import TaskSpec


@dataclass
class Batch:
    """T episodes of identical shape.

    Attributes:
        support_x: [T, S, *input] inputs; S = ways * shots (classification).
        support_y: [T, S] class indices (long) or [T, S, 1] targets (float).
        query_x: [T, Q, *input].
        query_y: [T, Q] or [T, Q, 1].
        ways: classes per episode (0 for regression).
        extras: per-task tensors, e.g. ``amplitude`` [T] for sinusoids.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    ways: int
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def to(self, device: torch.device | str, channels_last: bool = False) -> "Batch":
        """Moves to ``device``; uint8 images become float in [0, 1] there (cheaper to move).

        With ``channels_last``, image inputs [T, N, C, H, W] are stored channel-innermost, so that
        the [T * N, C, H, W] view a method flattens them to is ``torch.channels_last`` without a copy.
        """

        def move(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device, non_blocking=True)
            return t.float().div_(255) if t.dtype == torch.uint8 else t  # float() keeps the strides

        def inputs(t: torch.Tensor) -> torch.Tensor:
            if channels_last and t.dim() == 5:
                t = t.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # on the uint8 images: cheaper
            return move(t)

        return Batch(
            inputs(self.support_x), move(self.support_y), inputs(self.query_x), move(self.query_y),
            self.ways, {k: move(v) for k, v in self.extras.items()},
        )

    def embed(self, encoder: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Support and query embeddings, [T, S, D] and [T, Q, D], from one pass of ``encoder``
        (one pass, so batch statistics, where used, cover the whole episode)."""
        t, s = self.support_x.shape[:2]
        z = encoder(torch.cat([self.support_x.flatten(0, 1), self.query_x.flatten(0, 1)]))
        return z[: t * s].view(t, s, -1), z[t * s :].view(t, -1, z.shape[-1])

    def slice(self, start: int, stop: int) -> "Batch":
        """Tasks ``start:stop`` (used to adapt a meta-batch in chunks)."""
        cut = lambda t: t[start:stop]  # noqa: E731
        return Batch(
            cut(self.support_x), cut(self.support_y), cut(self.query_x), cut(self.query_y),
            self.ways, {k: cut(v) for k, v in self.extras.items()},
        )


class Method(nn.Module):
    """A meta-learner: adapts to each episode's support set and predicts its queries.

    A method is a package ``methods/<name>/`` exposing one subclass, which sets ``kinds``
    (task kinds supported), ``Config`` (a frozen dataclass of the method's settings, each field
    documented by the docstring under it) and ``profiles`` (path of a YAML file of named
    profiles), and implements ``forward``. The method registry sets ``name`` to the folder
    name. ``self.training`` selects meta-training behaviour (for example MAML's training
    inner steps and second-order graph). Methods never print or write files.

    Args:
        config: an instance of ``Config``.
        task: the task it is trained on.
        ways: training ways (the width of a classifier head; 0 for regression).
    """

    name: ClassVar[str]  # set by the registry
    kinds: ClassVar[frozenset[str]]
    draws: ClassVar[frozenset[str]] = frozenset()  # the task kinds it has ``pictures`` of
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
    def transductive(self) -> bool:
        """Declared: a query's prediction may depend on the episode's other queries (batch
        statistics of each test episode, say). ``check-method`` fails an undeclared dependence,
        and the report lists transductive methods apart."""
        return False

    @property
    def support_order_matters(self) -> bool:
        """Declared: predictions may change when the support set is reordered (an LSTM that reads
        it in order, say). ``check-method`` fails an undeclared dependence on the order."""
        return False

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

    def capture_blocker(self, training: bool) -> str | None:
        """Why the training step (or, with ``training=False``, the evaluation forward) cannot be
        compiled and replayed (``train.compile``), or None where it can."""
        return None

    def pictures(self, batch: Batch, label: str) -> dict[str, Any]:
        """Figures (matplotlib, in memory, by file stem) of what the trained method does on the
        one episode of ``batch`` (``label`` names it), for ``plot-shifts``, which writes them:
        called for the task kinds in ``draws`` only (methods never write files)."""
        return {}

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

