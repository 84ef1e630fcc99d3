"""``cli.py bench``: times meta-training iterations of method variants on the same episodes.

Each variant runs in a fresh process, so its peak memory is its own.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from bench.engine.runconfig import RunConfig
from bench.errors import UserError


def time_training(config: RunConfig, data_root: Path, iterations: int, warmup: int, barrier=None,
                  threads: int | None = None) -> dict:
    """Seconds per iteration after ``warmup`` iterations, episodes per second and peak memory.

    With ``barrier`` (concurrent runs), the timed iterations of every run start together.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    from bench.engine.allocator import keep_freed_memory
    from bench.engine.device import device_name
    from bench.engine.memory import current_memory_bytes, peak_memory_bytes, peak_memory_kind, reset_peak_memory
    from bench.engine.setup import set_up
    from bench.engine.train import Trainer

    keep_freed_memory()  # a fresh process: set up as the CLI's own
    setup = set_up(config, data_root)
    trainer = Trainer(setup)
    trainer.capture()
    estimated = trainer.memory_estimate()
    # The peak covers the whole process on CPU (and the weights on a GPU): report what training adds too.
    device = setup.device
    reset_peak_memory(device)
    baseline = current_memory_bytes(device)
    for _ in range(warmup):
        trainer.step()
    if barrier is not None:
        barrier.wait()
    start, started = time.perf_counter(), time.time()
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
        "compile": trainer.steps.mode,
        "memory_format": setup.layout.used,
        "started": started,
        "ended": time.time(),
    }


def time_in_fresh_process(config: RunConfig, data_root: Path, iterations: int, warmup: int, jobs: int = 1) -> dict:
    """Times ``jobs`` copies of the run at once, each in a fresh process (on CPU each with its share
    of the cores): per run seconds per iteration (median over the copies), and the aggregate
    iterations per second of all copies over the span in which they ran."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with context.Manager() as manager, context.Pool(jobs) as pool:
        barrier = manager.Barrier(jobs) if jobs > 1 else None
        runs = pool.starmap(time_training, [(config, data_root, iterations, warmup, barrier, threads)] * jobs)
    span = max(r["ended"] for r in runs) - min(r["started"] for r in runs)
    return {
        **runs[0],
        "jobs": jobs,
        "seconds_per_iteration": statistics.median(r["seconds_per_iteration"] for r in runs),
        "iterations_per_second": jobs * iterations / span if jobs > 1 else 1 / runs[0]["seconds_per_iteration"],
        "peak_memory_bytes": sum(r["peak_memory_bytes"] for r in runs),  # all copies together
        "training_memory_bytes": sum(r["training_memory_bytes"] for r in runs),
    }


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
        "iterations_per_second": statistics.median(r["iterations_per_second"] for r in runs),
        "peak_memory_bytes": max(r["peak_memory_bytes"] for r in runs),
        "training_memory_bytes": max(r["training_memory_bytes"] for r in runs),
    }


def bench_variants(variants: list[tuple[str, RunConfig, int]], data_root: Path, iterations: int, warmup: int,
                   repeat: int, echo) -> dict:
    """Times every (label, config, copies at once) variant ``repeat`` times, alternating their
    order by round so that a machine that slows down or speeds up favours none; the record
    ``bench`` writes: each variant's median and rounds, with the code, torch, threads, load and command."""
    import torch

    from bench.engine.invocation import command
    from bench.engine.provenance import CODE_STATE

    runs: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    load_start = os.getloadavg()[0]
    for round_ in range(repeat):
        for label, config, jobs in variants if round_ % 2 == 0 else reversed(variants):
            echo(f"timing {label} (round {round_ + 1} of {repeat}) ...")
            runs[label].append(time_in_fresh_process(config, data_root, iterations, warmup, jobs))
    rows = [{"variant": label, "config": config.to_dict(), **summarise(runs[label])} for label, config, _ in variants]
    return {"iterations": iterations, "warmup": warmup, "repeat": repeat, **CODE_STATE, "torch": torch.__version__,
            "threads": rows[0]["torch_threads"], "load_average": {"start": load_start, "end": os.getloadavg()[0]},
            "command": command(), "rows": rows}


def variant_grid(values: dict[str, list], jobs_levels: list[int]) -> list[tuple[str, list[str], int]]:
    """Every combination of the values compared (``None``: the key is left as configured) and of
    the copies run at once: (label, ``--set`` assignments, copies)."""
    if not jobs_levels or any(n is None or not 1 <= n <= 64 for n in jobs_levels):
        raise UserError(f"--jobs takes numbers from 1 to 64, got {','.join(map(str, jobs_levels)) or 'none'}")
    variants = []
    for combination in itertools.product(*values.values()):
        extra = [f"{key}={value}" for key, value in zip(values, combination) if value is not None]
        for jobs in jobs_levels:
            label = ", ".join(extra + ([f"jobs={jobs}"] if len(jobs_levels) > 1 or jobs > 1 else [])) or "default"
            variants.append((label, extra, jobs))
    return variants
