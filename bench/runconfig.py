"""The resolved configuration of one run: defaults < profile < config file < ``--set``."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.config import build, load_yaml, merge, to_dict
from bench.errors import UserError
from bench.method import Method
from methods import METHODS
from bench.registry import unknown_name
from bench.store import read_json
from bench.tasks import TaskSpec, get_task

PROFILES = ("smoke", "demo", "quick", "paper", "seed")


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 1000
    meta_batch: int = 1
    """Episodes per meta-training iteration."""
    lr: float = 1e-3
    """Adam learning rate (the meta learning rate for MAML)."""
    lr_decay_every: int = 0
    """Multiply the learning rate by ``lr_decay`` every this many iterations (0: never)."""
    lr_decay: float = 0.5
    grad_clip: float = 0.0
    """Clip the gradient norm to this value (0: no clipping)."""
    ways: int = 0
    """Training ways; 0 means the task's."""
    shots: int = 0
    """Training shots; 0 means the task's."""
    queries: int = 0
    """Training queries (per class, or per task for regression); 0 means the task's."""
    chunk_tasks: int = 0
    """Adapt the meta-batch this many tasks at a time to bound memory (0: all at once)."""
    val_every: int = 500
    val_episodes: int = 0
    """Validation episodes; 0 means the task's."""
    log_every: int = 10
    checkpoint_every: int = 100
    """Write the resumable state every this many iterations (also at every validation; 0: only then)."""


@dataclass(frozen=True)
class EvalConfig:
    episodes: int = 0
    """Test episodes; 0 means the task's."""
    batch: int = 25
    """Episodes evaluated together."""
    seed: int = 0
    """Episode seed of the validation and test episodes (shared by every method and run)."""


@dataclass(frozen=True)
class RunSettings:
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass(frozen=True)
class RunConfig:
    method: str
    task: str
    profile: str
    settings: RunSettings
    method_config: Any

    @property
    def task_spec(self) -> TaskSpec:
        return get_task(self.task)

    @property
    def method_class(self) -> type[Method]:
        return METHODS.get(self.method)

    def train_shape(self) -> tuple[int, int, int]:
        """(ways, shots, queries) of training episodes."""
        t, task = self.settings.train, self.task_spec
        return (t.ways or task.ways, t.shots or task.shots, t.queries or task.queries)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "task": self.task,
            "profile": self.profile,
            **to_dict(self.settings),
            "method_settings": to_dict(self.method_config),
        }


def profile_values(method: type[Method], profile: str, task: TaskSpec) -> dict:
    """The profile's ``default`` section merged with every matching task-pattern section."""
    if profile not in PROFILES:
        raise unknown_name("profile", profile, list(PROFILES))
    profiles = load_yaml(method.profiles)
    if profile not in profiles:
        raise UserError(f"method '{method.name}' has no '{profile}' profile; it has: {', '.join(profiles)}")
    values: dict = {}
    for pattern, section in profiles[profile].items():
        if pattern == "default" or fnmatch.fnmatch(task.name, pattern):
            values = merge(values, section or {})
    return values


def resolve(
    method: str,
    task: str,
    profile: str = "quick",
    config_file: str | None = None,
    overrides: dict | None = None,
) -> RunConfig:
    """Builds a run's config, checking names, keys, types and the episode shapes."""
    method_cls = METHODS.get(method)
    spec = get_task(task)
    if spec.kind not in method_cls.kinds:
        raise UserError(
            f"method '{method}' does not support {spec.kind} tasks like '{task}' "
            f"(it supports: {', '.join(sorted(method_cls.kinds))})"
        )
    values = profile_values(method_cls, profile, spec)
    if config_file:
        values = merge(values, load_yaml(config_file))
    values = merge(values, overrides or {})
    method_values = values.pop("method", {})
    for fixed in ("task", "profile", "method_settings"):
        if fixed in values:
            raise UserError(f"config key '{fixed}' cannot be set here; use the command line option")
    config = RunConfig(
        method=method,
        task=task,
        profile=profile,
        settings=build(RunSettings, values),
        method_config=build(method_cls.Config, method_values, "method"),
    )
    _check_numbers(config)
    return config


def _check_numbers(config: RunConfig) -> None:
    t, e = config.settings.train, config.settings.eval
    positive = {
        "train.iterations": t.iterations, "train.meta_batch": t.meta_batch,
        "train.val_every": t.val_every, "train.log_every": t.log_every, "eval.batch": e.batch,
    }
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"config key '{key}' must be at least 1, got {value}")
    non_negative = {
        "train.ways": t.ways, "train.shots": t.shots, "train.queries": t.queries,
        "train.chunk_tasks": t.chunk_tasks, "train.val_episodes": t.val_episodes,
        "train.lr_decay_every": t.lr_decay_every, "eval.episodes": e.episodes,
        "train.checkpoint_every": t.checkpoint_every,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise UserError(f"config key '{key}' must be 0 or more, got {value}")
    if t.lr <= 0:
        raise UserError(f"config key 'train.lr' must be positive, got {t.lr}")


def load_run_config(run_dir: Path) -> RunConfig:
    """The config a run folder was made with, checked as if given anew."""
    try:
        raw = read_json(Path(run_dir) / "config.json")
        settings = {k: raw[k] for k in ("seed", "device", "deterministic", "train", "eval")}
        settings["method"] = raw["method_settings"]
        method, task, profile = raw["method"], raw["task"], raw["profile"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{run_dir} is not a run folder (no readable config.json)") from None
    return resolve(method, task, profile, None, settings)
