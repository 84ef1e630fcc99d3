"""A complete run's summary (the run folder's summary file) as one typed record: the run writes it with
``RunSummary.to_dict`` and everything that reads it gets a ``RunSummary`` from ``read_summary``,
which checks every field's type and range and names the field that fails.

Records written before a field existed read with the value those runs had (``None`` where
nothing was measured); the file's key order is the order of the fields below, with the test
metrics (``summarise``'s mean and ``_ci95`` of every per-episode number) after ``metric``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any


class SummaryError(ValueError):
    """A summary that is not a complete run's; the message names the field."""


@dataclass(frozen=True)
class Budget:
    """What bounded training: the limits set, and which one stopped it."""

    iterations: int
    budget_seconds: float
    patience: int
    stopped_by: str | None
    best_at_last_validation: bool
    clock: str = "wall"  # records from before the CPU clock existed counted wall seconds

    def to_dict(self) -> dict:
        return {"iterations": self.iterations, "budget_seconds": self.budget_seconds, "clock": self.clock,
                "patience": self.patience, "stopped_by": self.stopped_by,
                "best_at_last_validation": self.best_at_last_validation}


@dataclass(frozen=True)
class RunSummary:
    method: str
    task: str
    profile: str
    seed: int
    run: str
    metric: str
    metrics: dict[str, float]  # every test metric and its ``_ci95``, by name (NaN where a run diverged)
    episodes: int
    method_info: dict
    best_iteration: int
    best_val: float | None  # None where no validation gave a number
    iterations: int
    train_seconds: float
    seconds_per_iteration: float
    episodes_per_second: float
    test_ms_per_episode: float
    wall_seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str
    device: str
    resumed: bool
    finished: str
    protocol: str = ""
    tag: str = ""
    compile: dict | None = None
    memory_format: dict | None = None
    model: dict | None = None
    budget: Budget | None = None
    train_cpu_seconds: float | None = None
    memory: dict | None = None
    load_average_end: float | None = None
    seeds: dict | None = field(default=None)
    task_version: int = 1  # the task spec's version the run was made with (runs before it was recorded: 1)

    @property
    def value(self) -> float:
        """The primary test metric."""
        return self.metrics[self.metric]

    @property
    def ci95(self) -> float:
        return self.metrics[f"{self.metric}_ci95"]

    def to_dict(self) -> dict:
        """The summary file's record, keys in the order runs have always written them."""
        record = {"method": self.method, "task": self.task, "profile": self.profile, "protocol": self.protocol,
                  "tag": self.tag, "seed": self.seed, "run": self.run, "metric": self.metric, **self.metrics,
                  "episodes": self.episodes, "method_info": self.method_info, "compile": self.compile,
                  "memory_format": self.memory_format, "model": self.model, "best_iteration": self.best_iteration,
                  "best_val": self.best_val, "iterations": self.iterations,
                  "budget": self.budget.to_dict() if self.budget else None, "train_seconds": self.train_seconds,
                  "train_cpu_seconds": self.train_cpu_seconds, "seconds_per_iteration": self.seconds_per_iteration,
                  "episodes_per_second": self.episodes_per_second, "test_ms_per_episode": self.test_ms_per_episode,
                  "wall_seconds": self.wall_seconds, "peak_memory_bytes": self.peak_memory_bytes,
                  "peak_memory_kind": self.peak_memory_kind, "memory": self.memory, "device": self.device,
                  "resumed": self.resumed, "status": "complete", "finished": self.finished,
                  "load_average_end": self.load_average_end, "seeds": self.seeds, "task_version": self.task_version}
        return {k: v for k, v in record.items() if v is not None}


# -- reading ------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _wrong(record: dict, key: str, what: str) -> SummaryError:
    """The error for a field that is not ``what`` (or is missing)."""
    return SummaryError(f"field '{key}' must be {what}, not {_kind(record[key])}" if key in record else f"lacks '{key}'")


def _text(record: dict, key: str, default: str | None = None) -> str:
    value = record.get(key, default)
    if not isinstance(value, str):
        raise _wrong(record, key, "text")
    return value


def _int(record: dict, key: str, low: int | None = 0) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(record, key, "an integer")
    if low is not None and value < low:
        raise SummaryError(f"field '{key}' must be at least {low}, not {value}")
    return value


def _number(record: dict, key: str, finite: bool = True, optional: bool = False) -> float | None:
    """A number (int or float, never a bool); ``finite``: also finite and not negative (times, counts)."""
    value = record.get(key)
    if value is None and optional and key not in record:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(record, key, "a number")
    if finite and not (math.isfinite(value) and value >= 0):
        raise SummaryError(f"field '{key}' must be a finite number of at least 0, not {value}")
    return float(value)


def _section(record: dict, key: str) -> dict | None:
    value = record.get(key)
    if value is not None and not isinstance(value, dict):
        raise SummaryError(f"field '{key}' must be an object, not {_kind(value)}")
    return value


def _budget(record: dict) -> Budget | None:
    section = _section(record, "budget")
    if section is None:
        return None
    stopped = section.get("stopped_by")
    clock = section.get("clock", "wall")
    if stopped is not None and not isinstance(stopped, str):
        raise SummaryError(f"field 'budget.stopped_by' must be text, not {_kind(stopped)}")
    if clock not in ("wall", "cpu"):
        raise SummaryError(f"field 'budget.clock' must be wall or cpu, not {clock!r}")
    last = section.get("best_at_last_validation")
    if not isinstance(last, bool):
        raise SummaryError(f"field 'budget.best_at_last_validation' must be true or false, not {_kind(last)}")
    try:
        return Budget(_int(section, "iterations"), _number(section, "budget_seconds"), _int(section, "patience"),
                      stopped, last, clock)
    except SummaryError as exc:
        raise SummaryError(str(exc).replace("field '", "field 'budget.").replace("lacks '", "lacks 'budget.")) from None


KNOWN = {f.name for f in fields(RunSummary)} | {"status"}


def read_summary(record: Any) -> RunSummary:
    """The ``RunSummary`` of a summary file's record.

    Raises:
        SummaryError: the record is not a complete run's, or a field has the wrong type or range
            (the message names it).
    """
    if not isinstance(record, dict):
        raise SummaryError(f"holds {_kind(record)}, not an object")
    if record.get("status") != "complete":
        raise SummaryError("does not record a complete run")
    metric = _text(record, "metric")
    metrics = {}
    for key, value in record.items():
        if key not in KNOWN:
            metrics[key] = _number(record, key, finite=False)
    for key in (metric, f"{metric}_ci95"):
        if key not in metrics:
            raise SummaryError(f"lacks a number for '{key}'")
    resumed = record.get("resumed")
    if not isinstance(resumed, bool):
        raise SummaryError(f"field 'resumed' must be true or false, not {_kind(resumed)}")
    return RunSummary(
        method=_text(record, "method"), task=_text(record, "task"), profile=_text(record, "profile"),
        seed=_int(record, "seed", low=None), run=_text(record, "run"), metric=metric, metrics=metrics,
        episodes=_int(record, "episodes", low=1), method_info=_section(record, "method_info") or {},
        best_iteration=_int(record, "best_iteration"), best_val=None if record.get("best_val") is None else _number(record, "best_val", finite=False),
        iterations=_int(record, "iterations"), train_seconds=_number(record, "train_seconds"),
        seconds_per_iteration=_number(record, "seconds_per_iteration"),
        episodes_per_second=_number(record, "episodes_per_second"),
        test_ms_per_episode=_number(record, "test_ms_per_episode"), wall_seconds=_number(record, "wall_seconds"),
        peak_memory_bytes=_int(record, "peak_memory_bytes"), peak_memory_kind=_text(record, "peak_memory_kind"),
        device=_text(record, "device"), resumed=resumed, finished=_text(record, "finished"),
        protocol=_text(record, "protocol", ""), tag=_text(record, "tag", ""),
        compile=_section(record, "compile"), memory_format=_section(record, "memory_format"),
        model=_section(record, "model"), budget=_budget(record),
        train_cpu_seconds=_number(record, "train_cpu_seconds", optional=True), memory=_section(record, "memory"),
        load_average_end=_number(record, "load_average_end", optional=True), seeds=_section(record, "seeds"),
        task_version=_int(record, "task_version", low=1) if "task_version" in record else 1,
    )
