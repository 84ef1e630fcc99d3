import math
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fake_run, invoke

from bench.report.collect import collect
from bench.report.tables import accuracy_table, paired_table

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def results(tmp_path):
    fake_run(tmp_path, "protonet", 0, [1.0, 0.5, 0.75, 0.25])
    fake_run(tmp_path, "protonet", 1, [0.5, 0.5, 1.0, 0.25])
    fake_run(tmp_path, "maml", 0, [0.75, 0.25, 0.5, 0.5])
    fake_run(tmp_path, "csn", 0, [1.0], complete=False)
    return tmp_path


def test_ci_is_the_hand_computation_over_pooled_episodes(results):
    acc = accuracy_table(collect(results)).set_index("method")
    values = [1.0, 0.5, 0.75, 0.25, 0.5, 0.5, 1.0, 0.25]
    mean = sum(values) / 8
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 7)
    row = acc.loc["protonet (smoke)"]
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
    assert (row["first"], row["second"]) == ("maml (smoke)", "protonet (smoke)")
    assert row["difference"] == pytest.approx(100 * sum(diffs) / 4)
    mean = sum(diffs) / 4
    ci = 1.96 * math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3) / 2
    assert row["ci95"] == pytest.approx(100 * ci)
    assert row["significant"] == (abs(mean) > ci)


def test_incomplete_runs_are_listed_not_averaged(results):
    c = collect(results)
    (broken,) = [p.name for p in (results / "runs").iterdir() if "__csn__" in p.name]
    assert list(c.incomplete["run"]) == [broken]
    assert c.incomplete["missing"].iloc[0] == "no summary.json (status interrupted)"
    assert "csn" not in set(c.runs["method"])


def test_a_complete_run_needs_a_valid_summary_not_its_checkpoints(tmp_path):
    """Checkpoints are not committed with reference runs: completeness is the summary's alone."""
    good = fake_run(tmp_path, "protonet", 0, [1.0, 0.5])
    assert good.is_complete() and not (good.path / "best.pt").exists()
    damaged = {
        "not JSON": "{",
        "a list": "[]",
        "not complete": '{"status": "running"}',
        "no metric value": '{"status": "complete", "metric": "accuracy"}',
    }
    for what, text in damaged.items():
        folder = fake_run(tmp_path / what, "protonet", 0, [1.0])
        (folder.path / "summary.json").write_text(text)
        assert not folder.is_complete(), what
        assert len(collect(tmp_path / what).incomplete) == 1, what
    folder = fake_run(tmp_path / "rows", "protonet", 0, [1.0])
    (folder.path / "test_episodes.jsonl").write_text('{"episode": 0}\n')
    assert "test_episodes.jsonl line 1 lacks" in collect(tmp_path / "rows").incomplete["missing"].iloc[0]


def test_report_writes_every_table_and_plot(results, tmp_path):
    out = tmp_path / "report"
    result = invoke("report", "--results", results, "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.tex", "accuracy.csv", "paired.csv", "cost.csv", "incomplete.csv",
                 "accuracy.png", "validation_curves.png", "cost_tradeoff.png"):
        assert (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    assert "__csn__" in text and "ProtoNets paper Table 1" in text


def test_report_without_runs_is_a_clear_error(tmp_path):
    result = invoke("report", "--results", tmp_path)
    assert result.exit_code == 2 and "no complete runs" in result.output


def tables(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


REPORT_WITHOUT_TORCH = """
import sys
from pathlib import Path
from bench.report.build import build_report
build_report(Path(sys.argv[1]), Path(sys.argv[2]))
heavy = sorted(m for m in ("torch", "learn2learn", "methods") if m in sys.modules)
print("imported:", ",".join(heavy) or "none")
"""


def test_the_committed_reference_report_regenerates_without_torch(tmp_path):
    """A clean checkout holds no checkpoints; the report still builds from it, reading files only."""
    reference = REPO / "results" / "reference"
    out = subprocess.run([sys.executable, "-c", REPORT_WITHOUT_TORCH, str(reference), str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "imported: none"
    assert tables((tmp_path / "report.md").read_text()) == tables((reference / "report.md").read_text())
    copied = {p.name for p in tmp_path.glob("sinusoid-10s_csn_*.png")}
    assert {"sinusoid-10s_csn_shift_before_after.png", "sinusoid-10s_csn_shifts_all.png"} <= copied


def test_sweep_skips_finished_runs_and_resumes(tmp_path, data_root):
    args = ["sweep", "--methods", "protonet", "--tasks", "omniglot-5w1s", "--seeds", "0,1",
            "--profile", "smoke", "--data-root", data_root, "--out", tmp_path]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.output.count("ran ") == 2
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    again = invoke(*args)
    assert again.output.count("finished ") == 2 and len(list((tmp_path / "runs").iterdir())) == 2
    # an interrupted grid: the second run stopped after its last checkpoint, before testing
    episodes = (runs[1] / "test_episodes.jsonl").read_text()
    (runs[1] / "summary.json").unlink()
    (runs[1] / "test_episodes.jsonl").unlink()
    resumed = invoke(*args)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("finished ") == 1 and resumed.output.count("resumed ") == 1
    assert sorted((tmp_path / "runs").iterdir()) == runs
    assert (runs[1] / "test_episodes.jsonl").read_text() == episodes
    # a run folder without a checkpoint is started afresh
    for name in ("summary.json", "state.pt"):
        (runs[0] / name).unlink()
    fresh = invoke(*args)
    assert fresh.output.count("ran ") == 1 and len(list((tmp_path / "runs").iterdir())) == 3
