"""The executor interface of a sweep, how a sweep takes SIGINT and SIGTERM, and the executor that
runs jobs one after another in this process."""

from __future__ import annotations

import signal
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from bench.engine.sweep.plan import Job, Outcome, run_job
from bench.errors import RunInterrupted


class Executor(ABC):
    """Runs a sweep's jobs and yields each one's outcome as it ends. A failure ends its own job
    only. SIGINT or SIGTERM to the sweep (``StopSignals``) interrupts each running job (it ends
    ``interrupted``, resumable) and starts no other (``not started``)."""

    @abstractmethod
    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        """Runs ``jobs`` into the results folder ``out``."""


class StopSignals:
    """SIGINT and SIGTERM while a sweep runs: recorded (``stopped``) and handed to ``on_signal``,
    which passes them on to the running jobs, instead of killing the sweep with its jobs mid-way."""

    def __init__(self, on_signal: Callable[[int], None] = lambda signum: None):
        self.received: int | None = None
        self._on_signal, self._previous = on_signal, {}

    def stopped(self) -> bool:
        return self.received is not None

    def _handle(self, signum, frame) -> None:
        self.received = signum
        self._on_signal(signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class InProcess(Executor):
    """One job after another in this process, with ``threads`` torch threads (None: torch's). A
    failed run stops the sweep, as it stops ``cli.py run``; an interrupted one (the run handles
    the signal itself) starts no other."""

    def __init__(self, data_root: Path, threads: int | None, progress: bool = True):
        self.data_root, self.threads, self.progress = data_root, threads, progress

    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        from bench.engine.device import torch_threads

        with StopSignals() as signals, torch_threads(self.threads):  # the runs happen here, as the outcomes are drawn
            for job in tqdm(jobs, desc="sweep", disable=not self.progress, position=1, leave=True):
                try:
                    yield run_job(job, out, self.data_root, self.progress, signals.stopped)
                except RunInterrupted as exc:
                    signals.received = signals.received or signal.SIGINT
                    yield Outcome(job.config, "interrupted", None, str(exc))
