"""Jobs as Ray tasks on a cluster (a local one without an address): each task starts a
``worker`` process, and Ray retries a failed task, which then resumes from the run's checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from bench.engine.sweep.executor import Executor, StopSignals
from bench.engine.sweep.plan import Job, Outcome, outcome_of
from bench.engine.sweep.processes import CODE_ROOT, child_env, run_child
from bench.engine.sweep.worker import Report
from bench.errors import UserError
from bench.results.runfolder import sweep_log_dir

# The code travels with the tasks; data and results must be at paths every node sees.
STOP = "STOP"
RAY_EXCLUDES = ["/.venv/", "/.git/", "/results/", "/.cache/", "/data/", "__pycache__/", "/.pytest_cache/", "/.hypothesis/", "/.ruff_cache/"]


def ray_task(job: Job, out: str, data_root: str, log_dir: str, threads: int) -> Report:
    """One job as a Ray task. A failure raises, so that Ray retries the task; the retry resumes
    the run's checkpoint. A sweep that is interrupted says so with a file in its log folder
    (``STOP``: the nodes share no process, only the folders), which each task watches."""
    stop = Path(log_dir) / STOP
    report = run_child(job, Path(out), Path(data_root), Path(log_dir), child_env(threads, None), stop.exists)
    if report.status == "failed":
        raise RuntimeError(f"{job.name}: {report.error}")
    return report


def stop_file(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / STOP).touch()


class RayTasks(Executor):
    """One Ray task per run on the cluster at ``address``, each with ``threads`` CPUs and, where
    the cluster has GPUs and the runs use them, 1/``runs_per_gpu`` of one."""

    def __init__(self, data_root: Path, address: str | None, threads: int, runs_per_gpu: int, retries: int,
                 progress: bool = True):
        self.data_root, self.address, self.threads = data_root, address, threads
        self.runs_per_gpu, self.retries, self.progress = runs_per_gpu, retries, progress

    def execute(self, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray (pip install ray, or rerun scripts/setup.sh)") from None
        from bench.engine import invocation
        from bench.engine.provenance import CODE_STATE, CODE_STATE_VARIABLE, method_code

        # Ray lowers its workers' priority (niceness 15) under its own processes; here a worker's
        # task is the training run itself, whose times are results: beside other work it ran many
        # times slower than the same run in a local sweep. Ray's job supervisor asks for 0 the
        # same way; each run records the niceness it had in its environment record.
        runtime_env = {"working_dir": str(CODE_ROOT), "excludes": RAY_EXCLUDES,
                       "env_vars": {CODE_STATE_VARIABLE: json.dumps(CODE_STATE), invocation.VARIABLE: invocation.command(),
                                    "RAY_USAGE_STATS_ENABLED": "0",
                                    "RAY_worker_niceness": "0"}}
        # A method from --methods-path lives outside the working directory: Ray ships its package too.
        outside = sorted({c["path"] for c in (method_code(j.config.method_class) for j in jobs) if c["source"] == "path"})
        if outside:
            runtime_env["py_modules"] = outside
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        except Exception as exc:  # ray raises many types for an unreachable or refusing cluster
            where = f" at {self.address}" if self.address else ""
            raise UserError(f"cannot start or join the Ray cluster{where}: {exc}") from None
        try:
            yield from self._wait(ray, jobs, out)
        finally:
            ray.shutdown()

    def _wait(self, ray, jobs: list[Job], out: Path) -> Iterator[Outcome]:
        uses_gpu = any(j.config.settings.device != "cpu" for j in jobs) and ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(num_cpus=self.threads, num_gpus=1 / self.runs_per_gpu if uses_gpu else 0,
                          max_retries=self.retries, retry_exceptions=True)(ray_task)
        log_dir = sweep_log_dir(out.resolve())
        pending = {task.remote(job, str(out.resolve()), str(self.data_root.resolve()), str(log_dir), self.threads): job
                   for job in jobs}
        failed = 0
        with tqdm(total=len(jobs), desc="sweep (ray)", disable=not self.progress, dynamic_ncols=True) as bar, \
                StopSignals(lambda signum: stop_file(log_dir)):
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=5)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        report = ray.get(ref)
                    except Exception as exc:  # the task failed on every retry
                        report = Report("failed", None, str(exc).splitlines()[-1] if str(exc) else type(exc).__name__)
                    outcome = outcome_of(job, report)
                    failed += outcome.what == "failed"
                    bar.set_postfix(pending=len(pending), failed=failed)
                    bar.update(1)
                    yield outcome
                if not ready:
                    time.sleep(0.1)
