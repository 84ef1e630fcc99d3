"""Task specs: small YAML files in ``bench/data/tasks/`` that pin everything about an episode."""

from __future__ import annotations

from pathlib import Path

from bench.config import build, load_yaml
from bench.data.datasets import DATASETS
from bench.errors import UserError
from bench.interface.task import TaskSpec
from bench.registry import Registry

TASKS: Registry[TaskSpec] = Registry("task")
FROM_THE_DATASET = ("modality", "data_channels")


def load_task(path: Path) -> TaskSpec:
    """A task YAML, completed with what its dataset's registration says about the examples."""
    raw = load_yaml(path)
    written = [key for key in FROM_THE_DATASET if isinstance(raw, dict) and key in raw]
    if written:
        raise UserError(f"{path}: {', '.join(written)} come from the dataset's registration, not the task")
    if isinstance(raw, dict) and "dataset" in raw:
        try:
            dataset = DATASETS.get(str(raw["dataset"]))
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        raw = {**raw, "modality": dataset.modality, "data_channels": dataset.channels}
    return build(TaskSpec, raw, path.stem)


for _path in sorted((Path(__file__).parent / "tasks").glob("*.yaml")):
    _spec = load_task(_path)
    TASKS.add(_spec.name, _spec)


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)
