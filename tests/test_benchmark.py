import pytest
import torch

from bench import env
from bench.benchmark import summarise


def run(seconds, peak, training):
    return {"seconds_per_iteration": seconds, "episodes_per_iteration": 32, "episodes_per_second": 32 / seconds,
            "peak_memory_bytes": peak, "training_memory_bytes": training, "device": "cpu"}


def test_summarise_reports_the_median_time_and_the_largest_memory():
    summary = summarise([run(0.3, 10, 4), run(0.1, 30, 2), run(0.2, 20, 6)])
    assert summary["seconds_per_iteration"] == 0.2
    assert summary["seconds_per_iteration_runs"] == [0.3, 0.1, 0.2]
    assert summary["episodes_per_second"] == pytest.approx(160.0)
    assert (summary["peak_memory_bytes"], summary["training_memory_bytes"]) == (30, 6)


def test_summarise_of_one_run_is_that_run():
    only = run(0.25, 10, 4)
    assert {k: summarise([only])[k] for k in only} == only


@pytest.mark.skipif(env._glibc() is None, reason="glibc only")
def test_freed_memory_is_kept_for_reuse_and_released_before_a_new_peak():
    assert env.keep_freed_memory() and env.MALLOC_STATE["keeps_freed_memory"]
    blocks = [torch.ones(2**21) for _ in range(16)]  # 16 x 8 MiB, each below the 32 MiB threshold
    held = env.current_rss_bytes()
    del blocks
    assert env.current_rss_bytes() > held - 32 * 2**20, "freed blocks were handed back to the OS"
    env.reset_peak_memory(torch.device("cpu"))
    assert env.current_rss_bytes() < held - 96 * 2**20, "memory kept for reuse would count in the next run's baseline"


def test_keeping_freed_memory_can_be_switched_off(monkeypatch):
    monkeypatch.setitem(env.MALLOC_STATE, "keeps_freed_memory", False)  # as in a fresh process
    monkeypatch.setenv("CSN_BENCH_KEEP_FREED_MEMORY", "0")
    assert not env.keep_freed_memory() and not env.MALLOC_STATE["keeps_freed_memory"]
