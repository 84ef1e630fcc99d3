"""``cli.py sweep``: a grid of runs, skipping runs already finished with the same config and
resuming interrupted ones; one at a time in this process, several at once in child processes
(``--jobs``), or as Ray tasks on a cluster (``--executor ray``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Callable, Iterator

from tqdm import tqdm

from bench.engine.runconfig import RunConfig
from bench.errors import UserError
from bench.files import write_json
from bench.results.runfolder import RunFolder, config_digest, now_stamp, run_folders

CLI = Path(__file__).resolve().parents[2] / "cli.py"


def scan_runs(out: Path) -> tuple[dict[str, RunFolder], dict[str, RunFolder]]:
    """Config digest -> folder, for complete runs and for the others that no process is running
    now (interrupted, or killed even before their first checkpoint: they resume from it, or from
    the start in the same folder)."""
    done, resumable = {}, {}
    for folder in run_folders(out):
        digest = folder.digest()
        if digest is None:
            continue  # not a run folder, or a damaged one
        if folder.is_complete():
            done[digest] = folder
        elif not folder.in_use() and (digest not in resumable or folder.has_state()):
            resumable[digest] = folder
    return done, resumable


@dataclass
class Outcome:
    """What became of one config of the grid: ``finished`` (before), ``ran``, ``resumed`` or ``failed``."""

    config: RunConfig
    what: str
    folder: RunFolder | None = None
    error: str = ""


def sweep(
    configs: list[RunConfig], run_one: Callable[[RunConfig, RunFolder | None], RunFolder], out: Path, progress: bool = True
) -> Iterator[Outcome]:
    """Runs every config not already finished, one at a time in this process, resuming
    interrupted ones (a failure stops the sweep, as it stops a run)."""
    finished, todo = plan(configs, out)
    yield from finished
    for config, resumes in tqdm(todo, desc="sweep", disable=not progress, position=1, leave=True):
        _, resumable = scan_runs(out)  # the folder as it is now: it may have been resumed elsewhere since
        resume = resumable.get(config_digest(config.to_dict())) if resumes else None
        yield Outcome(config, "resumed" if resume else "ran", run_one(config, resume))


# -- runs in child processes ----------------------------------------------------------------


def config_file_record(config: RunConfig) -> dict:
    """The resolved config in the config-file form of ``run --config`` (which then resolves to it exactly)."""
    record = config.to_dict()
    settings = {k: v for k, v in record.items() if k not in ("method", "task", "profile", "method_settings")}
    return {**settings, "method": record["method_settings"]}


def run_command(config: RunConfig, out: Path, data_root: Path, config_path: Path) -> list[str]:
    """The ``cli.py run`` command line that runs ``config``, or resumes its interrupted run under ``out``."""
    _, resumable = scan_runs(out)
    folder = resumable.get(config_digest(config.to_dict()))
    if folder is not None:
        return [sys.executable, str(CLI), "run", "--resume", str(folder.path), "--data-root", str(data_root)]
    write_json(config_path, config_file_record(config))
    return [sys.executable, str(CLI), "run", "--method", config.method, "--task", config.task, "--profile", config.profile,
            "--config", str(config_path), "--out", str(out), "--data-root", str(data_root)]


def _die_with_parent() -> None:
    """In the child: be killed when the process that started it dies (Linux), so that killing a
    sweep worker never leaves its run going on alone."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_child(config: RunConfig, out: Path, data_root: Path, log_dir: Path, name: str, env: dict[str, str]) -> tuple[int, str]:
    """Runs (or resumes) one config in a child ``cli.py run``; returns its exit code and last error line.

    Its output goes to ``log_dir/<name>.log``, which begins with the command (to rerun it by hand).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    command = run_command(config, out, data_root, log_dir / f"{name}.yaml")  # a --config file (JSON is YAML)
    with open(log_dir / f"{name}.log", "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        code = subprocess.call(command, stdout=log, stderr=log, env={**os.environ, **env}, preexec_fn=_die_with_parent)
    errors = [line for line in (log_dir / f"{name}.log").read_text(errors="replace").splitlines() if line.startswith("error:")]
    return code, (errors[-1][7:] if errors else f"exit code {code}")


def child_env(threads: int, gpu: str | None) -> dict[str, str]:
    """A child's share of the machine: its threads, and the one GPU it sees (if any)."""
    env = {"OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def _outcome(config: RunConfig, out: Path, code: int, error: str, resumed: bool) -> Outcome:
    done, _ = scan_runs(out)
    folder = done.get(config_digest(config.to_dict()))
    if code == 0 and folder is not None:
        return Outcome(config, "resumed" if resumed else "ran", folder)
    return Outcome(config, "failed", folder, error if code > 0 else f"killed by signal {-code}")


def plan(configs: list[RunConfig], out: Path) -> tuple[list[Outcome], list[tuple[RunConfig, bool]]]:
    """The grid against what ``out`` holds: the outcomes of configs already finished, and the
    others, each with whether it resumes an earlier run."""
    if not configs:
        raise UserError("the sweep grid is empty (no method supports the tasks given)")
    done, resumable = scan_runs(out)
    finished, todo, planned = [], [], set()
    for config in configs:
        digest = config_digest(config.to_dict())
        if digest in done:
            finished.append(Outcome(config, "finished", done[digest]))
        elif digest not in planned:  # a grid that names one config twice runs it once
            planned.add(digest)
            todo.append((config, digest in resumable))
    return finished, todo


def parallel_sweep(configs: list[RunConfig], out: Path, data_root: Path, jobs: int, threads: int, gpus: list[str],
                   runs_per_gpu: int, progress: bool = True) -> Iterator[Outcome]:
    """Up to ``jobs`` runs at once, each a child process; a crash or an out-of-memory kill ends
    that run only. GPUs are shared out by ``CUDA_VISIBLE_DEVICES``, ``runs_per_gpu`` on each."""
    finished, todo = plan(configs, out)
    yield from finished
    slots: Queue = Queue()
    for gpu in gpus or [None]:
        for _ in range(runs_per_gpu if gpus else jobs):
            slots.put(gpu)
    log_dir = out / "sweeps" / now_stamp()
    counts = {"running": 0, "failed": 0}
    lock = threading.Lock()

    def one(index: int, config: RunConfig) -> tuple[int, str]:
        gpu = slots.get()
        with lock:
            counts["running"] += 1
        try:
            name = f"{index:03d}-{config.task}-{config.method}-s{config.settings.seed}"
            return run_child(config, out, data_root, log_dir, name, child_env(threads, gpu))
        finally:
            with lock:
                counts["running"] -= 1
            slots.put(gpu)

    bar = tqdm(total=len(todo), desc="sweep", disable=not progress, dynamic_ncols=True)
    with bar, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, i, config): (config, resumed) for i, (config, resumed) in enumerate(todo)}
        for future in as_completed(futures):
            config, resumed = futures[future]
            code, error = future.result()
            outcome = _outcome(config, out, code, error, resumed)
            with lock:
                counts["failed"] += outcome.what == "failed"
                bar.set_postfix(running=counts["running"], failed=counts["failed"])
            bar.update(1)
            yield outcome


# -- runs as Ray tasks ------------------------------------------------------------------------


def ray_task(config: RunConfig, out: str, data_root: str, log_dir: str, name: str, threads: int) -> tuple[int, str]:
    """One run as a Ray task: runs or resumes ``config`` in a child ``cli.py run``. A failure
    raises, so that Ray retries the task; the retry finds the run's checkpoint and resumes."""
    code, error = run_child(config, Path(out), Path(data_root), Path(log_dir), name, child_env(threads, None))
    if code != 0:
        raise RuntimeError(f"{name}: {error}")
    return code, error


RAY_EXCLUDES = ["/.venv/", "/.git/", "/results/", "/.cache/", "/data/", "__pycache__/", "/.pytest_cache/", "/.hypothesis/", "/.ruff_cache/"]


def ray_sweep(configs: list[RunConfig], out: Path, data_root: Path, address: str | None, threads: int, runs_per_gpu: int,
              retries: int, progress: bool = True) -> Iterator[Outcome]:
    """One Ray task per run on the cluster at ``address`` (a local one without it), each with
    ``threads`` CPUs and, where the cluster has GPUs and the runs use them, 1/``runs_per_gpu`` of one."""
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray (pip install ray, or rerun scripts/setup.sh)") from None
    finished, todo = plan(configs, out)
    yield from finished
    try:
        # The code travels with the tasks; data and results must be at paths every node sees.
        from bench.engine.provenance import CODE_STATE, CODE_STATE_VARIABLE

        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"working_dir": str(CLI.parent), "excludes": RAY_EXCLUDES,
                              "env_vars": {CODE_STATE_VARIABLE: json.dumps(CODE_STATE), "RAY_USAGE_STATS_ENABLED": "0"}})
    except Exception as exc:  # ray raises many types for an unreachable or refusing cluster
        raise UserError(f"cannot start or join the Ray cluster{f' at {address}' if address else ''}: {exc}") from None
    try:
        uses_gpu = any(c.settings.device != "cpu" for c, _ in todo) and ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(num_cpus=threads, num_gpus=1 / runs_per_gpu if uses_gpu else 0, max_retries=retries,
                          retry_exceptions=True)(ray_task)
        log_dir = out.resolve() / "sweeps" / now_stamp()
        pending = {
            task.remote(config, str(out.resolve()), str(data_root.resolve()), str(log_dir),
                        f"{i:03d}-{config.task}-{config.method}-s{config.settings.seed}", threads): (config, resumed)
            for i, (config, resumed) in enumerate(todo)
        }
        failed = 0
        with tqdm(total=len(todo), desc="sweep (ray)", disable=not progress, dynamic_ncols=True) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=5)
                for ref in ready:
                    config, resumed = pending.pop(ref)
                    try:
                        code, error = ray.get(ref)
                    except Exception as exc:  # the task failed on every retry
                        code, error = 1, str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
                    outcome = _outcome(config, out, code, error, resumed)
                    failed += outcome.what == "failed"
                    bar.set_postfix(pending=len(pending), failed=failed)
                    bar.update(1)
                    yield outcome
                if not ready:
                    time.sleep(0.1)
    finally:
        ray.shutdown()



def run_grid(configs: list[RunConfig], out: Path, data_root: Path, executor: str, jobs: int, threads_per_run: int | None,
             runs_per_gpu: int, address: str | None, retries: int, device: str | None) -> Iterator[Outcome]:
    """The grid's outcomes from the executor asked for: Ray tasks, ``jobs`` child processes, or
    one run after another in this process. On CPU each run gets ``threads_per_run`` threads
    (default: the cores shared out among the jobs)."""
    from bench.engine.device import torch_threads, visible_gpus
    from bench.engine.run import run as run_one

    threads = threads_per_run or max(1, (os.cpu_count() or 1) // jobs)
    if executor == "ray":
        yield from ray_sweep(configs, out, data_root, address, threads, runs_per_gpu, retries)
    elif jobs > 1:
        yield from parallel_sweep(configs, out, data_root, jobs, threads, visible_gpus(device), runs_per_gpu)
    else:
        with torch_threads(threads_per_run):  # the runs happen in this process, as the outcomes are drawn
            yield from sweep(configs, lambda c, resume: run_one(c, data_root, out, resume=resume), out)
