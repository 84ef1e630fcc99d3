"""The executor interface of a sweep, and the executor that runs jobs one after another in this process."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from bench.engine.sweep.plan import Job, Outcome, resumable_folder


class Executor(ABC):
    """Runs a sweep's jobs and yields each one's outcome as it ends. A failure ends its own job
    only; each executor resumes a job's interrupted run where the plan found one."""

    @abstractmethod
    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        """Runs ``jobs`` into the results folder ``out``."""


class InProcess(Executor):
    """One job after another in this process, with ``threads`` torch threads (None: torch's). A
    failed run stops the sweep, as it stops ``cli.py run``."""

    def __init__(self, data_root: Path, threads: int | None, progress: bool = True):
        self.data_root, self.threads, self.progress = data_root, threads, progress

    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        from bench.engine.device import torch_threads
        from bench.engine.run import run

        with torch_threads(self.threads):  # the runs happen here, as the outcomes are drawn
            for job in tqdm(jobs, desc="sweep", disable=not self.progress, position=1, leave=True):
                resume = resumable_folder(job.config, out) if job.resumes else None
                folder = run(job.config, self.data_root, out, resume=resume)
                yield Outcome(job.config, "resumed" if resume else "ran", folder)
