"""Task specs: small YAML files in ``bench/tasks/`` that pin everything about an episode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.config import build, load_yaml
from bench.registry import Registry


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task. ``queries`` is per class for classification, per task for regression."""

    name: str
    version: int
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


TASKS: Registry[TaskSpec] = Registry("task")

for _path in sorted((Path(__file__).parent / "tasks").glob("*.yaml")):
    _spec = build(TaskSpec, load_yaml(_path), _path.stem)
    TASKS.add(_spec.name, _spec)


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)
