"""A sweep's plan: the configs of a grid, which of them are finished in the results folder, which
resume an interrupted run there and which start afresh; and a job's outcome from its worker's report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from bench.data.tasks import get_task
from bench.engine.runconfig import CommandLine, RunConfig
from bench.errors import UserError
from bench.interface.method import Method
from bench.results.runfolder import Claim, RunFolder, config_digest, run_folders


def grid_configs(methods: list[type[Method]], tasks: list[str], seeds: list[int], points: list[dict], line: CommandLine,
                 skipped: Callable[[str], None]) -> list[RunConfig]:
    """The configs of tasks x methods x grid points x seeds; a method that does not support a
    task's kind is left out of it (``skipped`` says so)."""
    configs = []
    for task in tasks:
        kind = get_task(task).kind
        for method in methods:
            if kind not in method.kinds:
                skipped(f"skipping {method.name} on {task}: it does not support {kind} tasks")
                continue
            configs += [replace(line, seed=seed).config(method, task, point) for point in points for seed in seeds]
    return configs


DEMO_TASK = "omniglot-5w1s"


def demo_configs(methods: list[type[Method]], skipped: Callable[[str], None]) -> list[RunConfig]:
    """``demo``: each method on ``DEMO_TASK`` with its short ``demo`` profile, seed 0."""
    return grid_configs(methods, [DEMO_TASK], [0], [{}], CommandLine("demo"), skipped)


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
    """What became of one config of the grid: ``finished`` (before, or by another sweep since the
    plan), ``ran``, ``resumed``, ``failed``, ``elsewhere`` (another sweep is running it),
    ``interrupted`` (resumable) or ``not started`` (the sweep was interrupted first)."""

    config: RunConfig
    what: str
    folder: RunFolder | None = None
    error: str = ""


@dataclass(frozen=True)
class Report:
    """What a job's worker reported: an ``Outcome``'s ``what``, the run folder it ran in (None
    where it never made one) and its error line."""

    status: str
    folder: str | None
    error: str


@dataclass(frozen=True)
class Job:
    """A config still to run (``run_job`` finds out, when it starts, whether an interrupted run of
    it waits to be resumed), numbered in its sweep."""

    index: int
    config: RunConfig

    @property
    def name(self) -> str:
        """The job's name in the sweep's log folder."""
        c = self.config
        return f"{self.index:03d}-{c.task}-{c.method}-s{c.settings.seed}"


def plan(configs: list[RunConfig], out: Path) -> tuple[list[Outcome], list[Job]]:
    """The grid against what ``out`` holds: the outcomes of configs already finished, and the
    jobs of the others (a grid that names one config twice runs it once)."""
    if not configs:
        raise UserError("the sweep grid is empty (no method supports the tasks given)")
    done = scan_runs(out)[0]
    finished, todo, planned = [], [], set()
    for config in configs:
        digest = config_digest(config.to_dict())
        if digest in done:
            finished.append(Outcome(config, "finished", done[digest]))
        elif digest not in planned:
            planned.add(digest)
            todo.append(Job(len(todo), config))
    return finished, todo


DONE = ("finished", "ran", "resumed")
LEFT = ("interrupted", "not started")  # what an interrupted sweep leaves for the next one


def run_job(job: Job, out: Path, data_root: Path, progress: bool, stopped: Callable[[], bool]) -> Outcome:
    """Runs ``job`` in this process under the results folder's claim on its config: resumes the
    config's interrupted run where one waits (it may have been interrupted since the plan was
    made), and leaves it to the process that holds the claim, or to nobody once ``stopped``."""
    from bench.engine.run import run

    digest = config_digest(job.config.to_dict())
    with Claim(out, digest) as mine:
        if not mine:
            return Outcome(job.config, "elsewhere", None, "another sweep is running it now")
        done, resumable = scan_runs(out)
        if digest in done:
            return Outcome(job.config, "finished", done[digest])
        if stopped():
            return Outcome(job.config, "not started")
        resume = resumable.get(digest)
        return Outcome(job.config, "resumed" if resume else "ran", run(job.config, data_root, out, progress, resume))


def outcome_of(job: Job, report: Report) -> Outcome:
    """A job's outcome from what its worker reported: a finished one only where the run folder it
    names is complete."""
    folder = RunFolder(report.folder) if report.folder else None
    if report.status in DONE and folder is not None and folder.is_complete():
        return Outcome(job.config, report.status, folder)
    if report.status in LEFT + ("elsewhere",):
        return Outcome(job.config, report.status, None, report.error)
    error = report.error or f"the worker reported '{report.status}' but {report.folder} holds no finished run"
    return Outcome(job.config, "failed", None, error)
