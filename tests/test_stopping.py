"""The stopping rules of a run: iterations, a budget of training seconds, patience."""

import json

from helpers import invoke, the_run

BASE = ["run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "method.inner_lr=0.01",
        "--set", "eval.episodes=4"]


def finished(out):
    run_dir = the_run(out)
    summary = json.loads((run_dir / "summary.json").read_text())
    train = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (run_dir / "val.jsonl").read_text().splitlines()]
    return summary, train, val


def test_a_budget_of_training_seconds_stops_at_the_first_step_that_reaches_it(tmp_path):
    result = invoke(*BASE, "--set", "train.iterations=100000", "--set", "train.budget_seconds=0.3",
                    "--set", "train.val_every=1000", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary, train, val = finished(tmp_path)
    assert summary["budget"]["stopped_by"] == "budget_seconds"
    seconds = [r["seconds"] for r in train]
    assert sum(seconds) >= 0.3 > sum(seconds[:-1])
    assert summary["iterations"] == len(train) < 100000
    assert val[-1]["iteration"] == len(train)  # the last state is validated before testing


def test_a_budget_of_cpu_seconds_counts_the_process_cpu_time_not_the_wall_clock(tmp_path, monkeypatch):
    """Each step's CPU time is what ``time.process_time`` says (here a clock that advances a quarter
    second per step, while the steps take milliseconds of wall time)."""
    import time
    import types

    import bench.engine.train

    ticks = iter(range(10**6))
    fake = types.SimpleNamespace(perf_counter=time.perf_counter, process_time=lambda: next(ticks) * 0.125)
    monkeypatch.setattr(bench.engine.train, "time", fake)
    result = invoke(*BASE, "--set", "train.iterations=100000", "--set", "train.budget_seconds=1", "--set", "train.budget_clock=cpu",
                    "--set", "train.val_every=1000", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary, train, val = finished(tmp_path)
    assert summary["budget"]["stopped_by"] == "budget_seconds" and summary["budget"]["clock"] == "cpu"
    assert [r["cpu_seconds"] for r in train] == [0.125] * 8  # two readings per step
    assert summary["iterations"] == 8 and summary["train_cpu_seconds"] == 1.0 > summary["train_seconds"]
    assert val[-1]["train_cpu_seconds"] == 1.0


def test_patience_stops_after_that_many_validations_without_improvement(tmp_path):
    result = invoke(*BASE, "--set", "train.iterations=2000", "--set", "train.val_every=1", "--set", "train.patience=3",
                    "--set", "method.inner_lr=0.5", "--out", tmp_path)  # a large inner lr: validation stops improving
    assert result.exit_code == 0, result.output
    summary, train, val = finished(tmp_path)
    assert summary["budget"]["stopped_by"] == "patience"
    after_best = [v for v in val if v["iteration"] > summary["best_iteration"]]
    assert len(after_best) == 3 and summary["iterations"] == val[-1]["iteration"] < 2000
    assert not summary["budget"]["best_at_last_validation"]


def test_iterations_stop_a_run_with_no_other_rule(tmp_path):
    result = invoke(*BASE, "--set", "train.iterations=5", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary, train, _ = finished(tmp_path)
    assert summary["budget"] == {"iterations": 5, "budget_seconds": 0.0, "clock": "wall", "patience": 0,
                                 "stopped_by": "iterations", "best_at_last_validation": summary["budget"]["best_at_last_validation"]}
    assert len(train) == 5
