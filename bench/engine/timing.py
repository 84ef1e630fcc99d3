"""``cli.py bench``: times meta-training iterations of method variants on the same episodes.

Each variant runs in a fresh process, so its peak memory is its own.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path

from bench.engine.runconfig import RunConfig


def time_training(config: RunConfig, data_root: Path, iterations: int, warmup: int) -> dict:
    """Seconds per iteration after ``warmup`` iterations, episodes per second and peak memory."""
    import torch

    from bench.engine.allocator import keep_freed_memory
    from bench.engine.device import device_name
    from bench.engine.memory import current_memory_bytes, peak_memory_bytes, peak_memory_kind, reset_peak_memory
    from bench.engine.setup import set_up
    from bench.engine.train import Trainer

    keep_freed_memory()  # a fresh process: set up as the CLI's own
    setup = set_up(config, data_root)
    trainer = Trainer(setup)
    estimated = trainer.memory_estimate()
    # The peak covers the whole process on CPU (and the weights on a GPU): report what training adds too.
    device = setup.device
    reset_peak_memory(device)
    baseline = current_memory_bytes(device)
    for _ in range(warmup):
        trainer.step()
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.step()
    seconds = (time.perf_counter() - start) / iterations
    peak = peak_memory_bytes(device)
    return {
        "seconds_per_iteration": seconds,
        "episodes_per_iteration": config.settings.train.meta_batch,
        "episodes_per_second": config.settings.train.meta_batch / seconds,
        "peak_memory_bytes": peak,
        "peak_memory_kind": peak_memory_kind(device),
        "training_memory_bytes": peak - baseline,
        "estimated_training_bytes": estimated.training_bytes,
        "device": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "method_info": setup.method.info(),
    }


def time_in_fresh_process(config: RunConfig, data_root: Path, iterations: int, warmup: int) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(time_training, (config, data_root, iterations, warmup))


def summarise(runs: list[dict]) -> dict:
    """One variant timed in several fresh processes: the median seconds per iteration, each
    run's figure beside it, and the largest memory of any run."""
    seconds = [r["seconds_per_iteration"] for r in runs]
    median = statistics.median(seconds)
    return {
        **runs[0],
        "seconds_per_iteration": median,
        "seconds_per_iteration_runs": seconds,
        "episodes_per_second": runs[0]["episodes_per_iteration"] / median,
        "peak_memory_bytes": max(r["peak_memory_bytes"] for r in runs),
        "training_memory_bytes": max(r["training_memory_bytes"] for r in runs),
    }
