import math
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import fake_run, invoke

from bench.report.build import build_report
from bench.report.collect import _budget, collect
from bench.report.tables import (accuracy_table, comparison_table, omniglot_table, paired_table, published, runs_table,
                                 time_to_level_table)
from bench.stats import mean_ci95, paired_two_level_ci, two_level_ci

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def results(tmp_path):
    fake_run(tmp_path, "protonet", 0, [1.0, 0.5, 0.75, 0.25])
    fake_run(tmp_path, "protonet", 1, [0.5, 0.5, 1.0, 0.25])
    fake_run(tmp_path, "maml", 0, [0.75, 0.25, 0.5, 0.5])
    fake_run(tmp_path, "csn", 0, [1.0], complete=False)
    return tmp_path


def test_accuracy_row_has_the_two_level_interval_and_same_protocol_published_numbers(results):
    acc = accuracy_table(collect(results)).set_index("method")
    matrix = [[1.0, 0.5, 0.75, 0.25], [0.5, 0.5, 1.0, 0.25]]
    row = acc.loc["protonet (smoke)"]
    assert row["mean"] == pytest.approx(100 * two_level_ci(matrix).mean)
    assert row["ci95"] == pytest.approx(100 * two_level_ci(matrix).half_width)
    assert (row["seeds"], row["episodes"], row["protocol"]) == (2, 4, "vinyals")
    assert row["seed_std"] == pytest.approx(100 * statistics.stdev([0.625, 0.5625]))
    assert row["published"] == 98.8 and row["difference"] == pytest.approx(100 * 0.59375 - 98.8)
    maml = acc.loc["maml (smoke)"]  # the MAML paper's Omniglot numbers are of the MAML code's protocol
    assert math.isnan(maml["published"]) and math.isnan(maml["difference"])
    assert maml["other_protocol"] == "98.7 (finn, conv4-64-stride)"


def test_paired_difference_has_the_two_level_and_the_episode_interval(results):
    paired = paired_table(collect(results))
    (row,) = paired.to_dict("records")
    protonet = [[1.0, 0.5, 0.75, 0.25], [0.5, 0.5, 1.0, 0.25]]
    maml = [[0.75, 0.25, 0.5, 0.5]]
    assert (row["first"], row["second"]) == ("maml (smoke)", "protonet (smoke)")  # labels sort: maml first
    interval = paired_two_level_ci(maml, protonet)
    assert row["difference"] == pytest.approx(100 * interval.mean) == pytest.approx(100 * (0.5 - 0.59375))
    assert row["ci95"] == pytest.approx(100 * interval.half_width)
    diffs = [m - (p0 + p1) / 2 for m, p0, p1 in zip(maml[0], *protonet)]
    assert row["episode_ci95"] == pytest.approx(100 * mean_ci95(diffs)[1])
    assert row["significant"] == (abs(interval.mean) > interval.half_width)


def test_selection_uses_validation_only(tmp_path):
    """Two learning rates of one method, profile and tag: the one with the better validation
    metric is reported, though the other tested better."""
    for seed in (0, 1):
        fake_run(tmp_path, "protonet", seed, [0.9, 0.9], overrides={"train": {"lr": 0.01}}, best_val=0.6)
        fake_run(tmp_path, "protonet", seed, [0.5, 0.5], overrides={"train": {"lr": 0.001}}, best_val=0.8)
    fake_run(tmp_path, "protonet", 0, [0.7, 0.7], overrides={"train": {"lr": 0.01}, "tag": "other"})
    c = collect(tmp_path)
    chosen = c.runs[c.runs.tag == ""]
    assert len(chosen) == 2 and set(chosen["value"]) == {0.5}
    assert list(c.candidates["setting"]) == ["train.lr=0.001", "train.lr=0.01"]
    assert list(c.candidates["selected"]) == [True, False]
    assert list(c.candidates["validation"]) == pytest.approx([0.8, 0.6])
    assert set(accuracy_table(c)["method"]) == {"protonet (smoke)", "protonet (smoke, other)"}
    report = build_report(tmp_path, tmp_path / "report").read_text()
    assert "Built from 5 complete runs" in report and "2 of them ran settings not selected" in report


def test_candidates_are_compared_on_the_seeds_they_all_ran(tmp_path):
    """A setting chosen on seed 0 and then run on more seeds stays chosen, whatever those seeds
    score: the choice is made on the seeds every candidate has."""
    fake_run(tmp_path, "protonet", 0, [0.9], overrides={"train": {"lr": 0.01}}, best_val=0.8)
    fake_run(tmp_path, "protonet", 0, [0.9], overrides={"train": {"lr": 0.001}}, best_val=0.7)
    for seed in (1, 2):
        fake_run(tmp_path, "protonet", seed, [0.5], overrides={"train": {"lr": 0.01}}, best_val=0.5)
    candidates = collect(tmp_path).candidates.set_index("setting")
    assert candidates.loc["train.lr=0.01", "selected"] and not candidates.loc["train.lr=0.001", "selected"]
    assert list(candidates["compared_seeds"]) == ["0", "0"] and list(candidates["runs"]) == [1, 3]
    assert candidates.loc["train.lr=0.01", "validation"] == pytest.approx(0.8)


def test_a_budget_of_cpu_seconds_is_labelled_as_such():
    from bench.results.summary import Budget

    budget = {"iterations": 10**6, "budget_seconds": 600.0, "patience": 0, "stopped_by": "budget_seconds",
              "best_at_last_validation": True}
    assert _budget(300, Budget(**budget, clock="cpu")) == "600 CPU-s"
    assert _budget(300, Budget(**budget)) == _budget(300, Budget(**budget, clock="wall")) == "600 s"
    assert _budget(40, None) == "40 it"


def test_a_comparison_is_uniform_only_with_one_known_commit_and_thread_count(tmp_path):
    same = {"git_commit": "a" * 40, "git_dirty": False, "torch_threads": 1}
    fake_run(tmp_path, "protonet", 0, [1.0], environment=same)
    fake_run(tmp_path, "maml", 0, [1.0], environment=same)
    fake_run(tmp_path, "protonet", 0, [1.0], overrides={"tag": "threads"}, environment=same)
    fake_run(tmp_path, "maml", 0, [1.0], overrides={"tag": "threads"}, environment={**same, "torch_threads": 2})
    fake_run(tmp_path, "protonet", 0, [1.0], overrides={"tag": "dirty"}, environment={**same, "git_dirty": True})
    fake_run(tmp_path, "protonet", 0, [1.0], overrides={"tag": "unknown"}, environment={"device": "cpu"})
    rows = comparison_table(collect(tmp_path)).set_index("tag")
    assert rows.loc["", "uniform"] and rows.loc["", "commits"] == "aaaaaaa" and rows.loc["", "methods"] == "maml, protonet"
    assert not rows.loc["threads", "uniform"] and rows.loc["threads", "threads"] == "1, 2"
    assert rows.loc["dirty", "commits"] == "aaaaaaa+dirty" and rows.loc["dirty", "uniform"]
    assert not rows.loc["unknown", "uniform"] and rows.loc["unknown", "commits"] == "unknown"
    assert rows.loc["", "load"] == "" and rows.loc["unknown", "load"] == ""  # none recorded


def test_a_comparison_states_the_load_its_runs_started_in(tmp_path):
    fake_run(tmp_path, "protonet", 0, [1.0], environment={"load_average": [0.5, 1.0, 1.0]})
    fake_run(tmp_path, "maml", 0, [1.0], environment={"load_average": [3.25, 2.0, 2.0]})
    fake_run(tmp_path, "csn", 0, [1.0], environment={"device": "cpu"})
    (row,) = comparison_table(collect(tmp_path)).itertuples()
    assert row.load == "0.5-3.2 (1 of 3 runs unrecorded)"


def test_the_runs_ledger_lists_every_complete_run_reported_or_not_with_its_provenance(tmp_path):
    started = {"git_commit": "b" * 40, "git_dirty": False, "torch_threads": 1, "niceness": 10,
               "load_average": [1.5, 1.0, 1.0], "command": "cli.py sweep --methods protonet --out 'a b'"}
    for seed in (0, 1):
        fake_run(tmp_path, "protonet", seed, [0.5, 1.0], overrides={"train": {"lr": 0.01}}, best_val=0.8, environment=started)
    fake_run(tmp_path, "protonet", 0, [1.0], overrides={"train": {"lr": 0.001}}, best_val=0.6)
    fake_run(tmp_path, "csn", 0, [1.0], complete=False)
    fake_run(tmp_path, "maml", 0, [1.0])
    ledger = runs_table(collect(tmp_path))
    assert list(ledger["method"]) == ["maml (smoke)"] + ["protonet (smoke)"] * 3  # the interrupted run is not in it
    assert ledger["setting"].iloc[0] == ""  # maml's one setting: nothing to tell its runs apart
    protonet = ledger[ledger["method"] == "protonet (smoke)"]
    assert sorted(zip(protonet["seed"], protonet["setting"])) == [(0, "train.lr=0.001"), (0, "train.lr=0.01"), (1, "train.lr=0.01")]
    # candidates in the order of their values (0.001 before 0.01), then seeds: as the README's run tables list them
    assert list(zip(protonet["setting"], protonet["seed"])) == [("train.lr=0.001", 0), ("train.lr=0.01", 0), ("train.lr=0.01", 1)]
    assert list(protonet["ci95"]) == [0.0] * 3 and protonet["best_at_last_validation"].all()
    chosen, other = protonet[protonet.reported], protonet[~protonet.reported]
    assert len(chosen) == 2 and len(other) == 1 and other["value"].iloc[0] == pytest.approx(100.0)
    assert list(chosen["best_val"]) == pytest.approx([80.0, 80.0]) and other["best_val"].iloc[0] == pytest.approx(60.0)
    first = chosen.iloc[0]
    assert (first.commit, first.threads, first.niceness, first.load_start) == ("bbbbbbb", 1, 10, 1.5)
    assert first.command == started["command"] and first.value == pytest.approx(75.0)
    assert (first.train_seconds, first.process_seconds, first.resumed) == (5.0, 8.0, False)
    assert other["command"].iloc[0] == "" and pd.isna(other["niceness"].iloc[0]) and math.isnan(other["load_start"].iloc[0])
    written = pd.read_csv(build_report(tmp_path, tmp_path / "report").with_name("runs.csv"))
    assert list(written["run"]) == list(ledger["run"]) and written.set_index("run").loc[first.run, "niceness"] == 10


def test_a_run_of_one_test_episode_has_no_interval_and_still_gets_its_figures(tmp_path):
    fake_run(tmp_path, "protonet", 0, [0.9])
    report = build_report(tmp_path, tmp_path / "report")
    assert math.isnan(pd.read_csv(report.with_name("accuracy.csv"))["ci95"].iloc[0])
    assert (report.parent / "omniglot.png").is_file()


PROTOCOLS = REPO.parent / "shared" / "docs" / "protocols.md"
PROTOCOL_NAMES = {"CSN adaCNN (DF)": "csn", "MAML": "maml", "ProtoNets": "protonet", "Matching Nets": "matchingnet"}


def test_the_published_omniglot_numbers_and_their_checks_are_those_of_protocols_md():
    """Each value and interval as the project's protocol notes give it; `unverified` exactly where
    the notes say a number was not checked."""
    if not PROTOCOLS.exists():
        pytest.skip(f"{PROTOCOLS} is not beside this checkout")
    text = PROTOCOLS.read_text().split("Omniglot (Vinyals split", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    pub = published()
    checked = 0
    for name, *cells, source in rows:
        if name not in PROTOCOL_NAMES:
            continue
        for (ways, shots), cell in zip(((5, 1), (5, 5), (20, 1), (20, 5)), cells):
            (entry,) = pub[(pub.method == PROTOCOL_NAMES[name]) & (pub.dataset == "omniglot") & (pub.ways == ways)
                           & (pub.shots == shots)].itertuples()
            value, _, ci = cell.partition(" +- ")
            assert (entry.value, entry.ci95 if ci else None) == (float(value), float(ci) if ci else None), (name, cell)
            assert entry.unverified == ("unverified" in source), (name, source)
            checked += 1
    assert checked == 16


def test_the_omniglot_table_has_a_column_per_shape_and_the_published_numbers_beside(tmp_path):
    env = {"git_commit": "b" * 40, "torch_threads": 1}
    for seed in (0, 1):
        fake_run(tmp_path, "protonet", seed, [1.0, 0.5], environment=env)
    fake_run(tmp_path, "protonet", 0, [0.75, 0.75], task="omniglot-20w5s", environment=env)
    fake_run(tmp_path, "csn", 0, [1.0, 1.0], environment={**env, "torch_threads": 2})
    c = collect(tmp_path)
    acc = accuracy_table(c)
    table = omniglot_table(c, acc, paper_profiles=False)
    assert list(table["method"]) == ["csn (smoke)", "protonet (smoke)"]  # CSN first, as in every table
    protonet = table.set_index("method").loc["protonet (smoke)"]
    cell = acc.set_index(["task", "method"]).loc[("omniglot-5w1s", "protonet (smoke)")]
    assert protonet["5-way 1-shot"] == f"{cell['mean']:.2f} +- {cell['ci95']:.2f} (2 seeds) mixed code"
    assert protonet["20-way 5-shot"] == "75.00 +- 0.00 (1 seed, episodes only)"
    assert protonet["5-way 5-shot"] == "" and protonet["5-way 5-shot published"] == "99.7"
    assert protonet["5-way 1-shot published"] == "98.8" and protonet["20-way 1-shot published"] == "96"
    csn = table.set_index("method").loc["csn (smoke)"]
    assert csn["5-way 1-shot published"] == "(98.42, protocol not retrieved)"  # never like for like
    assert omniglot_table(c, acc, paper_profiles=True).empty


def test_a_row_whose_columns_had_different_budgets_names_each_with_its_shapes():
    from bench.report.tables import _budget_by_shape

    runs = pd.DataFrame({"ways": [5, 5, 20, 5], "shots": [1, 1, 1, 5],
                         "budget": ["600 CPU-s", "600 CPU-s", "900 CPU-s", "600 CPU-s"]})
    assert _budget_by_shape(runs) == "600 CPU-s (5w1s, 5w5s); 900 CPU-s (20w1s)"
    assert _budget_by_shape(runs[runs["ways"] == 5]) == "600 CPU-s"


def test_a_one_seed_row_beside_a_published_number_says_what_its_interval_leaves_out(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path, "protonet", seed, [1.0, 0.5 + 0.25 * seed])
    fake_run(tmp_path, "protonet", 0, [0.75, 0.75], task="omniglot-20w1s")
    acc = accuracy_table(collect(tmp_path)).set_index("task")
    spread = acc.loc["omniglot-5w1s", "seed_std"]
    assert acc.loc["omniglot-20w1s", "note"] == (
        f"1 seed: ci95 leaves out the seed spread (protonet's seed_std in its runs of several seeds: {spread:.2f}-{spread:.2f})")
    assert acc.loc["omniglot-5w1s", "note"] == ""


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
                 "accuracy.png", "validation_curves.png", "cost_tradeoff.png", "omniglot.png", "omniglot.csv",
                 "omniglot_paper.csv", "comparisons.csv"):
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
    # a run folder killed before its first checkpoint starts again from the beginning, in the same folder
    for name in ("summary.json", "state.pt"):
        (runs[0] / name).unlink()
    fresh = invoke(*args)
    assert fresh.output.count("resumed ") == 1 and sorted((tmp_path / "runs").iterdir()) == runs


def test_a_run_recorded_before_a_setting_existed_counts_as_the_same_settings():
    """A sweep skips (or resumes) runs by config digest: a record that lacks ``train.budget_clock``
    ran on the wall clock, and the layout (``memory_format``) is not a setting of what is computed."""
    import copy

    from helpers import resolve

    from bench.results.runfolder import config_digest

    now = resolve("protonet", "omniglot-5w1s", "quick").to_dict()
    old = copy.deepcopy(now)
    del old["memory_format"], old["train"]["budget_clock"]
    assert config_digest(old) == config_digest(now) == config_digest({**now, "memory_format": "contiguous"})
    cpu_clock = copy.deepcopy(now)
    cpu_clock["train"]["budget_clock"] = "cpu"
    assert config_digest(cpu_clock) != config_digest(now)
    assert config_digest({**now, "seed": 1}) != config_digest(now)


def test_a_swept_grid_is_reported_by_its_validation_choice(tmp_path):
    args = ["sweep", "--methods", "maml", "--tasks", "sinusoid-5s", "--seeds", "0,1", "--profile", "smoke",
            "--grid", "method.inner_lr=0.001,0.01", "--set", "eval.episodes=4", "--out", tmp_path]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("ran ") == 4
    c = collect(tmp_path)
    assert list(c.candidates["setting"]) == ["method.inner_lr=0.001", "method.inner_lr=0.01"]
    best = c.candidates.loc[c.candidates["validation"].idxmin()]  # MSE: lower is better
    assert best["selected"] and c.candidates["selected"].sum() == 1
    again = invoke(*args)
    assert again.output.count("finished ") == 4


def test_a_diverged_candidate_is_complete_but_never_selected(tmp_path):
    fake_run(tmp_path, "maml", 0, [0.4, 0.5], task="sinusoid-5s", overrides={"method": {"inner_lr": 0.01}}, best_val=0.5)
    diverged = fake_run(tmp_path, "maml", 0, [float("nan")] * 2, task="sinusoid-5s",
                        overrides={"method": {"inner_lr": 0.1}}, best_val=float("nan"))
    assert diverged.is_complete()
    c = collect(tmp_path)
    assert list(c.candidates["selected"]) == [True, False]
    assert list(c.runs["value"]) == [0.45]


def test_every_figure_gives_a_method_one_colour_and_the_built_in_four_their_own():
    from bench.report.plots import method_color

    built_in = [method_color(m) for m in ("csn", "maml", "protonet", "matchingnet")]
    assert len(set(built_in)) == 4 and method_color("csn") == built_in[0]
    assert method_color("relationnet") == method_color("relationnet") and method_color("relationnet") not in built_in


def test_time_budget_comparisons_and_paper_runs_get_validation_panels(tmp_path):
    import json

    for method in ("protonet", "maml"):
        folder = fake_run(tmp_path, method, 0, [1.0, 0.5], overrides={"tag": "equal-time"})
        summary = json.loads((folder.path / "summary.json").read_text())
        summary["budget"] = {"iterations": 100, "budget_seconds": 5.0, "clock": "cpu", "patience": 0,
                             "stopped_by": "budget_seconds", "best_at_last_validation": True}
        (folder.path / "summary.json").write_text(json.dumps(summary))
    build_report(tmp_path, tmp_path / "report")
    assert (tmp_path / "report" / "comparison_curves.png").stat().st_size > 0
    assert "5 CPU-s" in (tmp_path / "report" / "report.md").read_text()


def cpu_budgeted_run(results, method, seed, task, cpu_seconds, values, iterations, clock="cpu"):
    """A run bounded by 10 seconds of ``clock`` whose validations came at ``iterations`` with those values."""
    import json

    folder = fake_run(results, method, seed, [1.0], task=task, overrides={"tag": f"equal-time-{clock}"})
    summary = json.loads((folder.path / "summary.json").read_text())
    summary["budget"] = {"iterations": 10**6, "budget_seconds": 10.0, "clock": clock, "patience": 0,
                         "stopped_by": "budget_seconds", "best_at_last_validation": True}
    (folder.path / "summary.json").write_text(json.dumps(summary))
    folder.write_curves([], [{"iteration": i, "accuracy": v, "train_seconds": 3 * t, "train_cpu_seconds": t}
                             for i, t, v in zip(iterations, cpu_seconds, values)])


def test_comparison_curves_keep_every_runs_end_on_the_clock_of_its_budget_in_the_papers_order(tmp_path):
    from bench.report.plots import comparison_panels

    # seeds of one method stop at different iterations when their budget ends
    cpu_budgeted_run(tmp_path, "protonet", 0, "omniglot-20w1s", [4.0, 10.0], [0.5, 0.7], [100, 180])
    cpu_budgeted_run(tmp_path, "protonet", 1, "omniglot-20w1s", [4.0, 10.0], [0.5, 0.8], [100, 150])
    cpu_budgeted_run(tmp_path, "maml", 0, "omniglot-20w1s", [5.0, 10.0], [0.05, 0.06], [100, 120])  # 20-way chance
    cpu_budgeted_run(tmp_path, "protonet", 0, "omniglot-5w1s", [4.0, 10.0], [0.6, 0.9], [100, 170])
    cpu_budgeted_run(tmp_path, "protonet", 0, "omniglot-5w1s", [4.0, 10.0], [0.6, 0.9], [100, 170], clock="wall")
    fake_run(tmp_path, "protonet", 0, [1.0])  # an iteration budget: no panel
    panels = comparison_panels(collect(tmp_path))
    assert [p.title.split(":")[0] for p in panels] == ["omniglot-5w1s, smoke, equal-time-cpu",
                                                       "omniglot-5w1s, smoke, equal-time-wall",
                                                       "omniglot-20w1s, smoke, equal-time-cpu"]
    assert [p.clock for p in panels] == ["cpu", "wall", "cpu"]
    wall_run = panels[1].runs["protonet (smoke, equal-time-wall)"][0]
    assert list(wall_run["seconds"]) == [12.0, 30.0]  # wall seconds where the budget counted them
    twenty = panels[2]
    assert list(twenty.runs) == ["protonet (smoke, equal-time-cpu)"]
    ends = [(run["seconds"].iloc[-1], run["value"].iloc[-1]) for run in twenty.runs["protonet (smoke, equal-time-cpu)"]]
    assert sorted(ends) == [(10.0, 0.7), (10.0, 0.8)]  # each seed's last validation, on the CPU clock
    assert twenty.at_chance == ["maml (smoke, equal-time-cpu) stays near chance (6 % at best)"]


def test_time_to_a_level_is_the_median_over_seeds_on_the_clock_of_the_budget(tmp_path):
    cpu_budgeted_run(tmp_path, "protonet", 0, "omniglot-20w1s", [4.0, 10.0], [0.5, 0.7], [100, 180])
    cpu_budgeted_run(tmp_path, "protonet", 1, "omniglot-20w1s", [4.0, 10.0], [0.85, 0.8], [100, 150])
    cpu_budgeted_run(tmp_path, "protonet", 2, "omniglot-20w1s", [6.0, 10.0], [0.5, 0.81], [100, 150])
    cpu_budgeted_run(tmp_path, "protonet", 0, "omniglot-5w1s", [4.0, 10.0], [0.6, 0.9], [100, 170], clock="wall")
    table = time_to_level_table(collect(tmp_path)).set_index(["task", "method"])
    assert list(table.columns) == ["80%", "90%"]  # the levels no run reached are left out
    cpu = table.loc[("omniglot-20w1s", "protonet (smoke, equal-time-cpu)")]
    assert (cpu["80%"], cpu["90%"]) == ("7 CPU-s (1 of 3 never)", "never")  # median of 4 and 10 CPU-s
    wall = table.loc[("omniglot-5w1s", "protonet (smoke, equal-time-wall)")]
    assert (wall["80%"], wall["90%"]) == ("30 s", "30 s")  # wall seconds (3 x the CPU seconds here)


def test_a_compacted_run_reports_as_before_and_keeps_its_ends_of_the_training_curve(tmp_path):
    from bench.errors import UserError
    from bench.results.runfolder import RunFolder

    folder = fake_run(tmp_path / "results", "protonet", 0, [0.5, 1.0, 0.75])
    folder.write_curves([{"iteration": i, "loss": 1 / i, "accuracy": 0.5, "seconds": 0.1} for i in range(1, 2002)],
                        folder.val_rows())
    before = folder.result()
    folder.lock()
    with pytest.raises(UserError, match="only those are compacted"):
        RunFolder(folder.path).compact()  # another process holds it
    folder.unlock()
    folder.compact(train_points=500)
    after = RunFolder(folder.path).result()
    assert (after.summary, after.config, after.test_rows, after.val_rows) == \
        (before.summary, before.config, before.test_rows, before.val_rows)
    curve = [r["iteration"] for r in folder.train_rows(10**9)]
    assert curve[0] == 1 and curve[-1] == 2001 and 250 <= len(curve) <= 501 and curve == sorted(curve)
    assert not list(folder.path.glob("*.jsonl")) and not (folder.path / ".lock").exists()
    interrupted = fake_run(tmp_path / "results", "protonet", 1, [0.5], complete=False)
    with pytest.raises(UserError, match="not a complete run"):
        interrupted.compact()


def test_the_committed_reference_is_small_and_holds_no_lock_files():
    repo = Path(__file__).resolve().parent.parent
    listed = subprocess.run(["git", "ls-files", "results/reference"], capture_output=True, text=True, check=True, cwd=repo)
    tracked = [repo / p for p in listed.stdout.split() if (repo / p).exists()]  # not those deleted since the last commit
    assert tracked and not [p for p in tracked if p.name == ".lock" or p.suffix == ".pt"]
    size = sum(p.stat().st_size for p in tracked)
    assert size < 20 * 2**20, f"results/reference holds {size / 2**20:.1f} MiB: compact new runs (scripts/compact_reference.py)"


def test_a_config_and_seed_run_twice_is_counted_once_and_listed_as_a_duplicate(tmp_path):
    first = fake_run(tmp_path, "protonet", 0, [1.0, 0.0])
    second = fake_run(tmp_path, "protonet", 0, [0.5, 0.5])  # the same config and seed, as two sweeps at once make it
    other_seed = fake_run(tmp_path, "protonet", 1, [1.0, 1.0])
    c = collect(tmp_path)
    assert sorted(c.runs["run"]) == sorted([first.name, other_seed.name])
    (row,) = c.incomplete.itertuples()
    assert row.run == second.name and row.missing.startswith(f"duplicate: the same config and seed as {first.name}")
    assert accuracy_table(c)["seeds"].tolist() == [2]
