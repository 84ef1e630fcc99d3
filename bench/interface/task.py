"""What a method is told about its task (the specs themselves are YAML files in ``bench/data/tasks/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task. ``queries`` is per class for classification, per task for regression.

    ``protocol`` names the evaluation protocol (split, classes, episode shape, test episodes);
    a published number is compared only with tasks of its own protocol.
    """

    name: str
    version: int
    protocol: str
    kind: Literal["classification", "regression"]
    dataset: Literal["omniglot", "sinusoid", "miniimagenet"]
    split: str
    image_size: int
    ways: int
    shots: int
    queries: int
    test_episodes: int
    val_episodes: int

    @property
    def channels(self) -> int:
        """Input channels (features, for regression) of one example."""
        return 3 if self.dataset == "miniimagenet" else 1
