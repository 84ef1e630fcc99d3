"""A finished run's best checkpoint used again: ``cli.py eval`` on the test episodes of its task or
a compatible one, and ``cli.py plot-shifts``, the method's pictures of one episode."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bench.data.episodes import Seeds
from bench.engine.evaluate import evaluate_test_split, summarise
from bench.engine.runconfig import MAX_EPISODES, RunConfig
from bench.engine.setup import load_weights, set_up
from bench.errors import UserError
from bench.files import write_figure
from bench.interface.task import TaskSpec
from bench.results.runfolder import RunFolder, now_stamp


def _trained(folder: RunFolder, config: RunConfig, data_root: Path, device: str, task: TaskSpec | None = None):
    """The run set up on ``task`` (default: its own) with its best weights, and their iteration."""
    checkpoint = folder.load_best(config.method)  # a broken checkpoint fails before any data is read
    setup = set_up(config, data_root, device=device, test_task=task)
    return setup, load_weights(setup.method, checkpoint, folder)


def reevaluate(folder: RunFolder, config: RunConfig, task: TaskSpec | None, episodes: int | None, device: str,
               data_root: Path) -> Path:
    """Tests the run's best checkpoint on ``episodes`` test episodes of ``task`` (default: its own;
    episodes default: as many as the run was tested on, its ``eval.episodes`` or the task's);
    returns the record written into the run's ``evals/``."""
    if episodes is not None and not 1 <= episodes <= MAX_EPISODES:
        raise UserError(f"--episodes must be from 1 to {MAX_EPISODES}, got {episodes}")
    setup, iteration = _trained(folder, config, data_root, device, task)
    rows, seconds = evaluate_test_split(setup, episodes or config.test_episodes(setup.task))
    record = {
        "run": folder.name,
        "trained_task": config.task,
        "task": setup.task.name,
        "checkpoint_iteration": iteration,
        **summarise(rows, setup.task.kind),
        "test_ms_per_episode": 1000 * seconds / len(rows),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return folder.write_evaluation(f"{setup.task.name}__{now_stamp()}", rows, record)


def draw_pictures(folder: RunFolder, config: RunConfig, data_root: Path, task_seed: int) -> list[Path]:
    """The method's pictures (``Method.pictures``) of one test-split episode of the run's task,
    drawn by ``task_seed`` alone, written as PNGs into the run folder's ``plots/``."""
    if config.task_spec.kind not in config.method_class.draws:
        raise UserError(f"plot-shifts needs a run of a method that draws its task (CSN on a sinusoid task), "
                        f"not {config.method} on {config.task}")
    setup, _ = _trained(folder, config, data_root, "cpu")
    task, source = setup.task, setup.sources["test"]
    episode = source.sample(task.ways, task.shots, 1, Seeds.picture(task_seed))
    figures = setup.method.pictures(source.collate([episode], task.ways, task.shots), f"task seed {task_seed}")
    return [write_figure(fig, folder.plots_dir / f"{name}.png") for name, fig in figures.items()]
