"""``cli.py eval``: a run's best checkpoint on the test episodes of its task or a compatible one."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bench.env import pick_device
from bench.episodes import build_sources
from bench.errors import UserError
from bench.evaluate import summarise
from bench.runconfig import load_run_config
from bench.runner import CHECKPOINT, load_checkpoint, make_method, now_stamp, test
from bench.store import write_json, write_jsonl
from bench.tasks import get_task


def reevaluate(run_dir: Path, task_name: str | None, episodes: int | None, device: str, data_root: Path) -> Path:
    config = load_run_config(run_dir)
    trained = config.task_spec
    task = get_task(task_name) if task_name else trained
    if (task.dataset, task.kind, task.image_size) != (trained.dataset, trained.kind, trained.image_size):
        raise UserError(f"task '{task.name}' is not compatible with '{trained.name}' (different data or kind)")
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    dev = pick_device(device)
    method = make_method(config, dev)
    if method.max_ways is not None and task.ways > method.max_ways:
        raise UserError(f"the model was trained on {method.max_ways}-way tasks; '{task.name}' has {task.ways} ways")
    iteration = load_checkpoint(run_dir / CHECKPOINT, method)
    sources = build_sources(task, data_root)
    sources["test"].check(task.ways, task.shots, task.queries, f"test episodes of {task.name}")
    rows, seconds = test(method, config, task, sources, dev, episodes or task.test_episodes)
    name = f"{task.name}__{now_stamp()}"
    out = run_dir / "evals"
    write_jsonl(out / f"{name}.episodes.jsonl", rows)
    record = {
        "run": run_dir.name,
        "trained_task": trained.name,
        "task": task.name,
        "checkpoint_iteration": iteration,
        **summarise(rows, task.kind),
        "test_ms_per_episode": 1000 * seconds / len(rows),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(out / f"{name}.json", record)
    return out / f"{name}.json"
