"""A run's folder: the one module that knows its file names, when a run is complete, where its
resumable state is, how runs are told apart (the config digest) and the index of finished runs;
and the other folders of a results folder: ``sweeps/`` (a sweep's job logs), ``bench/`` and
``floor/`` (timing records) and ``report/``.

Layout of ``<results>/runs/<task>__<method>__<profile>[__<tag>]__s<seed>__<time>/``, in the order
a run writes it:
``config.json`` and ``environment.json`` at the start; ``train.jsonl``, ``val.jsonl``,
``state.pt`` and ``status.json`` at every checkpoint; ``best.pt`` at every validation
improvement; ``test_episodes.jsonl`` after testing; ``summary.json`` last. A run is complete
when ``summary.json`` holds a valid summary: nothing else decides it (checkpoints are not
needed to read a result, so a folder copied without them still counts).

torch is imported only to read and write the two checkpoints, so reading results needs no torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import StorageError, UserError, first_line, os_error_line
from bench.files import (append_jsonl, atomic_write_bytes, gzip_file, gzipped, read_json, read_jsonl, write_json,
                         write_jsonl)
from bench.results.summary import RunSummary, SummaryError, read_summary

RUNS = "runs"
INDEX = "index.jsonl"
SWEEPS = "sweeps"
REPORT = "report"
TIMING_RECORDS = ("bench", "floor")

CONFIG = "config.json"
ENVIRONMENT = "environment.json"
TRAIN = "train.jsonl"
VAL = "val.jsonl"
TEST = "test_episodes.jsonl"
SUMMARY = "summary.json"
STATUS = "status.json"
STATE = "state.pt"
BEST = "best.pt"
LOCK = ".lock"


# Recorded with a run but not a setting of what it computes: the memory layout changes float
# sums only (equal within float tolerance), so a finished run counts as done in either layout.
NOT_SETTINGS = ("memory_format",)
# Settings that records written before they existed lack, with the value those runs had.
FORMER_DEFAULTS = {"train": {"budget_clock": "wall", "classes": "train"}}


def config_digest(config: dict) -> str:
    """Identifies a resolved config: runs with equal digests ran the same settings (a record from
    before a setting existed counts with the value it ran with)."""
    settings = {k: v for k, v in config.items() if k not in NOT_SETTINGS}
    for section, defaults in FORMER_DEFAULTS.items():
        if isinstance(settings.get(section), dict):
            settings[section] = {**defaults, **settings[section]}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


class IncompleteRun(Exception):
    """A run folder whose result cannot be read; the message says why."""


@dataclass(frozen=True)
class RunResult:
    """What a complete run left: its config, summary, test episodes and validation curve."""

    folder: "RunFolder"
    config: dict
    summary: RunSummary
    test_rows: list[dict]
    val_rows: list[dict]
    environment: dict
    """The code and machine it ran with (commit, threads); empty where the file is missing or unreadable."""

    @property
    def metric(self) -> str:
        return self.summary.metric


class RunFolder:
    """One run's folder. ``create`` makes a new one; ``RunFolder(path)`` opens an existing one."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock: int | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def results_root(self) -> Path:
        """The results folder this run belongs to (``<results>/runs/<run>``)."""
        return self.path.parent.parent

    @property
    def plots_dir(self) -> Path:
        """Pictures drawn from the run (``plot-shifts``); ``report`` copies what it finds here."""
        return self.path / "plots"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    # -- creating and writing, in the order a run does it ------------------------------

    @classmethod
    def create(cls, results: Path, config: dict) -> "RunFolder":
        """A new, empty folder for a run of ``config`` (a resolved config as a dict).

        The name is ``<task>__<method>__<profile>[__<tag>]__s<seed>__<UTC time>``, with ``-2``,
        ``-3``, ... when taken: each candidate is claimed by an exclusive ``mkdir``, so concurrent
        runs never share a folder.
        """
        tag = f"__{config['tag']}" if config.get("tag") else ""
        base = f"{config['task']}__{config['method']}__{config['profile']}{tag}__s{config['seed']}__{now_stamp()}"
        runs = Path(results) / RUNS
        try:
            runs.mkdir(parents=True, exist_ok=True)
            for n in range(1, 10_000):
                path = runs / (base if n == 1 else f"{base}-{n}")
                try:
                    path.mkdir()
                    return cls(path)
                except FileExistsError:
                    continue
        except OSError as exc:
            raise StorageError(f"cannot create the run folder under {results}: {os_error_line(exc)}") from None
        raise UserError(f"cannot create the run folder under {results}: too many runs named {base}")

    # -- one process at a time -------------------------------------------------------------

    def lock(self) -> bool:
        """Claims the folder for this process (an exclusive ``flock`` held until ``unlock`` or the
        process ends, however it ends); False where another process holds it."""
        if self._lock is not None:
            return True
        self._lock = _flock(self.path / LOCK)
        return self._lock is not None

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def in_use(self) -> bool:
        """Whether another process is running this run now."""
        if self._lock is not None or not (self.path / LOCK).exists():
            return False
        if self.lock():
            self.unlock()
            return False
        return True

    def discard(self) -> None:
        """Removes a folder that ``create`` just made, when the run could not start (bad data,
        impossible episodes): nothing in it is worth keeping."""
        self.unlock()
        for child in self.path.iterdir():
            child.unlink()
        self.path.rmdir()

    @staticmethod
    def check_results(results: Path) -> None:
        """Refuses a results folder whose index cannot take a row (e.g. a folder in its place),
        before any run starts rather than after it finished."""
        index = Path(results) / INDEX
        if index.exists() and not index.is_file():
            raise UserError(f"cannot append to {index}: it is not a file")
        if index.exists():
            try:
                open(index, "ab").close()  # appends nothing; refused where the file is read-only
            except OSError as exc:
                raise StorageError(f"cannot append to {index}: {os_error_line(exc)}") from None

    def write_config(self, config: dict) -> None:
        write_json(self.path / CONFIG, config)

    def write_environment(self, environment: dict) -> None:
        write_json(self.path / ENVIRONMENT, environment)

    def has_environment(self) -> bool:
        return (self.path / ENVIRONMENT).is_file()

    def write_status(self, status: str, iteration: int, **extra: Any) -> None:
        """``running``, ``interrupted``, ``failed`` or ``complete``, and the iteration reached."""
        write_json(self.path / STATUS, {"status": status, "iteration": iteration, **extra})

    def write_curves(self, train_rows: list[dict], val_rows: list[dict]) -> None:
        write_jsonl(self.path / TRAIN, train_rows)
        write_jsonl(self.path / VAL, val_rows)

    def save_state(self, state: dict, method: str) -> None:
        """The resumable state (weights, optimizer, episode stream, progress) of a ``method`` run."""
        _save_torch(self.path / STATE, {"method": method, **self._identity(), **state})

    def save_best(self, state_dict: dict, method: str, task: str, iteration: int) -> None:
        """The best validation checkpoint so far."""
        _save_torch(self.path / BEST, {"method": method, **self._identity(), "task": task, "iteration": iteration,
                                       "state_dict": state_dict})

    def _identity(self) -> dict:
        """What a checkpoint records of the run that wrote it, so that no other run's folder takes it."""
        try:
            config = self.read_config()
        except UserError:
            return {}
        return {"config_sha256": config_digest(config), "task": config.get("task"), "seed": config.get("seed"), "run": self.name}

    def finish(self, test_rows: list[dict], summary: RunSummary) -> None:
        """Writes the test episodes, then the summary (last: it makes the run complete), marks
        the status and appends the summary to the results index."""
        record = summary.to_dict()
        write_jsonl(self.path / TEST, test_rows)
        write_json(self.path / SUMMARY, record)
        self.write_status("complete", summary.iterations)
        append_jsonl(self.results_root / INDEX, record)

    def write_evaluation(self, name: str, rows: list[dict], record: dict) -> Path:
        """A re-evaluation (``cli.py eval``) in ``evals/``, beside and apart from the run's own results."""
        write_jsonl(self.path / "evals" / f"{name}.episodes.jsonl", rows)
        write_json(self.path / "evals" / f"{name}.json", record)
        return self.path / "evals" / f"{name}.json"

    # -- reading -------------------------------------------------------------------------

    def read_config(self) -> dict:
        """The resolved config the run was made with; a one-line error when there is none."""
        try:
            config = read_json(self.path / CONFIG)
        except (OSError, ValueError):
            raise UserError(f"{self.path} is not a run folder (no readable {CONFIG})") from None
        if not isinstance(config, dict) or not all(isinstance(config.get(k), str) for k in ("method", "task", "profile")):
            raise UserError(f"{self.path} is not a run folder ({CONFIG} does not hold a run's config)")
        for key, (ok, what) in CONFIG_FIELDS.items():
            if key in config and not ok(config[key]):
                raise UserError(f"{self.path} {CONFIG}: {key} is {_shown(config[key])}, not {what}")
        return config

    def digest(self) -> str | None:
        """The config digest, or None where the folder has no readable config."""
        try:
            return config_digest(self.read_config())
        except UserError:
            return None

    def summary(self) -> RunSummary | None:
        """The summary of a complete run, None otherwise."""
        try:
            return read_summary(read_json(self.path / SUMMARY))
        except (OSError, ValueError):  # SummaryError is a ValueError
            return None

    def is_complete(self) -> bool:
        return self.summary() is not None

    def has_state(self) -> bool:
        return (self.path / STATE).is_file()

    def train_rows(self, up_to: int) -> list[dict]:
        """Training rows of iterations 1..``up_to`` (a resumed run drops what came after its state)."""
        return read_jsonl(self.path / TRAIN)[:up_to] if self._has(TRAIN) else []

    def val_rows(self, up_to: int | None = None) -> list[dict]:
        rows = read_jsonl(self.path / VAL) if self._has(VAL) else []
        return [r for r in rows if up_to is None or r["iteration"] <= up_to]

    def load_state(self, method: str) -> dict:
        if not self.has_state():
            raise UserError(f"{self.path} has no {STATE} to resume from")
        return self._own(_load_torch(self.path / STATE, method, "resume from",
                                     ("trainer", "best_value", "best_iteration", "train_seconds")), STATE)

    def load_best(self, method: str) -> dict:
        """The best checkpoint: ``state_dict`` and ``iteration``."""
        return self._own(_load_torch(self.path / BEST, method, "load checkpoint", ("state_dict", "iteration")), BEST)

    def _own(self, blob: dict, name: str) -> dict:
        """``blob``, unless it records another run than this folder's (checkpoints from before runs
        recorded themselves are taken as they are)."""
        mine = self.digest()
        if "config_sha256" in blob and mine is not None and blob["config_sha256"] != mine:
            raise UserError(f"{self.path / name} belongs to another run ({blob.get('run')}: task {blob.get('task')}, seed "
                            f"{blob.get('seed')}, config {str(blob['config_sha256'])[:12]}), not to {self.name} "
                            f"(config {mine[:12]}): a checkpoint is only used by the run that wrote it")
        return blob

    def result(self) -> RunResult:
        """Everything a report needs from a complete run.

        Raises:
            IncompleteRun: saying what is missing or unreadable.
        """
        if not (self.path / SUMMARY).is_file():
            raise IncompleteRun(f"no {SUMMARY}" + (f" (status {self._status()})" if self._status() else ""))
        try:
            summary = read_summary(read_json(self.path / SUMMARY))
        except SummaryError as exc:
            raise IncompleteRun(f"{SUMMARY} {exc}") from None
        except (OSError, ValueError) as exc:
            raise IncompleteRun(f"unreadable ({type(exc).__name__}: {first_line(exc, 80)})") from None
        try:
            config = self.read_config()
            metric = summary.metric
            test_rows = _rows(self.path / TEST, TEST_FIELDS, metric)
            val_rows = _rows(self.path / VAL, VAL_FIELDS, metric, curve=True)
        except UserError as exc:
            raise IncompleteRun(str(exc).replace(f"{self.path} ", "")) from None
        except (OSError, ValueError) as exc:
            raise IncompleteRun(f"unreadable ({type(exc).__name__}: {first_line(exc, 80)})") from None
        if not test_rows:
            raise IncompleteRun(f"{TEST} is empty")
        return RunResult(self, config, summary, test_rows, val_rows, self.read_environment())

    def read_environment(self) -> dict:
        """``environment.json``, or {} where it is missing or is not an object."""
        try:
            environment = read_json(self.path / ENVIRONMENT)
        except (OSError, ValueError):
            return {}
        return environment if isinstance(environment, dict) else {}

    def _has(self, name: str) -> bool:
        return (self.path / name).exists() or gzipped(self.path / name).is_file()

    def compact(self, train_points: int = 500) -> None:
        """Shrinks a complete run for committing: the training curve thinned to about
        ``train_points`` rows (the first and the last kept), every JSONL file gzipped (read back
        as before), no lock file. What the report reads (summary, config, environment, every
        test episode, the validation curve) is kept whole.

        Raises:
            UserError: the run is not complete or is in use.
        """
        if not self.is_complete() or self.in_use():
            raise UserError(f"{self.path} is not a complete run at rest: only those are compacted")
        if (self.path / TRAIN).exists():
            rows = read_jsonl(self.path / TRAIN)
            step = max(1, -(-len(rows) // train_points))
            write_jsonl(self.path / TRAIN, [r for i, r in enumerate(rows) if i % step == 0 or i == len(rows) - 1])
        for name in (TRAIN, VAL, TEST):
            if (self.path / name).exists():
                gzip_file(self.path / name)
        (self.path / LOCK).unlink(missing_ok=True)

    def _status(self) -> str | None:
        try:
            return read_json(self.path / STATUS).get("status")
        except (OSError, ValueError, AttributeError):
            return None


def _flock(path: Path) -> int | None:
    """An open descriptor of ``path`` (made if missing) holding an exclusive ``flock``, which lasts
    until it is closed or the process ends, however it ends; None where another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class Claim:
    """A results folder's claim on one resolved config (an exclusive ``flock`` on
    ``sweeps/claims/DIGEST``, held while the config runs and dropped however the process ends),
    so that two sweeps started together on one grid never both run the same config and seed."""

    def __init__(self, results: Path, digest: str):
        self.path = Path(results) / SWEEPS / "claims" / digest
        self._fd: int | None = None

    def __enter__(self) -> bool:
        """True where this process holds the claim now; False where another process does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = _flock(self.path)
        return self._fd is not None

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays, so no two processes lock two files
            self._fd = None


def sweep_log_dir(results: Path) -> Path:
    """A new folder for one sweep's job files and logs."""
    return Path(results) / SWEEPS / now_stamp()


def write_timing_record(results: Path, kind: str, name: str, record: dict) -> Path:
    """Writes a ``bench`` or ``floor`` record named ``name`` under ``results``; returns its path."""
    if kind not in TIMING_RECORDS:
        raise ValueError(f"unknown timing record kind {kind!r}")
    path = Path(results) / kind / f"{name}__{now_stamp()}.json"
    write_json(path, record)
    return path


def report_dir(results: Path) -> Path:
    """Where ``report`` writes by default."""
    return Path(results) / REPORT


def run_folders(results: Path) -> list[RunFolder]:
    """Every folder under ``results/runs``, in name order."""
    runs = Path(results) / RUNS
    return [RunFolder(p) for p in sorted(runs.iterdir())] if runs.is_dir() else []


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


# What a run's files must hold where the report and the sweep read them (field: check, in words).
CONFIG_FIELDS = {"seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
                 "tag": (lambda v: isinstance(v, str), "text"), "device": (lambda v: isinstance(v, str), "text"),
                 "method_settings": (lambda v: isinstance(v, dict), "a mapping"),
                 "train": (lambda v: isinstance(v, dict), "a mapping"), "eval": (lambda v: isinstance(v, dict), "a mapping")}
TEST_FIELDS = {"episode": (_count, "a count"), "fingerprint": (lambda v: isinstance(v, str), "text")}
VAL_FIELDS = {"iteration": (_count, "a count")}
METRIC_RANGES = {"accuracy": (lambda v: 0 <= v <= 1, "a number from 0 to 1"), "mse": (lambda v: v >= 0, "a number of at least 0")}


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 30 else text[:27] + "..."


def _rows(path: Path, fields: dict, metric: str, curve: bool = False) -> list[dict]:
    """The rows of a run's per-episode (or, ``curve``, validation) file, each field checked; a
    test episode listed twice makes the run unreadable rather than counted twice."""
    rows = read_jsonl(path)
    in_range, what = METRIC_RANGES.get(metric, (_number, "a number"))
    # NaN is a value a run can record: a diverged episode's error, an epoch the oracle did not validate
    checks = {**fields, metric: (lambda v: _number(v) and (math.isnan(v) or in_range(v)), what + " or NaN")}
    if curve:
        checks["train_seconds"] = (lambda v: _finite(v) and v >= 0, "seconds")
    episodes = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise IncompleteRun(f"{path.name} line {i + 1} is not an object")
        for key, (ok, what) in checks.items():
            if key not in row and key != "train_seconds":
                raise IncompleteRun(f"{path.name} line {i + 1} lacks {key}")
            if key in row and not ok(row[key]):
                raise IncompleteRun(f"{path.name} line {i + 1}: {key} is {_shown(row[key])}, not {what}")
        if not curve:
            if row["episode"] in episodes:
                raise IncompleteRun(f"{path.name} line {i + 1} repeats episode {row['episode']}")
            episodes.add(row["episode"])
    return rows


def _save_torch(path: Path, blob: dict) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(blob, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_torch(path: Path, method: str, what: str, keys: tuple[str, ...]) -> dict:
    """A checkpoint written for ``method`` holding ``keys``; a missing, truncated or foreign file
    is a one-line error."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"cannot {what} {path}: the file does not exist") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"cannot {what} {path}: {first_line(exc)}") from None
    if not isinstance(blob, dict) or blob.get("method") != method:
        raise UserError(f"cannot {what} {path}: it was not written for method '{method}'")
    if any(k not in blob for k in keys):
        raise UserError(f"cannot {what} {path}: it lacks {', '.join(k for k in keys if k not in blob)}")
    return blob
