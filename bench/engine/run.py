"""One run from config to result files: train with validation, keep the best, test once."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from bench.engine.compute import model_cost
from bench.engine.device import device_name
from bench.engine.evaluate import evaluate_test_split, first_test_episode, primary_metric, summarise
from bench.engine.memory import current_memory_bytes, peak_memory_bytes, peak_memory_kind, reset_peak_memory
from bench.engine.provenance import environment
from bench.engine.runconfig import RunConfig
from bench.engine.setup import load_weights, set_up
from bench.engine.tensorboard import TensorBoardMirror
from bench.engine.train import Trainer, improves
from bench.errors import RunFailed
from bench.results.runfolder import RunFolder


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


def run(
    config: RunConfig, data_root: Path, out: Path, progress: bool = True, resume: RunFolder | None = None,
    tensorboard: bool = False,
) -> RunFolder:
    """Trains, validates and tests one run; returns its folder under ``out/runs``.

    With ``resume``, continues the run in that folder from its last state checkpoint; with
    ``tensorboard``, mirrors the curves into the run folder.
    """
    wall_start = time.perf_counter()
    if resume is None:
        # The folder first: an unwritable --out fails before any data is read.
        folder = RunFolder.create(out, config.to_dict())
        try:
            setup = set_up(config, data_root)
        except BaseException:
            folder.discard()  # bad data or impossible episodes: nothing worth keeping
            raise
        folder.start(config.to_dict(), environment(setup.device))
        trainer = Trainer(setup)
        train_rows, val_rows = [], []
        best_value, best_iteration, train_seconds = None, 0, 0.0
    else:
        folder = resume
        state = folder.load_state(config.method)
        setup = set_up(config, data_root)
        trainer = Trainer(setup)
        trainer.load_state_dict(state["trainer"])
        train_rows, val_rows = folder.train_rows(trainer.iteration), folder.val_rows(trainer.iteration)
        best_value, best_iteration, train_seconds = state["best_value"], state["best_iteration"], state["train_seconds"]
    settings, task, method, device = config.settings, setup.task, setup.method, setup.device
    folder.write_status("running", trainer.iteration)
    memory = trainer.memory_estimate()
    if progress:
        tqdm.write(memory.describe())
    reset_peak_memory(device)
    baseline = current_memory_bytes(device)

    def checkpoint() -> None:
        folder.write_curves(train_rows, val_rows)
        folder.save_state(
            {"trainer": trainer.state_dict(), "best_value": best_value, "best_iteration": best_iteration,
             "train_seconds": train_seconds},
            config.method,
        )
        folder.write_status("running", trainer.iteration)

    key = primary_metric(task.kind)
    train = settings.train

    def stop_reason() -> str | None:
        """Why training ends now (``iterations``, ``budget_seconds`` or ``patience``), or None."""
        if trainer.iteration >= train.iterations:
            return "iterations"
        if train.budget_seconds and train_seconds >= train.budget_seconds:
            return "budget_seconds"
        if train.patience and sum(v["iteration"] > best_iteration for v in val_rows) >= train.patience:
            return "patience"
        return None
    bar = tqdm(total=train.iterations, initial=trainer.iteration, desc=f"{config.method} {config.task}",
               disable=not progress, dynamic_ncols=True)
    mirror = TensorBoardMirror(folder.tensorboard_dir, trainer.iteration) if tensorboard else None
    with bar, StopRequests() as stop, contextlib.closing(mirror) if mirror else contextlib.nullcontext():
        while (stopped_by := stop_reason()) is None:
            try:
                row = trainer.step()
            except RunFailed as exc:
                folder.write_status("failed", trainer.iteration, reason=str(exc))
                kept = f"the last good checkpoints are in {folder.path}" if folder.has_state() else "no checkpoint had been written yet"
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
            validated = trainer.iteration % train.val_every == 0 or stop_reason() is not None  # the last one too
            if validated:
                val = trainer.validate()
                val["train_seconds"] = train_seconds
                val_rows.append(val)
                if mirror:
                    mirror.validation(val)
                if improves(val[key], best_value, task.kind):
                    best_value, best_iteration = val[key], trainer.iteration
                    folder.save_best(method.state_dict(), config.method, config.task, trainer.iteration)
                bar.write(f"  iteration {trainer.iteration}: validation {key} {val[key]:.4f} (best {best_value:.4f})")
            if validated or stop.signal is not None or (train.checkpoint_every and trainer.iteration % train.checkpoint_every == 0):
                checkpoint()
            if stop.signal is not None:
                folder.write_status("interrupted", trainer.iteration)
                raise RunFailed(
                    f"interrupted by {signal.Signals(stop.signal).name} at iteration {trainer.iteration}; "
                    f"continue with: cli.py run --resume {folder.path}"
                )

    train_peak = peak_memory_bytes(device)
    load_weights(method, folder.load_best(config.method), folder)
    rows, test_seconds = evaluate_test_split(setup, settings.eval.episodes or task.test_episodes)
    cost = model_cost(method, first_test_episode(setup))
    seconds_per_iteration = train_seconds / max(len(train_rows), 1)
    summary = {
        "method": config.method,
        "task": config.task,
        "profile": config.profile,
        "protocol": task.protocol,
        "tag": settings.tag,
        "seed": settings.seed,
        "run": folder.name,
        **summarise(rows, task.kind),
        "method_info": method.info(),
        "model": cost,
        "best_iteration": best_iteration,
        "best_val": best_value,
        "iterations": trainer.iteration,
        "budget": {"iterations": train.iterations, "budget_seconds": train.budget_seconds, "patience": train.patience,
                   "stopped_by": stopped_by, "best_at_last_validation": best_iteration == val_rows[-1]["iteration"]},
        "train_seconds": train_seconds,
        "seconds_per_iteration": seconds_per_iteration,
        "episodes_per_second": settings.train.meta_batch / seconds_per_iteration,
        "test_ms_per_episode": 1000 * test_seconds / max(len(rows), 1),
        "wall_seconds": time.perf_counter() - wall_start,
        "peak_memory_bytes": max(train_peak, peak_memory_bytes(device)),
        "peak_memory_kind": peak_memory_kind(device),
        "memory": {**memory.to_dict(), "baseline_bytes": baseline, "measured_training_bytes": train_peak - baseline},
        "device": device_name(device),
        "resumed": resume is not None,
        "status": "complete",
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    folder.finish(rows, summary)
    return folder
