"""Jobs as child processes on this machine: each a ``worker`` with its share of the cores (and
of the GPUs), its output in the sweep's log folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from queue import Queue
from typing import Callable, Iterator

from tqdm import tqdm

from bench.engine.sweep.executor import Executor, StopSignals
from bench.engine.sweep.plan import Job, Outcome, outcome_of
from bench.engine.sweep.worker import Report, outcome_path, read_outcome, write_job
from bench.results.runfolder import sweep_log_dir

CODE_ROOT = Path(__file__).resolve().parents[3]  # where ``python -m bench...`` finds this code


def worker_command(job_file: Path) -> list[str]:
    return [sys.executable, "-m", "bench.engine.sweep.worker", str(job_file)]


def _die_with_parent() -> None:
    """In the child: be killed when the process that started it dies (Linux), so that killing a
    sweep never leaves its runs going on alone."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_env(threads: int, gpu: str | None) -> dict[str, str]:
    """A child's share of the machine: its threads, and the one GPU it sees (if any)."""
    env = {"OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def run_child(job: Job, out: Path, data_root: Path, log_dir: Path, env: dict[str, str], stopped: Callable[[], bool]) -> Report:
    """Runs (or resumes) ``job`` in a worker process; returns what it reported (``failed`` with
    ``killed by signal N`` where it reported nothing). Once ``stopped`` (polled), the worker gets
    SIGTERM and ends its run ``interrupted``; a job not begun by then is ``not started``.

    Its output goes to ``log_dir/<job>.log``, which begins with the command (to rerun it by hand).
    """
    if stopped():
        return Report("not started", None, "")
    log_dir.mkdir(parents=True, exist_ok=True)
    job_file = log_dir / f"{job.name}.job.json"
    write_job(job_file, job.config, out, data_root)
    outcome_path(job_file).unlink(missing_ok=True)  # a retried job's earlier attempt must not answer for it
    command = worker_command(job_file)
    with open(log_dir / f"{job.name}.log", "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        child = subprocess.Popen(command, stdout=log, stderr=log, env={**os.environ, **env}, preexec_fn=_die_with_parent)
        signalled = False
        while True:
            try:
                code = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stopped() and not signalled:
                    child.send_signal(signal.SIGTERM)
                    signalled = True
    reported = read_outcome(job_file)
    if reported is None:
        return Report("failed", None, f"killed by signal {-code}" if code < 0 else f"exit code {code} without an outcome")
    return reported


class ChildProcesses(Executor):
    """Up to ``jobs`` runs at once, each a child process; a crash or an out-of-memory kill ends
    that run only, a signal to the sweep interrupts them all. GPUs are shared out by
    ``CUDA_VISIBLE_DEVICES``, ``runs_per_gpu`` on each."""

    def __init__(self, data_root: Path, jobs: int, threads: int, gpus: list[str], runs_per_gpu: int, progress: bool = True):
        self.data_root, self.jobs, self.threads, self.gpus, self.runs_per_gpu = data_root, jobs, threads, gpus, runs_per_gpu
        self.progress = progress

    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        slots: Queue = Queue()
        for gpu in self.gpus or [None]:
            for _ in range(self.runs_per_gpu if self.gpus else self.jobs):
                slots.put(gpu)
        log_dir = sweep_log_dir(out)
        counts = {"running": 0, "failed": 0}
        lock = threading.Lock()

        def one(job: Job) -> Report:
            gpu = slots.get()
            with lock:
                counts["running"] += 1
            try:
                return run_child(job, out, self.data_root, log_dir, child_env(self.threads, gpu), signals.stopped)
            finally:
                with lock:
                    counts["running"] -= 1
                slots.put(gpu)

        bar = tqdm(total=len(jobs), desc="sweep", disable=not self.progress, dynamic_ncols=True)
        with bar, StopSignals() as signals, ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(one, job): job for job in jobs}
            for future in as_completed(futures):
                outcome = outcome_of(futures[future], future.result())
                with lock:
                    counts["failed"] += outcome.what == "failed"
                    bar.set_postfix(running=counts["running"], failed=counts["failed"])
                bar.update(1)
                yield outcome
