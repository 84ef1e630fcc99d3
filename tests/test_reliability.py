"""Interrupted runs resume to the same results; result files are never half-written or lost."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import fake_run, invoke, one_line_error, the_run

REPO = Path(__file__).resolve().parent.parent
SETTINGS = ["--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--seed", "3",
            "--set", "train.iterations=300", "--set", "train.checkpoint_every=10", "--set", "train.val_every=100",
            "--set", "eval.episodes=6"]


def episodes(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "test_episodes.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("reference")
    result = invoke("run", *SETTINGS, "--data-root", data_root, "--out", out)
    assert result.exit_code == 0, result.output
    return the_run(out)


def start_run(out: Path, data_root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "cli.py", "run", *SETTINGS, "--data-root", str(data_root), "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = list((out / "runs").glob("*/state.pt")) if (out / "runs").exists() else []
        if states:
            return states[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_to_identical_episode_results(sig, reference, tmp_path, data_root):
    proc = start_run(tmp_path, data_root)
    run_dir = wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert not (run_dir / "summary.json").exists(), "the run finished before it could be interrupted"
    if sig == signal.SIGTERM:
        assert proc.returncode == 4
        last = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(last) == 1 and "interrupted by SIGTERM at iteration" in last[0] and "--resume" in last[0]
        assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    else:
        assert proc.returncode == -signal.SIGKILL
    result = invoke("run", "--resume", run_dir, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    assert episodes(run_dir) == episodes(reference)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] and summary["iterations"] == 300
    train = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in train] == list(range(1, 301))


def test_same_seed_gives_identical_files_apart_from_timings(reference, tmp_path, data_root):
    result = invoke("run", *SETTINGS, "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    assert episodes(run_dir) == episodes(reference)
    timing = {"seconds", "train_seconds"}
    for name in ("train.jsonl", "val.jsonl"):
        a = [{k: v for k, v in json.loads(l).items() if k not in timing} for l in (run_dir / name).read_text().splitlines()]
        b = [{k: v for k, v in json.loads(l).items() if k not in timing} for l in (reference / name).read_text().splitlines()]
        assert a == b, name
    assert (run_dir / "config.json").read_text() == (reference / "config.json").read_text()


def test_resume_errors(tmp_path):
    """Refused before any data is read: no data root is given."""
    finished = fake_run(tmp_path / "a", "protonet", 0, [1.0]).path
    one_line_error(invoke("run", "--resume", finished), 2, "already finished")
    one_line_error(invoke("run", "--resume", tmp_path), 2, "not a run folder")
    one_line_error(invoke("run", "--resume", finished, "--method", "maml"), 2, "its own config")
    interrupted = fake_run(tmp_path / "b", "protonet", 0, [1.0], complete=False)
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "has no state.pt to resume from")
    interrupted.save_state({"trainer": {}}, "maml")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "not written for method 'protonet'")
    (interrupted.path / "state.pt").write_bytes(b"not a checkpoint")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "cannot resume from")


APPENDER = """
import sys
from pathlib import Path
from bench.files import append_jsonl
for i in range(200):
    append_jsonl(Path(sys.argv[1]), {"writer": int(sys.argv[2]), "i": i, "pad": "x" * 2000})
"""


def test_concurrent_index_appends_lose_nothing(tmp_path):
    index = tmp_path / "index.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(index), str(w)], cwd=REPO) for w in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert sorted((r["writer"], r["i"]) for r in rows) == [(w, i) for w in range(4) for i in range(200)]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bad_inputs_leave_existing_results_byte_identical(reference, tmp_path, data_root):
    out = reference.parent.parent
    before = snapshot(out)
    cases = [
        (["run", "--method", "nope", "--task", "omniglot-5w1s"], 2, "unknown method"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--set", "train.lr=fast"], 2, "must be a number"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--set", "train.ways=9999", "--data-root", data_root], 2, "9999 ways"),
        (["run", "--method", "protonet", "--task", "omniglot-5w1s", "--data-root", tmp_path], 3, "Omniglot not found"),
        (["eval", reference, "--task", "sinusoid-5s", "--data-root", data_root], 2, "not compatible"),
    ]
    for args, code, pattern in cases:
        result = invoke(*args, *(["--out", out] if args[0] == "run" else []))
        assert result.exit_code == code, (args, result.output)
        assert pattern in result.output
    assert snapshot(out) == before


def test_nan_loss_stops_with_the_iteration_and_keeps_checkpoints(tmp_path, data_root):
    result = invoke("run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke",
                    "--set", "method.inner_lr=1e30", "--set", "train.iterations=5", "--set", "train.val_every=1",
                    "--out", tmp_path)
    assert result.exit_code == 4, result.output
    assert "training loss became" in result.output and "at iteration" in result.output
    run_dir = the_run(tmp_path)
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
    assert not (run_dir / "summary.json").exists()


RECORDER = """
import subprocess, sys, torch
from bench.engine import provenance
subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "committed while a sweep runs"], check=True)
print(provenance.environment(torch.device("cpu"))["git_commit"], provenance._git("rev-parse", "HEAD"))
"""


def test_runs_record_the_code_state_of_their_process_not_of_the_checkout_now(tmp_path):
    """A commit made after the harness was loaded (during a sweep) is not what its runs record."""
    import shutil

    shutil.copytree(REPO / "bench", tmp_path / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PYTHONPATH": str(tmp_path)}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "bench"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "loaded"], cwd=tmp_path, check=True, env=env)
    loaded = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    out = subprocess.run([sys.executable, "-c", RECORDER], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    recorded, now = out.stdout.split()
    assert now != loaded  # the checkout moved on...
    assert recorded == loaded  # ...and the record names the code the process loaded
