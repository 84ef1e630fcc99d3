"""scripts/carry_runs.py: the finished runs of a grid into a committed folder, small; on request the resumable ones whole."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import fake_run

from bench.report.collect import collect

REPO_ROOT = Path(__file__).resolve().parent.parent

spec = importlib.util.spec_from_file_location("carry_runs", REPO_ROOT / "scripts" / "carry_runs.py")
carry_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(carry_runs)


def test_finished_runs_are_carried_small_and_once_with_their_index_rows(tmp_path):
    grid = tmp_path / "grid"
    done = fake_run(grid / "csn-s0", "protonet", 0, [1.0, 0.5], checkpoint=True)
    (done.path / ".lock").write_text("")
    fake_run(grid / "csn-s1", "protonet", 1, [1.0], complete=False)  # interrupted: stays behind
    (grid / "csn-s0" / "index.jsonl").write_text(json.dumps({"run": done.name, "accuracy": 0.75}) + "\n"
                                                 + json.dumps({"run": "another", "accuracy": 0.5}) + "\n")
    dest = tmp_path / "inflight"
    assert carry_runs.carry(grid, dest) == [dest / "csn-s0" / "runs" / done.name]
    copied = dest / "csn-s0" / "runs" / done.name
    assert sorted(p.name for p in copied.iterdir()) == ["config.json", "environment.json", "status.json", "summary.json",
                                                        "test_episodes.jsonl.gz", "train.jsonl.gz", "val.jsonl.gz"]
    assert [json.loads(r)["run"] for r in (dest / "csn-s0" / "index.jsonl").read_text().splitlines()] == [done.name]
    assert not (dest / "csn-s1").exists()
    assert carry_runs.carry(grid, dest) == []  # again: nothing new, no second index row
    assert len((dest / "csn-s0" / "index.jsonl").read_text().splitlines()) == 1
    # --flat: the layout the report reads, the same numbers as the run it came from
    flat = tmp_path / "reference"
    out = subprocess.run([sys.executable, "scripts/carry_runs.py", "--flat", str(dest), str(flat)], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(flat / "runs" / done.name)]
    carried, original = collect(flat).runs, collect(grid / "csn-s0").runs
    assert len(carried) == 1 and carried["value"].tolist() == original["value"].tolist() == [0.75]


def test_a_missing_grid_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "scripts/carry_runs.py", str(tmp_path / "none"), str(tmp_path / "d")],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip() == f"error: {tmp_path / 'none'} is not a folder"


def test_unfinished_runs_travel_whole_and_give_way_to_newer_state_then_to_the_finished_run(tmp_path):
    grid, dest = tmp_path / "grid", tmp_path / "inflight"
    run = fake_run(grid, "protonet", 0, [1.0], complete=False, checkpoint=True)
    run.save_state({"iteration": 2}, "protonet")
    fake_run(grid, "protonet", 1, [1.0], complete=False)  # no state: nothing to resume from
    assert carry_runs.carry(grid, dest) == []  # only with --unfinished
    copy = dest / "runs" / run.name
    assert carry_runs.carry(grid, dest, unfinished=True) == [copy]
    assert sorted(p.name for p in copy.iterdir()) == ["best.pt", "config.json", "environment.json", "state.pt",
                                                      "status.json", "train.jsonl", "val.jsonl"]
    (copy / "stale").write_text("")
    assert carry_runs.carry(grid, dest, unfinished=True) == [copy] and not (copy / "stale").exists()  # newer state
    finished = fake_run(tmp_path / "later", "protonet", 0, [0.5])  # the same run, finished: its files replace the copy's
    for path in finished.path.iterdir():
        shutil.copy(path, run.path / path.name)
    assert carry_runs.carry(grid, dest, unfinished=True) == [copy]
    assert not (copy / "state.pt").exists() and (copy / "summary.json").exists()
    assert carry_runs.carry(grid, dest, unfinished=True) == []
