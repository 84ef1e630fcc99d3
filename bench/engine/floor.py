"""``cli.py floor``: how close the harness's training iteration is to the floor of this stack.

For each method, on one profile's episode shapes, each figure from a fresh process:

- the floor: the method's standalone training step (forward, loss, backward, Adam) on one
  pre-built meta-batch already on the device, in the contiguous (NCHW) and the channels_last
  layout: no sampler, no collation, no scoring, no bookkeeping (and no gradient clipping, which
  the harness adds where a profile sets ``train.grad_clip``);
- the harness's own iteration (``Trainer.step``, as ``bench`` times it), in the layout the
  run's ``memory_format`` chooses, and its ratio to the faster floor;
- the time outside the step: sampling, collating and placing a meta-batch, one validation,
  test seconds per 1,000 episodes and one resumable checkpoint;
- the FLOPs of the step (``torch.utils.flop_counter``) and the machine's GEMM rate, so that the
  floor itself can be read against the hardware.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from bench.engine.layout import LAYOUTS
from bench.engine.runconfig import RunConfig


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The best rate of an n x n x n float32 matrix product, in GFLOP/s."""
    import torch

    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b  # the first call sets up the kernel
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _prepare(config: RunConfig, data_root: Path, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(threads)
    from bench.engine.allocator import keep_freed_memory
    from bench.engine.setup import set_up
    from bench.engine.train import Trainer

    keep_freed_memory()  # a fresh process: set up as the CLI's own
    setup = set_up(config, data_root)
    return setup, Trainer(setup)


def floor_step(config: RunConfig, data_root: Path, layout: str, iterations: int, warmup: int,
               threads: int | None = None) -> dict:
    """Seconds per standalone training step of the method, its weights and the run's first
    meta-batch (pre-built on the device) in ``layout``, and that step's FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    settings = dataclasses.replace(config.settings, memory_format=layout)
    setup, trainer = _prepare(dataclasses.replace(config, settings=settings), data_root, threads)
    method = setup.method
    batch = trainer.training_batch(trainer.stream, config.settings.train.meta_batch)
    optimizer = torch.optim.Adam(method.parameters(), lr=config.settings.train.lr)
    method.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        method.train_loss(method(batch), batch).backward()
        optimizer.step()
        if setup.device.type == "cuda":
            torch.cuda.synchronize(setup.device)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    seconds = (time.perf_counter() - start) / iterations
    with FlopCounterMode(display=False) as counter:
        method.train_loss(method(batch), batch).backward()
    return {"seconds_per_step": seconds, "flops_per_step": int(counter.get_total_flops()), "method_info": method.info()}


def outside_step(config: RunConfig, data_root: Path, iterations: int, test_episodes: int,
                 threads: int | None = None) -> dict:
    """Seconds of what a run does besides the step: drawing a meta-batch's episodes, collating
    and placing them (per iteration, on a stream of its own), one validation, ``test_episodes``
    test episodes (reported per 1,000) and one resumable checkpoint."""
    import torch

    from bench.data.episodes import eval_episodes
    from bench.engine.evaluate import evaluate

    setup, trainer = _prepare(config, data_root, threads)
    source, task = setup.sources["train"], setup.task
    stream = config.seeds.stream("train")  # the run's own training episodes, drawn here only to time the drawing
    sample = collate = place = 0.0
    for _ in range(iterations):
        t0 = time.perf_counter()
        episodes = [source.sample(trainer.ways, trainer.shots, trainer.queries, stream)
                    for _ in range(config.settings.train.meta_batch)]
        t1 = time.perf_counter()
        batch = source.collate(episodes, trainer.ways, trainer.shots)
        t2 = time.perf_counter()
        setup.place(batch)
        t3 = time.perf_counter()
        sample, collate, place = sample + t1 - t0, collate + t2 - t1, place + t3 - t2
    trainer.step()  # the method's one-off choices (MAML's impl) before anything is timed
    validation = trainer.validate()
    test = eval_episodes(setup.sources["test"], task, "test", test_episodes, config.settings.eval.seed)
    start = time.perf_counter()
    evaluate(setup.method, setup.sources["test"], test, task, setup.place, config.settings.eval.batch, trainer.steps.evaluate)
    test_seconds = time.perf_counter() - start
    start = time.perf_counter()
    torch.save(trainer.state_dict(), io.BytesIO())
    checkpoint = time.perf_counter() - start
    return {
        "sample_seconds": sample / iterations, "collate_seconds": collate / iterations, "place_seconds": place / iterations,
        "validation_seconds": validation["seconds"], "validation_episodes": validation["episodes"],
        "test_seconds_per_1000": 1000 * test_seconds / test_episodes, "test_episodes": test_episodes,
        "checkpoint_seconds": checkpoint,
    }


def harness_step(config: RunConfig, data_root: Path, iterations: int, warmup: int, threads: int | None = None) -> dict:
    from bench.engine.timing import time_training

    return time_training(config, data_root, iterations, warmup, threads=threads)


def _fresh(fn, *args) -> dict:
    """``fn(*args)`` in a fresh process, so that no figure inherits another's heap or caches."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def measure(configs: list[RunConfig], data_root: Path, iterations: int, warmup: int, repeat: int,
            test_episodes: int, threads: int | None = None, echo=lambda text: None) -> dict:
    """Every method's floor in both layouts, its harness iteration and the time outside its step.

    Timed figures are medians over ``repeat`` rounds; each round times every figure of every
    method once, in alternating order, so that a machine that slows down favours none.
    """
    import torch

    from bench.engine.device import device_name, pick_device, torch_threads
    from bench.engine.invocation import command
    from bench.engine.provenance import CODE_STATE

    jobs = []
    for config in configs:
        for layout in LAYOUTS:
            jobs.append((config.method, f"floor {layout}", floor_step, (config, data_root, layout, iterations, warmup, threads)))
        jobs.append((config.method, "harness", harness_step, (config, data_root, iterations, warmup, threads)))
    timed: dict[tuple[str, str], list[dict]] = {(m, what): [] for m, what, _, _ in jobs}
    load = [os.getloadavg()[0]]
    for round_ in range(repeat):
        for method, what, fn, args in jobs if round_ % 2 == 0 else reversed(jobs):
            echo(f"timing {method}: {what} (round {round_ + 1} of {repeat}) ...")
            timed[(method, what)].append(_fresh(fn, *args))
            load.append(os.getloadavg()[0])
    rows = []
    for config in configs:
        echo(f"timing {config.method}: outside the step ...")
        outside = _fresh(outside_step, config, data_root, iterations, test_episodes, threads)
        floors = {layout: timed[(config.method, f"floor {layout}")] for layout in LAYOUTS}
        floor = {layout: statistics.median(r["seconds_per_step"] for r in runs) for layout, runs in floors.items()}
        harness_runs = timed[(config.method, "harness")]
        harness = statistics.median(r["seconds_per_iteration"] for r in harness_runs)
        best = min(floor, key=floor.get)
        train = config.settings.train
        ways, shots, queries = config.train_shape()
        rows.append({
            "method": config.method, "profile": config.profile, "task": config.task,
            "shape": {"meta_batch": train.meta_batch, "ways": ways, "shots": shots, "queries": queries},
            "floor_seconds": floor, "floor_seconds_runs": {k: [r["seconds_per_step"] for r in v] for k, v in floors.items()},
            "best_floor": best, "flops_per_step": floors[best][0]["flops_per_step"],
            "harness_seconds": harness, "harness_seconds_runs": [r["seconds_per_iteration"] for r in harness_runs],
            "harness_memory_format": harness_runs[0]["memory_format"], "method_info": harness_runs[0]["method_info"],
            "harness_over_floor": harness / floor[best], "outside": outside,
        })
    device = pick_device(configs[0].settings.device)
    with torch_threads(threads):  # in this process: the rate of the threads the figures had
        gemm = gemm_gflops()
    return {
        "device": device_name(device), "torch": torch.__version__, "threads": threads or torch.get_num_threads(),
        **CODE_STATE, "gemm_gflops": gemm, "iterations": iterations, "warmup": warmup, "repeat": repeat,
        "load_average": {"start": load[0], "max": max(load), "end": load[-1]}, "command": command(), "rows": rows,
    }


def format_tables(result: dict) -> str:
    """The floor result as two console tables (the step, and the time outside it) with its provenance."""
    from bench.engine.provenance import commit_label

    commit = commit_label(result)
    load = result["load_average"]
    lines = [
        f"{result['device']}, {result['threads']} threads, torch {result['torch']}, commit {commit}; "
        f"GEMM 2048^3 {result['gemm_gflops']:.0f} GFLOP/s; {result['iterations']} iterations after "
        f"{result['warmup']} warm-up, median of {result['repeat']} rounds; load average {load['start']:.2f} "
        f"at the start, {load['max']:.2f} at most",
        "",
        f"{'method':12s} {'profile':8s} {'shape':16s} {'NCHW s':>8s} {'NHWC s':>8s} {'harness s':>10s} {'layout':>14s} "
        f"{'harness/floor':>13s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'of GEMM':>8s}",
    ]
    for r in result["rows"]:
        s, floor = r["shape"], r["floor_seconds"]
        shape = f"{s['meta_batch']}x{s['ways']}w{s['shots']}s{s['queries']}q"
        rate = r["flops_per_step"] / floor[r["best_floor"]] / 1e9
        lines.append(
            f"{r['method']:12s} {r['profile']:8s} {shape:16s} {floor['contiguous']:8.3f} {floor['channels_last']:8.3f} "
            f"{r['harness_seconds']:10.3f} {r['harness_memory_format']:>14s} {r['harness_over_floor']:12.2f}x "
            f"{r['flops_per_step'] / 1e9:7.1f} {rate:8.1f} {rate / result['gemm_gflops']:7.0%}"
        )
    lines += ["", f"{'method':12s} {'profile':8s} {'sample ms':>9s} {'collate ms':>10s} {'place ms':>9s} "
                  f"{'validation s':>12s} {'test s/1000':>11s} {'checkpoint s':>12s}"]
    for r in result["rows"]:
        o = r["outside"]
        lines.append(
            f"{r['method']:12s} {r['profile']:8s} {1000 * o['sample_seconds']:9.1f} {1000 * o['collate_seconds']:10.1f} "
            f"{1000 * o['place_seconds']:9.1f} {o['validation_seconds']:8.1f} ({o['validation_episodes']}) "
            f"{o['test_seconds_per_1000']:11.1f} {o['checkpoint_seconds']:12.2f}"
        )
    lines.append(
        "NCHW/NHWC s: the floor, one standalone training step on a pre-built meta-batch (contiguous, channels_last); "
        "harness s: Trainer.step in the layout memory_format chose; harness/floor: over the faster floor; "
        "GFLOP: the step's matrix and convolution FLOPs; of GEMM: the faster floor's rate over the GEMM rate. "
        "Outside the step: per iteration, drawing the episodes, collating, placing on the device; one validation "
        "(its episodes); test seconds per 1,000 episodes (measured on fewer); one checkpoint to memory."
    )
    return "\n".join(lines)
