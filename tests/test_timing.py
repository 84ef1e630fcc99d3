import pytest

from bench.engine.timing import summarise


def run(seconds, peak, training):
    return {"seconds_per_iteration": seconds, "episodes_per_iteration": 32, "episodes_per_second": 32 / seconds,
            "iterations_per_second": 1 / seconds, "peak_memory_bytes": peak, "training_memory_bytes": training, "device": "cpu"}


def test_summarise_reports_the_median_time_and_the_largest_memory():
    summary = summarise([run(0.3, 10, 4), run(0.1, 30, 2), run(0.2, 20, 6)])
    assert summary["seconds_per_iteration"] == 0.2
    assert summary["seconds_per_iteration_runs"] == [0.3, 0.1, 0.2]
    assert summary["episodes_per_second"] == pytest.approx(160.0)
    assert summary["iterations_per_second"] == pytest.approx(5.0)
    assert (summary["peak_memory_bytes"], summary["training_memory_bytes"]) == (30, 6)


def test_summarise_of_one_run_is_that_run():
    only = run(0.25, 10, 4)
    assert {k: summarise([only])[k] for k in only} == only
