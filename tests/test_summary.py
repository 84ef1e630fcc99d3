"""The run summary as one typed record: what a run writes reads back equal, records from before
a field existed read with the value those runs had, and a field of the wrong type or range is
named (the run is then listed as unreadable and the rest of the report is built)."""

import json
import math

import pytest
from helpers import fake_run

from bench.report.collect import collect
from bench.results.summary import Budget, RunSummary, SummaryError, read_summary


def record(**changes) -> dict:
    base = {"method": "csn", "task": "omniglot-5w1s", "profile": "quick", "protocol": "vinyals", "tag": "equal-time",
            "seed": 2, "run": "r", "metric": "accuracy", "loss": 0.2, "loss_ci95": 0.01, "accuracy": 0.95,
            "accuracy_ci95": 0.004, "episodes": 1000, "method_info": {"architecture": "conv4"},
            "compile": {"setting": "none", "used": "none", "reason": "eager"}, "model": {"parameters": 10},
            "best_iteration": 380, "best_val": 0.948, "iterations": 380,
            "budget": {"iterations": 10**6, "budget_seconds": 600.0, "clock": "cpu", "patience": 0,
                       "stopped_by": "budget_seconds", "best_at_last_validation": True},
            "train_seconds": 627.7, "train_cpu_seconds": 600.9, "seconds_per_iteration": 1.65, "episodes_per_second": 19.4,
            "test_ms_per_episode": 283.3, "wall_seconds": 973.3, "peak_memory_bytes": 2689982464,
            "peak_memory_kind": "cpu_rss", "device": "cpu", "resumed": False, "status": "complete",
            "finished": "2026-12-01T13:16:29+00:00", "load_average_end": 1.5, "seeds": {"train": 1}, "task_version": 2}
    for key, value in changes.items():
        if value is ...:
            base.pop(key)
        else:
            base[key] = value
    return base


def test_a_summary_reads_back_to_the_record_it_was_written_as():
    summary = read_summary(record())
    assert summary.to_dict() == record() and list(summary.to_dict()) == list(record())
    assert (summary.value, summary.ci95, summary.metrics["loss"]) == (0.95, 0.004, 0.2)
    assert summary.budget == Budget(10**6, 600.0, 0, "budget_seconds", True, "cpu")
    assert read_summary(summary.to_dict()) == summary


def test_a_record_from_before_a_field_existed_reads_with_the_value_those_runs_had():
    old = record(protocol=..., tag=..., train_cpu_seconds=..., load_average_end=..., seeds=..., compile=...,
                 budget={"iterations": 3000, "budget_seconds": 0.0, "patience": 0, "stopped_by": "iterations",
                         "best_at_last_validation": False})
    summary = read_summary(old)
    assert (summary.protocol, summary.tag, summary.train_cpu_seconds, summary.load_average_end) == ("", "", None, None)
    assert summary.budget.clock == "wall" and summary.compile is None
    assert read_summary(record(budget=...)).budget is None


def test_a_diverged_run_keeps_its_nan_metrics():
    summary = read_summary(record(accuracy=math.nan, loss=math.inf, best_val=None))
    assert math.isnan(summary.value) and summary.best_val is None


def test_a_run_from_before_task_versions_were_recorded_was_made_on_version_1():
    assert read_summary(record(task_version=...)).task_version == 1 and read_summary(record()).task_version == 2


@pytest.mark.parametrize("changes, message", [
    ({"seed": [0]}, "field 'seed' must be an integer, not list"),
    ({"tag": 5}, "field 'tag' must be text, not int"),
    ({"accuracy": "abc"}, "field 'accuracy' must be a number, not str"),
    ({"accuracy_ci95": ...}, "lacks a number for 'accuracy_ci95'"),
    ({"iterations": [3]}, "field 'iterations' must be an integer, not list"),
    ({"iterations": True}, "field 'iterations' must be an integer, not bool"),
    ({"wall_seconds": ...}, "lacks 'wall_seconds'"),
    ({"wall_seconds": -1.0}, "field 'wall_seconds' must be a finite number of at least 0, not -1.0"),
    ({"train_seconds": math.inf}, "field 'train_seconds' must be a finite number of at least 0, not inf"),
    ({"episodes": 0}, "field 'episodes' must be at least 1, not 0"),
    ({"resumed": "yes"}, "field 'resumed' must be true or false, not str"),
    ({"model": [1]}, "field 'model' must be an object, not list"),
    ({"budget": {**record()["budget"], "clock": "sun"}}, "field 'budget.clock' must be wall or cpu, not 'sun'"),
    ({"budget": {**record()["budget"], "patience": "3"}}, "field 'budget.patience' must be an integer, not str"),
    ({"budget": {**record()["budget"], "stopped_by": 1}}, "field 'budget.stopped_by' must be text, not int"),
    ({"status": "running"}, "does not record a complete run"),
    ({"metric": None}, "field 'metric' must be text, not null"),
    ({"task_version": 0}, "field 'task_version' must be at least 1, not 0"),
    ({"task_version": "2"}, "field 'task_version' must be an integer, not str"),
])
def test_a_field_of_the_wrong_type_or_range_is_named(changes, message):
    with pytest.raises(SummaryError) as caught:
        read_summary(record(**changes))
    assert str(caught.value) == message


def test_a_summary_that_is_not_an_object_is_refused():
    for value in ([], "x", 3, None):
        with pytest.raises(SummaryError, match="not an object"):
            read_summary(value)


def test_the_report_lists_a_run_with_a_bad_field_as_unreadable_and_reports_the_rest(tmp_path):
    good = fake_run(tmp_path, "protonet", 0, [1.0, 0.5])
    bad = fake_run(tmp_path, "protonet", 1, [1.0, 0.5])
    summary = json.loads((bad.path / "summary.json").read_text())
    (bad.path / "summary.json").write_text(json.dumps({**summary, "seed": [1]}))
    collected = collect(tmp_path)
    assert list(collected.runs["run"]) == [good.name]
    assert collected.incomplete.to_dict("records") == [
        {"run": bad.name, "missing": "summary.json field 'seed' must be an integer, not list"}]
    assert bad.summary() is None and isinstance(good.summary(), RunSummary)
