"""Setting a run up: the device, the method and the data, the same for ``run``, ``bench``,
``eval`` and ``plot-shifts``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data.datasets import build_sources
from bench.data.episodes import EpisodeSource
from bench.engine import layout as layouts
from bench.engine.device import pick_device
from bench.engine.runconfig import RunConfig
from bench.errors import UserError, first_line
from bench.interface.method import Batch, Method
from bench.interface.task import TaskSpec
from bench.results.runfolder import RunFolder


@dataclass
class Setup:
    """What a run works with. ``task`` is the task tested (the trained one unless ``eval`` chose
    another); ``layout`` is the memory layout of the method's weights and of every batch."""

    config: RunConfig
    task: TaskSpec
    device: torch.device
    method: Method
    sources: dict[str, EpisodeSource]
    layout: layouts.Layout

    def place(self, batch: Batch) -> Batch:
        """``batch`` on the run's device, in its layout."""
        return batch.to(self.device, self.layout.channels_last)


def make_method(config: RunConfig, device: torch.device) -> Method:
    """The method of ``config``, initialised from the run seed."""
    torch.manual_seed(config.seeds.seed("init"))
    ways = config.train_shape()[0] if config.task_spec.kind == "classification" else 0
    return config.method_class(config.method_config, config.task_spec, ways).to(device)


def set_up(config: RunConfig, data_root: Path, device: str | None = None, test_task: TaskSpec | None = None) -> Setup:
    """Picks the device, builds the method, then loads the data and checks the episode shapes.

    Args:
        device: overrides the config's device (``eval --device``).
        test_task: test on this task instead of the trained one: same data and kind, at most
            the trained ways. Only its test split is checked (nothing is trained).
    """
    trained = config.task_spec
    task = test_task or trained
    if (task.dataset, task.kind, task.input_shape) != (trained.dataset, trained.kind, trained.input_shape):
        raise UserError(f"task '{task.name}' is not compatible with '{trained.name}' (different data or kind)")
    dev = pick_device(device or config.settings.device)
    torch.use_deterministic_algorithms(config.settings.deterministic, warn_only=True)
    method = make_method(config, dev)
    layout = layouts.choose(config.settings.memory_format, method, dev)
    layouts.apply(method, layout)
    if method.max_ways is not None and task.ways > method.max_ways:
        raise UserError(f"the model was trained on {method.max_ways}-way tasks; '{task.name}' has {task.ways} ways")
    sources = build_sources(task, data_root)
    if config.settings.train.classes == "trainval" and test_task is None:
        sources["train"] = joined_splits(sources["train"], sources["val"], task)
    if test_task is None:
        sources["train"].check(*config.train_shape(), f"training episodes of {task.name}")
        sources["val"].check(task.ways, task.shots, task.queries, f"val episodes of {task.name}")
    sources["test"].check(task.ways, task.shots, task.queries, f"test episodes of {task.name}")
    return Setup(config, task, dev, method, sources, layout)


def joined_splits(train: EpisodeSource, val: EpisodeSource, task) -> EpisodeSource:
    """The training and validation classes as one source (``train.classes=trainval``)."""
    join = getattr(train, "joined", None)
    if join is None or type(val) is not type(train):
        raise UserError(f"train.classes=trainval needs a task whose splits are sets of classes; '{task.name}' has none to join")
    return join(val)


def load_weights(method: Method, checkpoint: dict, folder: RunFolder) -> int:
    """Loads a checkpoint read by ``RunFolder.load_best`` into ``method``; returns its iteration."""
    try:
        method.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise UserError(f"cannot load checkpoint of {folder.path}: {first_line(exc)}") from None
    return int(checkpoint["iteration"])
