"""One run from config to result files: train with validation, keep the best, test once."""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from bench.episodes import PyRandomStream, build_sources, derive_seed, eval_episodes
from bench.env import current_memory_bytes, environment, peak_memory_bytes, pick_device, reset_peak_memory
from bench.errors import RunFailed, UserError
from bench.evaluate import evaluate, primary_metric, summarise
from bench.memory import MemoryEstimate, estimate
from bench.method import Method
from bench.runconfig import RunConfig
from bench.store import append_jsonl, atomic_write_bytes, read_jsonl, write_json, write_jsonl
from bench.tasks import TaskSpec
from bench.tensorboard import TensorBoardMirror
from bench.train import Trainer, improves

CHECKPOINT = "best.pt"
STATE = "state.pt"
STATUS = "status.json"


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


class StopRequests:
    """Turns SIGINT and SIGTERM into a flag checked between iterations, so a run can finish
    the iteration in progress and checkpoint before it exits."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def save_state(run_dir: Path, trainer: Trainer, progress: dict) -> None:
    buffer = io.BytesIO()
    torch.save({"trainer": trainer.state_dict(), **progress}, buffer)
    atomic_write_bytes(run_dir / STATE, buffer.getvalue())


def load_state(run_dir: Path) -> dict:
    try:
        return torch.load(run_dir / STATE, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no {STATE} to resume from") from None
    except Exception as exc:
        raise UserError(f"cannot resume from {run_dir / STATE}: {str(exc).splitlines()[0][:200]}") from None


def memory_estimate(trainer: Trainer) -> MemoryEstimate:
    """The estimate for one training episode of the run's shape, drawn from its own stream
    so that the training episodes stay those of the seed."""
    config = trainer.config
    episode = trainer.training_batch(PyRandomStream(derive_seed("memory-probe", config.task, config.settings.seed)), 1)
    return estimate(trainer.method, episode, config.settings.train.meta_batch, config.settings.train.chunk_tasks)


def run(
    config: RunConfig, data_root: Path, out: Path, progress: bool = True, resume: Path | None = None, tensorboard: bool = False
) -> Path:
    """Trains, validates and tests one run; returns its folder under ``out/runs``.

    With ``resume``, continues the run in that folder from its last state checkpoint; with
    ``tensorboard``, mirrors the curves into ``tensorboard/`` there.
    """
    settings, task = config.settings, config.task_spec
    device = pick_device(settings.device)
    torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
    wall_start = time.perf_counter()
    sources = build_sources(task, data_root)
    check_shapes(config, sources)
    method = make_method(config, device)
    trainer = Trainer(method, config, sources, device)

    if resume is not None:
        run_dir = resume
        state = load_state(run_dir)
        trainer.load_state_dict(state["trainer"])
        train_rows = read_jsonl(run_dir / "train.jsonl")[: trainer.iteration] if (run_dir / "train.jsonl").exists() else []
        val_rows = [v for v in read_jsonl(run_dir / "val.jsonl") if v["iteration"] <= trainer.iteration] if (run_dir / "val.jsonl").exists() else []
        best_value, best_iteration, train_seconds = state["best_value"], state["best_iteration"], state["train_seconds"]
    else:
        run_dir = new_run_dir(out, config)
        write_json(run_dir / "config.json", config.to_dict())
        write_json(run_dir / "environment.json", environment(device))
        train_rows, val_rows = [], []
        best_value, best_iteration, train_seconds = None, 0, 0.0
    write_json(run_dir / STATUS, {"status": "running", "iteration": trainer.iteration})
    memory = memory_estimate(trainer)
    if progress:
        tqdm.write(memory.describe())
    reset_peak_memory(device)
    baseline = current_memory_bytes(device)

    def checkpoint() -> None:
        write_jsonl(run_dir / "train.jsonl", train_rows)
        write_jsonl(run_dir / "val.jsonl", val_rows)
        save_state(run_dir, trainer, {"best_value": best_value, "best_iteration": best_iteration, "train_seconds": train_seconds})

    key = primary_metric(task.kind)
    train = settings.train
    bar = tqdm(total=train.iterations, initial=trainer.iteration, desc=f"{config.method} {config.task}",
               disable=not progress, dynamic_ncols=True)
    mirror = TensorBoardMirror(run_dir, trainer.iteration) if tensorboard else None
    with bar, StopRequests() as stop, contextlib.closing(mirror) if mirror else contextlib.nullcontext():
        while trainer.iteration < train.iterations:
            try:
                row = trainer.step()
            except RunFailed as exc:
                write_json(run_dir / STATUS, {"status": "failed", "iteration": trainer.iteration, "reason": str(exc)})
                kept = f"the last good checkpoints are in {run_dir}" if (run_dir / STATE).exists() else "no checkpoint had been written yet"
                raise RunFailed(f"{exc}; {kept}") from None
            train_seconds += row["seconds"]
            train_rows.append(row)
            if mirror:
                mirror.train(row)
            bar.update(1)
            if trainer.iteration % train.log_every == 0 or trainer.iteration == train.iterations:
                recent = train_rows[-train.log_every :]
                bar.set_postfix(
                    {"loss": f"{sum(r['loss'] for r in recent) / len(recent):.3f}",
                     key[:3]: f"{sum(r[key] for r in recent) / len(recent):.3f}"}
                )
            validated = trainer.iteration % train.val_every == 0 or trainer.iteration == train.iterations
            if validated:
                val = trainer.validate()
                val["train_seconds"] = train_seconds
                val_rows.append(val)
                if mirror:
                    mirror.validation(val)
                if improves(val[key], best_value, task.kind):
                    best_value, best_iteration = val[key], trainer.iteration
                    save_checkpoint(run_dir / CHECKPOINT, config, method, trainer.iteration)
                bar.write(f"  iteration {trainer.iteration}: validation {key} {val[key]:.4f} (best {best_value:.4f})")
            if validated or stop.signal is not None or (train.checkpoint_every and trainer.iteration % train.checkpoint_every == 0):
                checkpoint()
            if stop.signal is not None:
                write_json(run_dir / STATUS, {"status": "interrupted", "iteration": trainer.iteration})
                raise RunFailed(
                    f"interrupted by {signal.Signals(stop.signal).name} at iteration {trainer.iteration}; "
                    f"continue with: cli.py run --resume {run_dir}"
                )

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
        "memory": {**memory.to_dict(), "baseline_bytes": baseline, "measured_training_bytes": train_peak - baseline},
        "device": environment(device)["device"],
        "resumed": resume is not None,
        "status": "complete",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # summary.json last: a run counts as complete only once every other file exists
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / STATUS, {"status": "complete", "iteration": trainer.iteration})
    append_jsonl(out / "index.jsonl", summary)
    return run_dir
