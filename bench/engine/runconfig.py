"""The resolved configuration of one run: defaults < profile < config file < ``--set``."""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from bench.config import build, load_yaml, merge, parse_assignments, short, to_dict
from bench.data.episodes import Seeds
from bench.data.tasks import get_task
from bench.errors import UserError
from bench.interface.method import Method
from bench.interface.task import TaskSpec
from bench.results.runfolder import RunFolder
from bench.registry import unknown_name


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 1000
    """Meta-training iterations (optimizer steps): the most a run trains."""
    budget_seconds: float = 0.0
    """Stop once this many seconds of training steps have run (validation not counted; 0: no limit)."""
    budget_clock: Literal["wall", "cpu"] = "wall"
    """What ``budget_seconds`` counts: ``wall``, the steps' seconds as they pass; ``cpu``, the CPU seconds the
    process spent in them (all its threads), which other work on the machine does not use up."""
    classes: Literal["train", "trainval"] = "train"
    """Classes of the training episodes: the task's training split, or ``trainval``, its training and
    validation classes together (Snell et al.'s 1,200 Omniglot characters). Validation then runs on classes
    that were trained on, so it cannot choose a checkpoint: the run tests its final weights."""
    patience: int = 0
    """Stop after this many validations without improvement (0: never)."""
    meta_batch: int = 1
    """Episodes per meta-training iteration."""
    lr: float = 1e-3
    """Adam learning rate (the meta learning rate for MAML)."""
    lr_decay_every: int = 0
    """Multiply the learning rate by ``lr_decay`` every this many iterations (0: never)."""
    lr_decay: float = 0.5
    """Factor of each learning-rate decay."""
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
    """Validate every this many iterations (and after the last); the best validation checkpoint is tested."""
    val_episodes: int = 0
    """Validation episodes; 0 means the task's."""
    log_every: int = 10
    """Average the progress bar's loss and metric over this many iterations."""
    compile: Literal["none", "graphs", "auto"] = "none"
    """`graphs`: compile the training step (and the evaluation forward) for its fixed episode shapes and
    replay it (torch.compile, mode reduce-overhead: CUDA graphs on a GPU); `auto`: time both on the
    first meta-batch on a GPU and keep the faster, eager on the CPU."""
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
    tag: str = ""
    """A name for a comparison this run belongs to (e.g. `equal-time`): runs of one method, profile
    and tag with different settings are candidates that `report` selects among on validation."""
    seed: int = 0
    """Run seed: training episodes and initialisation."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available."""
    memory_format: Literal["auto", "contiguous", "channels_last"] = "auto"
    """Layout of images and convolution weights: ``channels_last`` (NHWC) or ``contiguous`` (NCHW);
    ``auto``: channels_last on the CPU for networks with 2-d convolutions (measured faster there),
    contiguous otherwise. Results are equal within float tolerance; the run records what was used."""
    deterministic: bool = False
    """Use ``torch.use_deterministic_algorithms`` (recorded)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass(frozen=True)
class RunConfig:
    """A run's resolved config. ``method`` is the registered name of ``method_class``."""

    method: str
    method_class: type[Method]
    task: str
    profile: str
    settings: RunSettings
    method_config: Any

    @property
    def task_spec(self) -> TaskSpec:
        return get_task(self.task)

    def train_shape(self) -> tuple[int, int, int]:
        """(ways, shots, queries) of training episodes."""
        t, task = self.settings.train, self.task_spec
        return (t.ways or task.ways, t.shots or task.shots, t.queries or task.queries)

    @property
    def seeds(self) -> Seeds:
        """The run's random streams, from its run seed and its episode seed."""
        return Seeds(self.task_spec, self.settings.seed, self.settings.eval.seed)

    def val_episodes(self) -> int:
        """Validation episodes: ``train.val_episodes``, 0 meaning the task's."""
        return self.settings.train.val_episodes or self.task_spec.val_episodes

    def test_episodes(self, task: TaskSpec | None = None) -> int:
        """Test episodes on ``task`` (default: the run's own): ``eval.episodes``, 0 meaning the task's."""
        return self.settings.eval.episodes or (task or self.task_spec).test_episodes

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "task": self.task,
            "profile": self.profile,
            **to_dict(self.settings),
            "method_settings": to_dict(self.method_config),
        }


def profiles(method: type[Method]) -> list[str]:
    """The profile names in the method's ``profiles.yaml``, in file order."""
    return list(load_yaml(method.profiles))


def profile_values(method: type[Method], profile: str, task: TaskSpec) -> dict:
    """The profile's ``default`` section merged with every matching task-pattern section."""
    if profile not in profiles(method):
        raise unknown_name("profile", profile, profiles(method), f" of method '{method.name}'")
    values: dict = {}
    for pattern, section in load_yaml(method.profiles)[profile].items():
        if pattern == "default" or fnmatch.fnmatch(task.name, pattern):
            values = merge(values, section or {})
    return values


def resolve(
    method_cls: type[Method],
    task: str,
    profile: str = "quick",
    config_file: str | None = None,
    overrides: dict | None = None,
) -> RunConfig:
    """Builds a run's config, checking names, keys, types and the episode shapes.

    Args:
        method_cls: a class from the method registry (its ``name`` set there).
    """
    method = method_cls.name
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
        method_class=method_cls,
        task=task,
        profile=profile,
        settings=build(RunSettings, values),
        method_config=build(method_cls.Config, method_values, "method"),
    )
    _check_numbers(config)
    return config


@dataclass(frozen=True)
class CommandLine:
    """What a command line chose for its runs: a profile, a config file, ``--set`` assignments,
    and the seed and device where given (None: the config's own)."""

    profile: str = "quick"
    config_file: str | None = None
    assignments: tuple[str, ...] = ()
    seed: int | None = None
    device: str | None = None

    def config(self, method_cls: type[Method], task: str, point: dict | None = None, extra: tuple[str, ...] = ()) -> RunConfig:
        """The run config of ``method_cls`` on ``task``; ``point`` (a sweep's grid values) and
        ``extra`` assignments come on top of ``--set``, the seed and device on top of all."""
        overrides = merge(parse_assignments((*self.assignments, *extra)), point or {})
        given = {k: v for k, v in {"seed": self.seed, "device": self.device}.items() if v is not None}
        return resolve(method_cls, task, self.profile, self.config_file, merge(overrides, given))


# The largest counts accepted: far above any protocol, low enough that nothing built from them
# (episode lists, per-iteration rows) can exhaust memory before training starts.
MAX_EPISODES = 100_000
MAX_COUNT = 10**9


def _check_numbers(config: RunConfig) -> None:
    """Every numeric setting in its range, before anything is written or loaded."""
    t, e = config.settings.train, config.settings.eval
    ranges = {  # key: (value, smallest, largest)
        "train.iterations": (t.iterations, 1, MAX_COUNT), "train.meta_batch": (t.meta_batch, 1, MAX_EPISODES),
        "train.val_every": (t.val_every, 1, MAX_COUNT), "train.log_every": (t.log_every, 1, MAX_COUNT),
        "eval.batch": (e.batch, 1, 10_000),
        "train.ways": (t.ways, 0, MAX_EPISODES), "train.shots": (t.shots, 0, MAX_EPISODES),
        "train.queries": (t.queries, 0, MAX_EPISODES), "train.chunk_tasks": (t.chunk_tasks, 0, MAX_EPISODES),
        "train.val_episodes": (t.val_episodes, 0, MAX_EPISODES), "eval.episodes": (e.episodes, 0, MAX_EPISODES),
        "train.lr_decay_every": (t.lr_decay_every, 0, MAX_COUNT), "train.checkpoint_every": (t.checkpoint_every, 0, MAX_COUNT),
        "train.patience": (t.patience, 0, MAX_COUNT), "train.budget_seconds": (t.budget_seconds, 0, 1e9),
        "train.grad_clip": (t.grad_clip, 0, math.inf),
    }
    for key, (value, low, high) in ranges.items():
        if not low <= value <= high:
            raise UserError(f"config key '{key}' must be from {low:g} to {high:g}, got {short(value)}")
    for key, value in {"train.lr": t.lr, "train.lr_decay": t.lr_decay}.items():
        if not value > 0:
            raise UserError(f"config key '{key}' must be positive, got {short(value)}")
    if not re.fullmatch(r"[A-Za-z0-9._+-]{0,64}", config.settings.tag):
        raise UserError(f"config key 'tag' must be up to 64 letters, digits and . _ + -, got {short(config.settings.tag)}")


def from_record(record: dict, method_class: Callable[[str], type[Method]], where: str) -> RunConfig:
    """A config written by ``RunConfig.to_dict`` (a run folder's), checked as if given anew.

    Args:
        method_class: looks a method name up in the registry.
        where: what the record came from, for the error message.
    """
    try:
        settings = {k: record[k] for k in ("seed", "device", "deterministic", "train", "eval")}
        if "tag" in record:  # runs written before tags existed have none
            settings["tag"] = record["tag"]
        # Runs written before the setting existed ran contiguous: a resume must keep their layout.
        settings["memory_format"] = record.get("memory_format", "contiguous")
        settings["method"] = record["method_settings"]
        method, task, profile = record["method"], record["task"], record["profile"]
    except (KeyError, TypeError):
        raise UserError(f"{where} does not hold a run config") from None
    return resolve(method_class(method), task, profile, None, settings)


def open_run(path: str, method_class: Callable[[str], type[Method]]) -> tuple[RunFolder, RunConfig]:
    """The run folder at ``path`` and the config it was made with."""
    folder = RunFolder(path)
    return folder, from_record(folder.read_config(), method_class, str(folder.path))


def open_unfinished(path: str, method_class: Callable[[str], type[Method]]) -> tuple[RunFolder, RunConfig]:
    """``open_run`` for ``run --resume``: a finished run has nothing to resume."""
    folder, config = open_run(path, method_class)
    if folder.is_complete():
        raise UserError(f"{folder.path} already finished; nothing to resume")
    return folder, config
