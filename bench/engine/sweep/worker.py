"""``python -m bench.engine.sweep.worker JOB``: one run of a sweep, in a process of its own.

``JOB`` is a JSON file the sweep wrote (``write_job``): the resolved config, where its method's
class is (``module:QualName`` and the folder it imports from: the worker needs no method
registry, and a method from ``--methods-path`` is found without it), and the results and data
folders. The worker runs it (``plan.run_job``: resuming its interrupted run there, if any) and
writes what became of it to ``outcome_path(JOB)``: ``status`` (an ``Outcome``'s ``what``), the
run folder and the error line. That file is all the sweep
reads of a worker; what the run prints goes to the job's log, for people.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path

from bench.engine.runconfig import RunConfig
from bench.engine.sweep.plan import Job, Report, run_job
from bench.errors import RunInterrupted, StorageError, UserError, first_line, os_error_line
from bench.files import read_json, write_json
from bench.interface.method import Method
from bench.registry import class_path, import_class, import_root


def write_job(path: Path, config: RunConfig, out: Path, data_root: Path) -> None:
    write_json(path, {"config": config.to_dict(), "method_class": class_path(config.method_class),
                      "method_root": import_root(config.method_class), "out": str(out), "data_root": str(data_root)})


def outcome_path(job: Path) -> Path:
    return job.with_name(job.name.removesuffix(".job.json") + ".outcome.json")


def read_outcome(job: Path) -> Report | None:
    """What a worker reported for ``job``, or None where it wrote nothing readable (it was killed)."""
    try:
        outcome = read_json(outcome_path(job))
        report = Report(outcome["status"], outcome["folder"], outcome["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    types_ok = isinstance(report.status, str) and isinstance(report.error, str) and isinstance(report.folder, (str, type(None)))
    return report if types_ok else None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # before the run handles signals itself: the job ends interrupted, not killed


def work(job: Path) -> int:
    """Runs ``job``; returns the exit code (0, or the error's as the CLI gives it)."""
    from bench.engine.runconfig import from_record

    status, folder, error, code = "failed", None, "", 1
    try:
        spec = read_json(job)
        method_class = import_class(spec["method_class"], spec["config"]["method"], Method, spec.get("method_root"))
        config = from_record(spec["config"], lambda name: method_class, str(job))
        outcome = run_job(Job(0, config), Path(spec["out"]), Path(spec["data_root"]), True, lambda: False)
        for sig in (signal.SIGINT, signal.SIGTERM):  # the run is over: a late signal changes nothing
            signal.signal(sig, signal.SIG_IGN)
        status, error, code = outcome.what, outcome.error, 0
        folder = outcome.folder.path if outcome.folder else None
    except KeyboardInterrupt:
        status, error, code = "interrupted", "interrupted before its run began", RunInterrupted.exit_code
    except UserError as exc:
        error, code = " ".join(str(exc).splitlines()), exc.exit_code
        status = "interrupted" if isinstance(exc, RunInterrupted) else "failed"
    except OSError as exc:  # an unreadable job file, or a full disk outside the run
        error, code = f"job {job}: {os_error_line(exc)}", StorageError.exit_code
    except (ValueError, KeyError, TypeError) as exc:  # a job file of the wrong shape
        error = f"cannot read the job {job}: {first_line(exc)}"
    print(f"error: {error}" if error else f"{status}: {folder}", file=sys.stderr)
    write_json(outcome_path(job), dataclasses.asdict(Report(status, str(folder) if folder else None, error)))
    return code


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # SIGINT raises KeyboardInterrupt already
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.engine.sweep.worker JOB")
    from bench.engine.allocator import keep_freed_memory

    keep_freed_memory()
    sys.exit(work(Path(sys.argv[1])))
