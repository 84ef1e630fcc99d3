"""Task specs: small YAML files in ``bench/data/tasks/`` that pin everything about an episode."""

from __future__ import annotations

from pathlib import Path

from bench.config import build, load_yaml
from bench.interface.task import TaskSpec
from bench.registry import Registry

TASKS: Registry[TaskSpec] = Registry("task")

for _path in sorted((Path(__file__).parent / "tasks").glob("*.yaml")):
    _spec = build(TaskSpec, load_yaml(_path), _path.stem)
    TASKS.add(_spec.name, _spec)


def get_task(name: str) -> TaskSpec:
    return TASKS.get(name)
