import json
import os

import pytest
from helpers import fake_run, invoke, one_line_error, the_run

from methods import METHODS

RUN_FILES = {"config.json", "environment.json", "train.jsonl", "val.jsonl", "test_episodes.jsonl", "summary.json", "best.pt"}


@pytest.fixture(scope="module")
def protonet_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("results")
    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--data-root", data_root, "--out", out)
    assert result.exit_code == 0, result.output
    return out


SMOKE = [(m, t) for m in METHODS for t in ("omniglot-5w1s", "sinusoid-5s")
         if {"omniglot-5w1s": "classification", "sinusoid-5s": "regression"}[t] in METHODS.get(m).kinds]


@pytest.mark.parametrize("method,task", [c for c in SMOKE if c[1] == "omniglot-5w1s"])
def test_smoke_run_writes_every_result_file(method, task, tmp_path, data_root):
    check_smoke_run(method, task, tmp_path, data_root)


@pytest.mark.parametrize("method,task", [c for c in SMOKE if c[1] == "sinusoid-5s"])
def test_smoke_run_without_data_writes_every_result_file(method, task, tmp_path):
    check_smoke_run(method, task, tmp_path, tmp_path / "no-data-needed")


def check_smoke_run(method, task, tmp_path, data_root):
    result = invoke("run", "--method", method, "--task", task, "--profile", "smoke", "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["episodes"] == 8
    assert summary["method"] == method and summary["task"] == task
    episodes = [json.loads(line) for line in (run_dir / "test_episodes.jsonl").read_text().splitlines()]
    assert [e["episode"] for e in episodes] == list(range(8))
    index = [json.loads(line) for line in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert index == [summary]
    env = json.loads((run_dir / "environment.json").read_text())
    assert {"git_commit", "git_dirty", "torch", "learn2learn", "device", "cpu_count"} <= set(env)
    assert env["niceness"] == os.nice(0)  # in-process: the run's priority is this process's
    assert env["command"] == ""  # called from Python, not from a command line


def test_a_command_line_is_recorded_as_typed_after_the_program_name(monkeypatch):
    from bench.engine import invocation

    monkeypatch.setenv(invocation.VARIABLE, "")  # restored after the test
    invocation.record(["/home/me/bench/cli.py", "sweep", "--set", "tag=two words", "--seeds", "0,1"])
    assert invocation.command() == "cli.py sweep --set 'tag=two words' --seeds 0,1"


def test_every_method_sees_the_same_test_episodes(tmp_path, data_root):
    fingerprints = {}
    for method in [m for m, t in SMOKE if t == "omniglot-5w1s"]:
        out = tmp_path / method
        for seed in (0, 1):
            result = invoke("run", "--method", method, "--task", "omniglot-5w1s", "--profile", "smoke",
                            "--seed", seed, "--data-root", data_root, "--out", out)
            assert result.exit_code == 0, result.output
        for run_dir in (out / "runs").iterdir():
            rows = [json.loads(line) for line in (run_dir / "test_episodes.jsonl").read_text().splitlines()]
            fingerprints[run_dir.name] = [(r["fingerprint"], tuple(r["classes"])) for r in rows]
    assert len(fingerprints) >= 2
    assert len(set(map(tuple, fingerprints.values()))) == 1


def test_eval_on_a_compatible_task_writes_a_separate_record(protonet_run, data_root):
    run_dir = the_run(protonet_run)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = invoke("eval", run_dir, "--task", "omniglot-20w1s", "--episodes", 3, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    (record,) = (run_dir / "evals").glob("*.json")
    data = json.loads(record.read_text())
    assert data["task"] == "omniglot-20w1s" and data["episodes"] == 3
    assert before == {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


def test_eval_tests_as_many_episodes_as_the_run_was_tested_on(protonet_run, data_root):
    run_dir = the_run(protonet_run)
    result = invoke("eval", run_dir, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    tested = json.loads((run_dir / "summary.json").read_text())["episodes"]
    records = [json.loads(p.read_text()) for p in (run_dir / "evals").glob("*.json")]
    assert tested == 8 and [r["episodes"] for r in records if r["task"] == "omniglot-5w1s"] == [tested]  # smoke: eval.episodes 8


def test_list_names_everything():
    result = invoke("list")
    assert result.exit_code == 0
    for name in [*METHODS, "omniglot-5w1s", "omniglot-20w5s", "sinusoid-10s", "quick", "paper", "resnet12"]:
        assert name in result.output
    # profiles come from each method's profiles.yaml: only CSN has the seed reimplementation's
    lines = result.output.splitlines()
    profiles = {lines[i - 1].split()[0]: line.split(":")[1].replace(",", " ").split()
                for i, line in enumerate(lines) if "profiles:" in line}
    assert "seed" in profiles["csn"] and "seed" not in profiles["maml"]


def test_list_keys_come_from_the_config_dataclasses():
    result = invoke("list", "--keys", "csn")
    assert result.exit_code == 0, result.output
    assert "method.architecture" in result.output and "adaresnet" in result.output
    assert "train.val_every" in result.output and "eval.seed" in result.output
    assert "Key embedding size; 0 means the architecture's." in result.output  # the field's docstring
    one_line_error(invoke("list", "--keys", "nope"), 2, "unknown method 'nope'")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_config_key_is_documented(method):
    from bench.config import describe
    from bench.engine.runconfig import RunSettings

    undocumented = [r.key for r in describe(RunSettings) + describe(METHODS.get(method).Config, "method") if not r.doc]
    assert not undocumented, f"add a docstring under these fields: {undocumented}"


@pytest.mark.parametrize(
    "args,code,pattern",
    [
        (["run", "--method", "protonett", "--task", "omniglot-5w1s"], 2, "unknown method 'protonett' (did you mean 'protonet'?)"),
        (["run", "--method", "protonet", "--task", "omniglot-5w2s"], 2, "unknown task 'omniglot-5w2s'"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "fast"], 2, "unknown profile 'fast'"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--set", "train.iteratons=3"], 2, "unknown config key 'train.iteratons'"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--set", "train.iterations=many"], 2, "must be an integer"),
        (["run", "--method", "protonet", "--task", "sinusoid-5s"], 2, "does not support regression"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--config", "/nonexistent.yaml"], 2, "config file not found"),
        (["run", "--method", "CSN", "--task", "omniglot-5w1s"], 2, "unknown method 'CSN' (did you mean 'csn'?)"),
        (["run", "--method", "maml", "--task", "omniglot-5w1s", "--profile", "seed"], 2,
         "unknown profile 'seed' of method 'maml'; valid: smoke, demo, quick, paper"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--set", "method=3"], 2,
         "config section 'method' must be a mapping, got 3"),
        (["bench", "--method", "protonet", "--task", "omniglot-5w1s", "--memory-format", "contiguous,nhwc"], 2, "memory_format"),
    ],
)
def test_bad_input_is_one_line_with_exit_code(args, code, pattern, tmp_path):
    one_line_error(invoke(*args, "--out", tmp_path), code, pattern)
    assert not (tmp_path / "runs").exists()


def test_a_non_mapping_section_in_a_config_file_is_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("method: 3\n")
    one_line_error(invoke("run", "--method", "csn", "--task", "sinusoid-5s", "--config", config, "--out", tmp_path),
                   2, "config section 'method' must be a mapping, got 3")


def test_impossible_episodes_leave_no_run_folder(tmp_path, data_root):
    base = ["run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", tmp_path]
    one_line_error(invoke(*base, "--data-root", data_root, "--set", "train.ways=5000"), 2, "5000 ways but the split has only 4112 classes")
    one_line_error(invoke(*base, "--data-root", data_root, "--set", "train.shots=10", "--set", "train.queries=11"), 2, "only 20 samples")
    assert list((tmp_path / "runs").iterdir()) == []


def test_missing_data_leaves_no_run_folder(tmp_path):
    base = ["run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", tmp_path]
    one_line_error(invoke(*base, "--data-root", tmp_path / "nowhere"), 3, "Omniglot not found under")
    assert list((tmp_path / "runs").iterdir()) == []


def test_an_unwritable_output_folder_fails_before_any_data_is_read(tmp_path, monkeypatch):
    import bench.data.omniglot

    def never(*args, **kwargs):
        raise AssertionError("data was read before the run folder was made")

    monkeypatch.setattr(bench.data.omniglot, "load_omniglot", never)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", blocker / "results")
    one_line_error(result, 3, "cannot create the run folder")


def test_eval_rejects_bad_runs(tmp_path):
    """Refused before any data is read: no data root is given."""
    run_dir = fake_run(tmp_path / "results", "protonet", 0, [1.0], checkpoint=True).path
    one_line_error(invoke("eval", tmp_path, "--data-root", tmp_path), 2, "is not a run folder")
    one_line_error(invoke("eval", run_dir, "--task", "sinusoid-5s", "--data-root", tmp_path), 2, "not compatible")
    one_line_error(invoke("eval", run_dir, "--episodes", 0, "--data-root", tmp_path), 2, "--episodes must be from 1 to 100000, got 0")
    best = run_dir / "best.pt"
    whole = best.read_bytes()
    best.write_bytes(whole[:100])
    one_line_error(invoke("eval", run_dir, "--data-root", tmp_path), 2, "cannot load checkpoint")
    maml = fake_run(tmp_path / "other", "maml", 0, [1.0], checkpoint=True).path
    best.write_bytes((maml / "best.pt").read_bytes())
    one_line_error(invoke("eval", run_dir, "--data-root", tmp_path), 2, "not written for method 'protonet'")
    best.unlink()
    one_line_error(invoke("eval", run_dir, "--data-root", tmp_path), 2, "does not exist")


def test_plot_shifts_writes_the_three_kinds_of_figure_and_report_copies_them(tmp_path):
    result = invoke("run", "--method", "csn", "--task", "sinusoid-5s", "--profile", "smoke", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    result = invoke("plot-shifts", run_dir, "--task-seed", 3)
    assert result.exit_code == 0, result.output
    names = {p.name: p.stat().st_size for p in (run_dir / "plots").iterdir()}
    assert set(names) == {"shift_before_after.png", "shift_read_at_-3.png", "shift_read_at_+0.png",
                          "shift_read_at_+3.png", "shifts_all.png"}
    assert all(size > 1000 for size in names.values())
    result = invoke("report", "--results", tmp_path, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    for name in names:
        copied = tmp_path / "report" / f"sinusoid-5s_csn_{name}"
        assert copied.read_bytes() == (run_dir / "plots" / name).read_bytes()
        assert f"]({copied.name})" in (tmp_path / "report" / "report.md").read_text()


def test_plot_shifts_refuses_other_runs(tmp_path):
    run_dir = fake_run(tmp_path, "protonet", 0, [1.0], checkpoint=True).path
    one_line_error(invoke("plot-shifts", run_dir), 2, "draws its task (CSN on a sinusoid task), not protonet on omniglot-5w1s")


def test_bench_times_each_variant_in_a_fresh_process(tmp_path, data_root):
    result = invoke("bench", "--method", "maml", "--task", "omniglot-5w1s", "--profile", "smoke", "--impl", "batched,reference",
                    "--iterations", 1, "--warmup", 0, "--repeat", 2, "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "round 2 of 2" in result.output and "median of 2 rounds" in result.output
    (record,) = (tmp_path / "bench").glob("*.json")
    written = json.loads(record.read_text())
    rows = written["rows"]
    assert written["torch"] and written["threads"] >= 1 and "git_commit" in written and "start" in written["load_average"]
    assert written["command"] == ""  # called from Python, not from a command line
    assert "threads, torch " in result.output and "commit " in result.output
    assert [r["method_info"]["impl_used"] for r in rows] == ["batched", "reference"]
    assert {r["memory_format"] for r in rows} == {"channels_last"}  # auto, on the CPU
    assert all(r["seconds_per_iteration"] > 0 and r["peak_memory_bytes"] > 0 for r in rows)
    assert all(len(r["seconds_per_iteration_runs"]) == 2 for r in rows)


def test_bench_rejects_a_setting_the_method_lacks(tmp_path):
    one_line_error(invoke("bench", "--method", "protonet", "--task", "omniglot-5w1s", "--impl", "batched", "--out", tmp_path),
                   2, "unknown config key 'method.impl'")


def test_tensorboard_mirror_holds_the_same_curves_as_the_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = invoke("run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--tensorboard",
                    "--set", "train.val_every=1", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    train = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (run_dir / "val.jsonl").read_text().splitlines()]
    for tag, rows, key in (("train/loss", train, "loss"), ("val/mse", val, "mse")):
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == [r["iteration"] for r in rows]
        assert [e.value for e in scalars] == pytest.approx([r[key] for r in rows])  # stored as float32
    assert len(val) == 3


def test_tensorboard_is_off_by_default(protonet_run):
    assert not (the_run(protonet_run) / "tensorboard").exists()


def test_demo_plans_every_method_once_on_its_task_with_the_demo_profile():
    from bench.engine.runconfig import RunConfig, profiles
    from bench.engine.sweep.plan import DEMO_TASK, demo_configs

    skipped = []
    configs = demo_configs([METHODS.get(m) for m in METHODS], skipped.append)
    assert [c.method for c in configs] == [m for m in METHODS if "classification" in METHODS.get(m).kinds]
    assert all(isinstance(c, RunConfig) and c.task == DEMO_TASK == "omniglot-5w1s" for c in configs)
    assert {(c.profile, c.settings.seed) for c in configs} == {("demo", 0)}
    assert all("demo" in profiles(c.method_class) for c in configs) and skipped == []
