"""One run from config to result files: train with validation, keep the best, test once."""

from __future__ import annotations

import io
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from bench.episodes import build_sources, derive_seed, eval_episodes
from bench.env import environment, peak_memory_bytes, pick_device, reset_peak_memory
from bench.errors import UserError
from bench.evaluate import evaluate, primary_metric, summarise
from bench.method import Method
from bench.runconfig import RunConfig
from bench.store import append_jsonl, atomic_write_bytes, write_json, write_jsonl
from bench.tasks import TaskSpec
from bench.train import Trainer, improves

CHECKPOINT = "best.pt"


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def new_run_dir(out: Path, config: RunConfig) -> Path:
    base = out / "runs" / f"{config.task}__{config.method}__s{config.settings.seed}__{now_stamp()}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot create the run folder under {out}: {exc.strerror}") from None
    return path


def make_method(config: RunConfig, device: torch.device) -> Method:
    torch.manual_seed(derive_seed("init", config.settings.seed))
    ways = config.train_shape()[0] if config.task_spec.kind == "classification" else 0
    return config.method_class(config.method_config, config.task_spec, ways).to(device)


def check_shapes(config: RunConfig, sources: dict) -> None:
    task = config.task_spec
    sources["train"].check(*config.train_shape(), f"training episodes of {task.name}")
    for split in ("val", "test"):
        sources[split].check(task.ways, task.shots, task.queries, f"{split} episodes of {task.name}")


def save_checkpoint(path: Path, config: RunConfig, method: Method, iteration: int) -> None:
    buffer = io.BytesIO()
    torch.save(
        {"method": config.method, "task": config.task, "iteration": iteration, "state_dict": method.state_dict()},
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, method: Method) -> int:
    """Loads weights into ``method``; a missing, truncated or foreign file is a one-line error."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("method") != method.name:
            raise ValueError(f"it was not written for method '{method.name}'")
        method.load_state_dict(blob["state_dict"])
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"cannot load checkpoint {path}: {str(exc).splitlines()[0][:200]}") from None
    return int(blob["iteration"])


def test(method: Method, config: RunConfig, task: TaskSpec, sources: dict, device: torch.device, episodes: int) -> tuple[list[dict], float]:
    """Per-episode test records of ``task`` and the evaluation time in seconds."""
    eps = eval_episodes(sources["test"], task, "test", episodes, config.settings.eval.seed)
    start = time.perf_counter()
    rows = evaluate(method, sources["test"], eps, task, device, config.settings.eval.batch)
    return rows, time.perf_counter() - start


def run(config: RunConfig, data_root: Path, out: Path, progress: bool = True) -> Path:
    """Trains, validates and tests one run; returns its folder under ``out/runs``."""
    settings, task = config.settings, config.task_spec
    device = pick_device(settings.device)
    torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
    wall_start = time.perf_counter()
    sources = build_sources(task, data_root)
    check_shapes(config, sources)
    method = make_method(config, device)
    trainer = Trainer(method, config, sources, device)

    run_dir = new_run_dir(out, config)
    write_json(run_dir / "config.json", config.to_dict())
    write_json(run_dir / "environment.json", environment(device))
    reset_peak_memory(device)

    key = primary_metric(task.kind)
    train_rows: list[dict] = []
    val_rows: list[dict] = []
    best_value, best_iteration = None, 0
    train_seconds = 0.0
    iterations = settings.train.iterations
    bar = tqdm(total=iterations, desc=f"{config.method} {config.task}", disable=not progress, dynamic_ncols=True)
    with bar:
        while trainer.iteration < iterations:
            row = trainer.step()
            train_seconds += row["seconds"]
            train_rows.append(row)
            bar.update(1)
            if trainer.iteration % settings.train.log_every == 0 or trainer.iteration == iterations:
                recent = train_rows[-settings.train.log_every :]
                bar.set_postfix(
                    {"loss": f"{sum(r['loss'] for r in recent) / len(recent):.3f}",
                     key[:3]: f"{sum(r[key] for r in recent) / len(recent):.3f}"}
                )
            if trainer.iteration % settings.train.val_every == 0 or trainer.iteration == iterations:
                val = trainer.validate()
                val["train_seconds"] = train_seconds
                val_rows.append(val)
                if improves(val[key], best_value, task.kind):
                    best_value, best_iteration = val[key], trainer.iteration
                    save_checkpoint(run_dir / CHECKPOINT, config, method, trainer.iteration)
                write_jsonl(run_dir / "train.jsonl", train_rows)
                write_jsonl(run_dir / "val.jsonl", val_rows)
                bar.write(f"  iteration {trainer.iteration}: validation {key} {val[key]:.4f} (best {best_value:.4f})")

    train_peak = peak_memory_bytes(device)
    load_checkpoint(run_dir / CHECKPOINT, method)
    rows, test_seconds = test(method, config, task, sources, device, settings.eval.episodes or task.test_episodes)
    write_jsonl(run_dir / "test_episodes.jsonl", rows)
    seconds_per_iteration = train_seconds / max(len(train_rows), 1)
    summary = {
        "method": config.method,
        "task": config.task,
        "profile": config.profile,
        "seed": settings.seed,
        "run": run_dir.name,
        **summarise(rows, task.kind),
        "method_info": method.info(),
        "best_iteration": best_iteration,
        "best_val": best_value,
        "iterations": trainer.iteration,
        "train_seconds": train_seconds,
        "seconds_per_iteration": seconds_per_iteration,
        "episodes_per_second": settings.train.meta_batch / seconds_per_iteration,
        "test_ms_per_episode": 1000 * test_seconds / max(len(rows), 1),
        "wall_seconds": time.perf_counter() - wall_start,
        "peak_memory_bytes": max(train_peak, peak_memory_bytes(device)),
        "peak_memory_kind": "cuda_allocated" if device.type == "cuda" else "cpu_rss",
        "device": environment(device)["device"],
        "status": "complete",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(run_dir / "summary.json", summary)
    append_jsonl(out / "index.jsonl", summary)
    return run_dir
