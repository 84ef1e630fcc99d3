"""Evaluation of a method on fixed episodes, one record per episode."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterator

import torch

from bench.data.episodes import Episode, EpisodeSource, eval_episodes
from bench.engine.metrics import accuracy, mse
from bench.interface.method import Batch, Method, task_loss
from bench.interface.task import TaskSpec
from bench.stats import mean_ci95

if TYPE_CHECKING:
    from bench.engine.setup import Setup


def score(outputs: torch.Tensor, batch: Batch, kind: str) -> dict[str, torch.Tensor]:
    """Per-task metrics [T]: ``loss`` and ``accuracy`` (classification) or ``mse`` (regression)."""
    out = {"loss": task_loss(outputs, batch.query_y, kind)}
    if kind == "classification":
        out["accuracy"] = accuracy(outputs, batch.query_y)
    else:
        out["mse"] = mse(outputs, batch.query_y)
        if "amplitude" in batch.extras:  # comparable across amplitudes (the CSN seed's view)
            out["mse_normalised"] = out["mse"] / batch.extras["amplitude"] ** 2
    return out


def primary_metric(kind: str) -> str:
    return "accuracy" if kind == "classification" else "mse"


def groups(items: list, size: int) -> Iterator[tuple[int, list]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def evaluate(
    method: Method,
    source: EpisodeSource,
    episodes: list[Episode],
    task: TaskSpec,
    place: Callable[[Batch], Batch],
    batch_size: int,
    forward: Callable[[Batch], torch.Tensor] | None = None,
) -> list[dict]:
    """Scores ``method`` on ``episodes`` of ``task``'s shape; one dict per episode, in order.

    Runs under ``no_grad``; methods that adapt by gradient (MAML) re-enable it themselves.
    ``place`` puts a collated batch on the device in the run's layout (``Setup.place``);
    ``forward``: the method's forward as captured (``train.compile``), by default the method itself.
    """
    forward = forward or method
    method.eval()
    rows = []
    with torch.no_grad():
        for start, group in groups(episodes, batch_size):
            batch = place(source.collate(group, task.ways, task.shots))
            scores = score(forward(batch), batch, task.kind)
            before = method.unadapted(batch)
            if before is not None:
                scores.update({f"{k}_unadapted": v for k, v in score(before, batch, task.kind).items()})
            for i, episode in enumerate(group):
                row = {"episode": start + i, "fingerprint": episode.fingerprint, "classes": list(episode.classes)}
                row.update({k: float(v[i]) for k, v in scores.items()})
                rows.append(row)
    return rows


def summarise(rows: list[dict], kind: str) -> dict:
    """Mean and 95% CI over episodes of every per-episode number; ``metric`` names the primary one."""
    out: dict = {"metric": primary_metric(kind)}
    for key, value in rows[0].items():
        if key != "episode" and isinstance(value, float):
            out[key], out[f"{key}_ci95"] = mean_ci95([r[key] for r in rows])
    out["episodes"] = len(rows)
    return out


def evaluate_test_split(setup: "Setup", episodes: int, forward: Callable[[Batch], torch.Tensor] | None = None,
                        ) -> tuple[list[dict], float]:
    """Per-episode records of ``episodes`` test episodes of the set-up task, and the seconds they took."""
    task, settings = setup.task, setup.config.settings
    eps = eval_episodes(setup.sources["test"], task, "test", episodes, settings.eval.seed)
    start = time.perf_counter()
    rows = evaluate(setup.method, setup.sources["test"], eps, task, setup.place, settings.eval.batch, forward)
    return rows, time.perf_counter() - start


def first_test_episode(setup: "Setup") -> Batch:
    """The set-up task's first test episode, on the device."""
    task = setup.task
    (episode,) = eval_episodes(setup.sources["test"], task, "test", 1, setup.config.settings.eval.seed)
    return setup.place(setup.sources["test"].collate([episode], task.ways, task.shots))
