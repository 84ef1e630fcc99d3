import json

import pytest

import methods
from cli_helpers import invoke, the_run

RUN_FILES = {"config.json", "environment.json", "train.jsonl", "val.jsonl", "test_episodes.jsonl", "summary.json", "best.pt"}


def one_line_error(result, code, pattern):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert pattern in lines[0]


@pytest.fixture(scope="module")
def protonet_run(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("results")
    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--data-root", data_root, "--out", out)
    assert result.exit_code == 0, result.output
    return out


SMOKE = [(m, t) for m in methods.METHODS for t in ("omniglot-5w1s", "sinusoid-5s")
         if {"omniglot-5w1s": "classification", "sinusoid-5s": "regression"}[t] in methods.METHODS.get(m).kinds]


@pytest.mark.slow
@pytest.mark.parametrize("method,task", SMOKE)
def test_smoke_run_writes_every_result_file(method, task, tmp_path, data_root):
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_eval_on_a_compatible_task_writes_a_separate_record(protonet_run, data_root):
    run_dir = the_run(protonet_run)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = invoke("eval", run_dir, "--task", "omniglot-20w1s", "--episodes", 3, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    (record,) = (run_dir / "evals").glob("*.json")
    data = json.loads(record.read_text())
    assert data["task"] == "omniglot-20w1s" and data["episodes"] == 3
    assert before == {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


def test_list_names_everything():
    result = invoke("list")
    assert result.exit_code == 0
    for name in [*methods.METHODS, "omniglot-5w1s", "omniglot-20w5s", "sinusoid-10s", "quick", "paper"]:
        assert name in result.output


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
    ],
)
def test_bad_input_is_one_line_with_exit_code(args, code, pattern, tmp_path):
    one_line_error(invoke(*args, "--out", tmp_path), code, pattern)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_impossible_episodes_and_missing_data(tmp_path, data_root):
    base = ["run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", tmp_path]
    one_line_error(invoke(*base, "--data-root", data_root, "--set", "train.ways=5000"), 2, "5000 ways but the split has only 4112 classes")
    one_line_error(invoke(*base, "--data-root", data_root, "--set", "train.shots=10", "--set", "train.queries=11"), 2, "only 20 samples")
    one_line_error(invoke(*base, "--data-root", tmp_path / "nowhere"), 3, "Omniglot not found under")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_eval_rejects_bad_runs(protonet_run, tmp_path, data_root):
    run_dir = the_run(protonet_run)
    one_line_error(invoke("eval", tmp_path, "--data-root", data_root), 2, "is not a run folder")
    one_line_error(invoke("eval", run_dir, "--task", "sinusoid-5s", "--data-root", data_root), 2, "not compatible")
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in run_dir.iterdir():
        if p.is_file():
            (broken / p.name).write_bytes(p.read_bytes())
    (broken / "best.pt").write_bytes((run_dir / "best.pt").read_bytes()[:100])
    one_line_error(invoke("eval", broken, "--data-root", data_root), 2, "cannot load checkpoint")
    import torch

    torch.save({"method": "maml", "task": "omniglot-5w1s", "iteration": 1, "state_dict": {}}, broken / "best.pt")
    one_line_error(invoke("eval", broken, "--data-root", data_root), 2, "not written for method 'protonet'")


@pytest.mark.slow
def test_plot_shifts_writes_the_three_kinds_of_figure(tmp_path, data_root):
    result = invoke("run", "--method", "csn", "--task", "sinusoid-5s", "--profile", "smoke", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    result = invoke("plot-shifts", run_dir, "--task-seed", 3)
    assert result.exit_code == 0, result.output
    names = {p.name: p.stat().st_size for p in (run_dir / "plots").iterdir()}
    assert set(names) == {"shift_before_after.png", "shift_read_at_-3.png", "shift_read_at_+0.png",
                          "shift_read_at_+3.png", "shifts_all.png"}
    assert all(size > 1000 for size in names.values())


def test_plot_shifts_refuses_other_runs(protonet_run):
    one_line_error(invoke("plot-shifts", the_run(protonet_run)), 2, "needs a CSN run on a sinusoid task")


@pytest.mark.slow
def test_bench_times_each_variant_in_a_fresh_process(tmp_path, data_root):
    result = invoke("bench", "--method", "maml", "--task", "omniglot-5w1s", "--profile", "smoke", "--impl", "batched,reference",
                    "--iterations", 1, "--warmup", 0, "--repeat", 2, "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "round 2 of 2" in result.output and "median of 2 rounds" in result.output
    (record,) = (tmp_path / "bench").glob("*.json")
    rows = json.loads(record.read_text())["rows"]
    assert [r["impl_used"] for r in rows] == ["batched", "reference"]
    assert all(r["seconds_per_iteration"] > 0 and r["peak_memory_bytes"] > 0 for r in rows)
    assert all(len(r["seconds_per_iteration_runs"]) == 2 for r in rows)


def test_bench_rejects_a_setting_the_method_lacks(tmp_path):
    one_line_error(invoke("bench", "--method", "protonet", "--task", "omniglot-5w1s", "--impl", "batched", "--out", tmp_path),
                   2, "unknown config key 'method.impl'")


def test_tensorboard_mirror_holds_the_same_curves_as_the_jsonl(tmp_path, data_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--tensorboard",
                    "--set", "train.val_every=1", "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    train = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (run_dir / "val.jsonl").read_text().splitlines()]
    for tag, rows, key in (("train/loss", train, "loss"), ("val/accuracy", val, "accuracy")):
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == [r["iteration"] for r in rows]
        assert [e.value for e in scalars] == pytest.approx([r[key] for r in rows])  # stored as float32
    assert len(val) == 3


def test_tensorboard_is_off_by_default(protonet_run):
    assert not (the_run(protonet_run) / "tensorboard").exists()
