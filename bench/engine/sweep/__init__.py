"""``cli.py sweep``: a grid of runs against what the results folder already holds (``plan``),
handed to one ``Executor`` (``executor``: one after another in this process; ``processes``:
several child processes at once; ``ray_tasks``: one Ray task per run), each child a
``worker`` process that reports its outcome in a file, not in printed text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from bench.engine.runconfig import RunConfig
from bench.engine.sweep.executor import Executor, InProcess
from bench.engine.sweep.plan import LEFT, Outcome, plan, scan_runs
from bench.errors import RunFailed, RunInterrupted
from bench.registry import Registry
from bench.results.runfolder import SWEEPS

__all__ = ["EXECUTORS", "Executor", "ExecutorOptions", "Outcome", "pick", "plan", "run_grid", "scan_runs", "sweep"]


def run_grid(configs: list[RunConfig], out: Path, executor: Executor) -> Iterator[Outcome]:
    """Every config's outcome: those finished before first, then the others as ``executor`` ends
    them. An interrupted sweep ends with ``RunInterrupted`` (exit 4), saying what is left."""
    finished, todo = plan(configs, out)
    yield from finished
    left = []
    for outcome in executor.execute(todo, out):
        left += [outcome] if outcome.what in LEFT else []
        yield outcome
    if left:
        interrupted = sum(o.what == "interrupted" for o in left)
        raise RunInterrupted(f"sweep interrupted: {len(left)} of {len(configs)} runs left ({interrupted} interrupted and "
                             f"resumable, {len(left) - interrupted} not started); run the same sweep again to carry on")


def sweep(configs: list[RunConfig], out: Path, executor: Executor, tell: Callable[[Outcome], None]) -> None:
    """``cli.py sweep``: ``run_grid``, telling each outcome as it comes; failed runs end it with
    ``RunFailed`` once the others are done (a sweep again resumes them)."""
    failed = 0
    for outcome in run_grid(configs, out, executor):
        failed += outcome.what == "failed"
        tell(outcome)
    if failed:
        raise RunFailed(f"{failed} of {len(configs)} runs failed (logs under {out / SWEEPS}); sweep again to resume them")


@dataclass(frozen=True)
class ExecutorOptions:
    """What a sweep's command line says about running its jobs."""

    data_root: Path
    jobs: int = 1
    threads_per_run: int | None = None  # None: the cores shared out among the jobs
    runs_per_gpu: int = 1
    address: str | None = None  # Ray: the cluster to join
    retries: int = 2  # Ray: times a failed run is retried
    device: str | None = None

    @property
    def threads(self) -> int:
        return self.threads_per_run or max(1, (os.cpu_count() or 1) // self.jobs)


def _local(options: ExecutorOptions) -> Executor:
    """``jobs`` > 1: child processes on this machine; else one run after another in this process."""
    if options.jobs == 1:
        return InProcess(options.data_root, options.threads_per_run)
    from bench.engine.device import visible_gpus
    from bench.engine.sweep.processes import ChildProcesses

    return ChildProcesses(options.data_root, options.jobs, options.threads, visible_gpus(options.device), options.runs_per_gpu)


def _ray(options: ExecutorOptions) -> Executor:
    """One Ray task per run."""
    from bench.engine.sweep.ray_tasks import RayTasks  # imports Ray's machinery only when asked for

    return RayTasks(options.data_root, options.address, options.threads, options.runs_per_gpu, options.retries)


# An executor is a module of this package and one line here (``--executor NAME`` picks it).
EXECUTORS: Registry[Callable[[ExecutorOptions], Executor]] = Registry("executor")
EXECUTORS.add("local", _local)
EXECUTORS.add("ray", _ray)


def pick(name: str, options: ExecutorOptions) -> Executor:
    """The executor registered as ``name``, set up with ``options``; an unknown name is a one-line error."""
    return EXECUTORS.get(name)(options)
