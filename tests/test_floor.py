"""``cli.py floor``: the standalone step, the harness's iteration and the time outside it."""

import json

from helpers import invoke, one_line_error

from bench.engine.floor import format_tables, gemm_gflops


def floor_result(**row):
    outside = {"sample_seconds": 0.002, "collate_seconds": 0.001, "place_seconds": 0.0005, "validation_seconds": 3.25,
               "validation_episodes": 100, "test_seconds_per_1000": 41.5, "test_episodes": 200, "checkpoint_seconds": 0.04}
    base = {"method": "protonet", "profile": "paper", "task": "omniglot-5w1s",
            "shape": {"meta_batch": 1, "ways": 60, "shots": 1, "queries": 5},
            "floor_seconds": {"contiguous": 0.5, "channels_last": 0.4}, "best_floor": "channels_last",
            "flops_per_step": 20e9, "harness_seconds": 0.5, "harness_memory_format": "channels_last",
            "harness_over_floor": 1.25, "outside": outside}
    return {"device": "Some CPU (2 CPUs)", "torch": "2.14.1", "threads": 2, "git_commit": "0123456789abcdef", "git_dirty": True,
            "gemm_gflops": 100.0, "iterations": 5, "warmup": 2, "repeat": 3,
            "load_average": {"start": 0.1, "max": 1.9, "end": 1.5}, "rows": [{**base, **row}]}


def test_the_floor_tables_show_every_figure_with_its_provenance():
    text = format_tables(floor_result())
    head = text.splitlines()[0]
    for part in ("Some CPU (2 CPUs)", "2 threads", "torch 2.14.1", "commit 0123456789 (dirty)", "GEMM 2048^3 100 GFLOP/s",
                 "median of 3 rounds", "1.90 at most"):
        assert part in head, part
    (step,) = [line for line in text.splitlines() if line.startswith("protonet     paper    1x60w1s5q")]
    # 20 GFLOP in the faster floor's 0.4 s: 50 GFLOP/s, half the GEMM rate
    assert step.split()[3:] == ["0.500", "0.400", "0.500", "channels_last", "1.25x", "20.0", "50.0", "50%"]
    (outside,) = [line for line in text.splitlines() if line.startswith("protonet") and line != step]
    assert outside.split()[2:] == ["2.0", "1.0", "0.5", "3.2", "(100)", "41.5", "0.04"]


def test_the_gemm_rate_is_a_positive_rate():
    assert gemm_gflops(128, 2) > 0


def test_floor_times_every_figure_in_a_fresh_process_and_records_them(tmp_path, monkeypatch):
    """Through the CLI, with the fresh processes replaced by calls in this one (spawning one per
    figure is what makes this test slow; ``bench``'s tests run real ones): every figure of every
    round goes through ``_fresh``, and the record holds them with their provenance."""
    import bench.engine.floor as floor
    from bench.engine import invocation
    from bench.engine.device import torch_threads

    calls = []

    def in_process(fn, *args):
        calls.append(fn.__name__)
        with torch_threads(None):  # a fresh process's thread count stays there
            return fn(*args)

    monkeypatch.setattr(floor, "_fresh", in_process)
    monkeypatch.setenv(invocation.VARIABLE, "cli.py floor --methods maml,csn")  # as main() records it
    result = invoke("floor", "--methods", "maml,csn", "--task", "sinusoid-5s", "--profile", "smoke", "--iterations", 1,
                    "--warmup", 0, "--repeat", 2, "--test-episodes", 4, "--threads", 1, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    per_round = ["floor_step", "floor_step", "harness_step"] * 2
    assert calls == per_round + per_round[::-1] + ["outside_step"] * 2  # the second round in reverse order
    (path,) = (tmp_path / "floor").glob("sinusoid-5s__smoke__*.json")
    record = json.loads(path.read_text())
    assert record["threads"] == 1 and record["torch"] and record["gemm_gflops"] > 0 and "git_commit" in record
    assert record["repeat"] == 2 and set(record["load_average"]) == {"start", "max", "end"}
    assert record["command"] == "cli.py floor --methods maml,csn"
    assert [r["method"] for r in record["rows"]] == ["maml", "csn"]
    for row in record["rows"]:
        assert set(row["floor_seconds"]) == {"contiguous", "channels_last"} and min(row["floor_seconds"].values()) > 0
        assert all(len(runs) == 2 for runs in row["floor_seconds_runs"].values()) and len(row["harness_seconds_runs"]) == 2
        assert row["harness_over_floor"] == row["harness_seconds"] / row["floor_seconds"][row["best_floor"]]
        assert row["outside"]["test_episodes"] == 4 and row["outside"]["validation_episodes"] == 4
        assert row["harness_memory_format"] == "contiguous"  # no 2-d convolutions
    assert "maml" in result.output and "written to" in result.output


def test_floor_rejects_unknown_methods_and_empty_lists(tmp_path):
    one_line_error(invoke("floor", "--methods", "mamll", "--task", "sinusoid-5s", "--out", tmp_path), 2, "maml")
    one_line_error(invoke("floor", "--methods", ",", "--task", "sinusoid-5s", "--out", tmp_path), 2, "--methods")


def test_the_speed_tables_set_each_harness_figure_against_the_floor_and_the_figure_before(tmp_path):
    from bench.report.speed import outside_table, step_table

    before = floor_result(harness_seconds=0.8, harness_over_floor=2.0)
    after = floor_result()
    table = step_table([before], [after])
    row = table.splitlines()[2]
    assert row == ("| protonet, paper | 1 x 60-way 1-shot 5q | 0.800 | 0.500 (channels_last) | 1.60x | 0.500 | 0.400 "
                   "| 2.00x | 1.25x |")
    assert "| - |" in step_table([], [after])  # nothing before: said so, not invented
    outside = outside_table([before], [after]).splitlines()[2]
    assert outside == "| protonet, paper | 3.5 -> 3.5 | 3.2 -> 3.2 (100) | 41.5 -> 41.5 | 0.04 -> 0.04 |"


def test_the_bench_table_compares_each_variant_with_the_first():
    from bench.report.speed import bench_table

    def row(variant, seconds):
        return {"variant": variant, "config": {"method": "maml", "profile": "quick"}, "seconds_per_iteration": seconds,
                "seconds_per_iteration_runs": [seconds, seconds + 0.01]}

    record = {"git_commit": "abcdef0123", "git_dirty": False, "threads": 2, "torch": "2.14.1",
              "rows": [row("method.impl=batched", 0.4), row("method.impl=reference", 1.0)]}
    lines = bench_table({"maml-impl": record}).splitlines()
    assert lines[2] == "| `maml-impl` | maml, quick | method.impl=batched | 0.400 (0.400, 0.410) | 1.00x | abcdef0, 2, 2.14.1 |"
    assert lines[3].endswith("| 1.000 (1.000, 1.010) | 0.40x | abcdef0, 2, 2.14.1 |")
