"""``cli.py eval``: a run's best checkpoint on the test episodes of its task or a compatible one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bench.engine.evaluate import evaluate_test_split, summarise
from bench.engine.runconfig import RunConfig
from bench.engine.setup import load_weights, set_up
from bench.errors import UserError
from bench.interface.task import TaskSpec
from bench.results.runfolder import RunFolder, now_stamp


def reevaluate(folder: RunFolder, config: RunConfig, task: TaskSpec | None, episodes: int | None, device: str,
               data_root: Path) -> Path:
    """Tests the run's best checkpoint on ``episodes`` test episodes of ``task`` (default: its own);
    returns the record written into the run's ``evals/``."""
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    checkpoint = folder.load_best(config.method)  # a broken checkpoint fails before any data is read
    setup = set_up(config, data_root, device=device, test_task=task)
    iteration = load_weights(setup.method, checkpoint, folder)
    rows, seconds = evaluate_test_split(setup, episodes or setup.task.test_episodes)
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
