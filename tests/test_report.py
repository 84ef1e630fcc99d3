import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.report import accuracy_table, collect, paired_table
from cli import cli


def fake_run(results: Path, name: str, method: str, seed: int, accs: list[float], task="omniglot-5w1s", complete=True):
    d = results / "runs" / name
    d.mkdir(parents=True)
    config = {"method": method, "task": task, "profile": "quick", "seed": seed, "train": {}, "eval": {},
              "method_settings": {"backbone": "conv4-64-max", "batch_norm": "running"}}
    (d / "config.json").write_text(json.dumps(config))
    (d / "environment.json").write_text("{}")
    (d / "best.pt").write_bytes(b"x")
    (d / "train.jsonl").write_text(json.dumps({"iteration": 1, "loss": 1.0}) + "\n")
    (d / "val.jsonl").write_text("".join(json.dumps({"iteration": i, "accuracy": 0.5 + 0.1 * i, "train_seconds": 2.0 * i}) + "\n" for i in (1, 2)))
    (d / "test_episodes.jsonl").write_text("".join(
        json.dumps({"episode": i, "fingerprint": f"f{i}", "classes": [], "accuracy": a, "loss": 0.1}) + "\n" for i, a in enumerate(accs)))
    if complete:
        mean = sum(accs) / len(accs)
        summary = {"method": method, "task": task, "profile": "quick", "seed": seed, "metric": "accuracy",
                   "accuracy": mean, "accuracy_ci95": 0.0, "episodes": len(accs), "iterations": 10,
                   "train_seconds": 5.0 + seed, "seconds_per_iteration": 0.5, "episodes_per_second": 2.0,
                   "test_ms_per_episode": 3.0, "peak_memory_bytes": 2**20 * (100 + seed), "peak_memory_kind": "cpu_rss",
                   "device": "cpu", "status": "complete", "method_info": {}}
        (d / "summary.json").write_text(json.dumps(summary))
    return d


@pytest.fixture
def results(tmp_path):
    fake_run(tmp_path, "a0", "protonet", 0, [1.0, 0.5, 0.75, 0.25])
    fake_run(tmp_path, "a1", "protonet", 1, [0.5, 0.5, 1.0, 0.25])
    fake_run(tmp_path, "b0", "maml", 0, [0.75, 0.25, 0.5, 0.5])
    fake_run(tmp_path, "broken", "csn", 0, [1.0], complete=False)
    return tmp_path


def test_ci_is_the_hand_computation_over_pooled_episodes(results):
    acc = accuracy_table(collect(results)).set_index("method")
    values = [1.0, 0.5, 0.75, 0.25, 0.5, 0.5, 1.0, 0.25]
    mean = sum(values) / 8
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 7)
    row = acc.loc["protonet (quick)"]
    assert row["mean"] == pytest.approx(100 * mean)
    assert row["ci95"] == pytest.approx(100 * 1.96 * std / math.sqrt(8))
    assert row["seeds"] == 2 and row["episodes"] == 8
    assert row["seed_mean"] == pytest.approx(100 * (0.625 + 0.5625) / 2)
    assert row["published"] == 98.8 and row["difference"] == pytest.approx(100 * mean - 98.8)


def test_paired_difference_is_the_mean_of_per_episode_differences(results):
    paired = paired_table(collect(results))
    (row,) = paired.to_dict("records")
    protonet = [(1.0 + 0.5) / 2, (0.5 + 0.5) / 2, (0.75 + 1.0) / 2, (0.25 + 0.25) / 2]
    maml = [0.75, 0.25, 0.5, 0.5]
    diffs = [m - p for m, p in zip(maml, protonet)]  # labels sort: maml first
    assert (row["first"], row["second"]) == ("maml (quick)", "protonet (quick)")
    assert row["difference"] == pytest.approx(100 * sum(diffs) / 4)
    mean = sum(diffs) / 4
    ci = 1.96 * math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3) / 2
    assert row["ci95"] == pytest.approx(100 * ci)
    assert row["significant"] == (abs(mean) > ci)


def test_incomplete_runs_are_listed_not_averaged(results):
    c = collect(results)
    assert list(c.incomplete["run"]) == ["broken"]
    assert "summary.json" in c.incomplete["missing"].iloc[0]
    assert "csn" not in set(c.runs["method"])


def test_report_writes_every_table_and_plot(results, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.tex", "accuracy.csv", "paired.csv", "cost.csv", "incomplete.csv",
                 "accuracy.png", "validation_curves.png", "cost_tradeoff.png"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "broken" in text and "ProtoNets paper Table 1" in text


def test_report_without_runs_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--results", str(tmp_path)])
    assert result.exit_code == 2 and "no complete runs" in result.output


@pytest.mark.slow
def test_sweep_skips_finished_runs_and_resumes(tmp_path, data_root):
    args = ["sweep", "--methods", "protonet", "--tasks", "omniglot-5w1s", "--seeds", "0,1",
            "--profile", "smoke", "--data-root", str(data_root), "--out", str(tmp_path)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output.count("ran ") == 2
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    again = CliRunner().invoke(cli, args)
    assert again.output.count("finished ") == 2 and len(list((tmp_path / "runs").iterdir())) == 2
    # an interrupted grid: the second run stopped after its last checkpoint, before testing
    episodes = (runs[1] / "test_episodes.jsonl").read_text()
    (runs[1] / "summary.json").unlink()
    (runs[1] / "test_episodes.jsonl").unlink()
    resumed = CliRunner().invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("finished ") == 1 and resumed.output.count("resumed ") == 1
    assert sorted((tmp_path / "runs").iterdir()) == runs
    assert (runs[1] / "test_episodes.jsonl").read_text() == episodes
    # a run folder without a checkpoint is started afresh
    for name in ("summary.json", "state.pt"):
        (runs[0] / name).unlink()
    fresh = CliRunner().invoke(cli, args)
    assert fresh.output.count("ran ") == 1 and len(list((tmp_path / "runs").iterdir())) == 3
