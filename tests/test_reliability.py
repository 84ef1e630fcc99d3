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

from bench.errors import UserError

REPO = Path(__file__).resolve().parent.parent
ITERATIONS = 100
SETTINGS = ["--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--seed", "3",
            "--set", f"train.iterations={ITERATIONS}", "--set", "train.checkpoint_every=10", "--set", "train.val_every=50",
            "--set", "train.val_episodes=50", "--set", "eval.episodes=50"]


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


def status(out: Path) -> tuple[Path | None, dict]:
    for path in (out / "runs").glob("*/status.json") if (out / "runs").exists() else []:
        try:
            return path.parent, json.loads(path.read_text())
        except ValueError:
            pass  # never half-written (atomic), but the glob may race the rename
    return None, {}


def wait_for(out: Path, proc: subprocess.Popen, ready, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run_dir, state = status(out)
        if run_dir is not None and ready(run_dir, state):
            return run_dir
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run never reached the awaited moment")


MOMENTS = {
    "loading data": lambda run_dir, s: s.get("phase") == "loading data",
    "training": lambda run_dir, s: (run_dir / "state.pt").exists() and s.get("phase") == "training",
    "validating": lambda run_dir, s: s.get("phase") == "validating",
    "testing": lambda run_dir, s: s.get("phase") == "testing",
}


@pytest.mark.parametrize("phase", list(MOMENTS))
def test_sigterm_in_every_phase_exits_4_and_resumes_to_identical_results(phase, reference, tmp_path, data_root):
    proc = start_run(tmp_path, data_root)
    run_dir = wait_for(tmp_path, proc, MOMENTS[phase])
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 4, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"interrupted by SIGTERM while {phase}" in errors[0] and "--resume" in errors[0], stderr
    assert "Traceback" not in stderr
    written = json.loads((run_dir / "status.json").read_text())
    assert written["status"] == "interrupted" and written["phase"] == phase
    assert not (run_dir / "summary.json").exists()
    result = invoke("run", "--resume", run_dir, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    assert episodes(run_dir) == episodes(reference)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] and summary["iterations"] == ITERATIONS
    train = [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in train] == list(range(1, ITERATIONS + 1))


def test_sigkill_leaves_a_status_that_names_the_last_checkpoint(reference, tmp_path, data_root):
    proc = start_run(tmp_path, data_root)
    run_dir = wait_for(tmp_path, proc, lambda d, s: s.get("phase") == "training" and s.get("iteration", 0) >= 20)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    written = json.loads((run_dir / "status.json").read_text())
    import torch

    state = torch.load(run_dir / "state.pt", weights_only=True)
    checkpointed = state["trainer"]["iteration"]  # a kill between the two writes leaves status one checkpoint behind
    assert written["status"] == "running" and checkpointed - 10 <= written["iteration"] <= checkpointed and checkpointed >= 20
    result = invoke("run", "--resume", run_dir, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    assert episodes(run_dir) == episodes(reference)


def test_same_seed_gives_identical_files_apart_from_timings(reference, tmp_path, data_root):
    result = invoke("run", *SETTINGS, "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run_dir = the_run(tmp_path)
    assert episodes(run_dir) == episodes(reference)
    timing = {"seconds", "train_seconds", "cpu_seconds", "train_cpu_seconds"}
    for name in ("train.jsonl", "val.jsonl"):
        a = [{k: v for k, v in json.loads(l).items() if k not in timing} for l in (run_dir / name).read_text().splitlines()]
        b = [{k: v for k, v in json.loads(l).items() if k not in timing} for l in (reference / name).read_text().splitlines()]
        assert a == b, name
    assert (run_dir / "config.json").read_text() == (reference / "config.json").read_text()


def test_resume_errors(tmp_path):
    """Refused before any data is read: no data root is given."""
    finished = fake_run(tmp_path / "a", "protonet", 0, [1.0]).path
    one_line_error(invoke("run", "--resume", finished), 2, "already finished")
    for option in (["--profile", "quick"], ["--out", str(tmp_path)], ["--seed", "3"], ["--set", "train.lr=0.1"], ["--device", "cpu"]):
        one_line_error(invoke("run", "--resume", finished, *option), 2,
                       f"--resume continues a run with its own config and folder: give no {option[0]}")
    one_line_error(invoke("run", "--resume", tmp_path), 2, "not a run folder")
    one_line_error(invoke("run", "--resume", finished, "--method", "maml"), 2, "its own config")
    interrupted = fake_run(tmp_path / "b", "protonet", 0, [1.0], complete=False)
    interrupted.save_state({"trainer": {}, "best_value": None, "best_iteration": 0, "train_seconds": 0.0}, "maml")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "not written for method 'protonet'")
    interrupted.save_state({"trainer": {}}, "protonet")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "it lacks best_value, best_iteration, train_seconds")
    interrupted.save_state({"trainer": {}, "best_value": None, "best_iteration": 0, "train_seconds": 0.0}, "protonet")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "its state records no iteration")
    (interrupted.path / "state.pt").write_bytes(b"not a checkpoint")
    one_line_error(invoke("run", "--resume", interrupted.path), 2, "cannot resume from")
    before = {p.name: p.read_bytes() for p in interrupted.path.iterdir()}
    (interrupted.path / "state.pt").unlink()  # interrupted before its first checkpoint: it starts again, here
    one_line_error(invoke("run", "--resume", interrupted.path, "--data-root", tmp_path), 3, "Omniglot not found")
    assert interrupted.path.is_dir() and (interrupted.path / "config.json").read_bytes() == before["config.json"]


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


def test_nan_loss_stops_with_the_iteration_and_keeps_checkpoints(tmp_path):
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_run_is_complete_changes_nothing(sig, tmp_path, monkeypatch):
    """The run's own handlers are gone once it returns; a signal while its result line is
    printed finds a complete run: exit 0 and the line, not a kill or an 'interrupted' error."""
    import bench.engine.run

    finished = fake_run(tmp_path, "protonet", 0, [1.0])

    def completes_then_is_signalled(config, data_root, out, **kwargs):
        os.kill(os.getpid(), sig)  # arrives after the run's own handling ended
        return finished

    monkeypatch.setattr(bench.engine.run, "run", completes_then_is_signalled)
    before = signal.getsignal(sig)
    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert str(finished.path) in result.output and "error" not in result.output
    assert signal.getsignal(sig) is before  # the command leaves the process's handlers as it found them


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_as_a_program_a_signal_after_the_command_returned_still_exits_0(sig, tmp_path):
    """Between the command's return and the process's exit (click's own exit, interpreter
    shutdown) a signal would otherwise be click's 'Aborted!' (exit 1) or a kill (the shutdown
    puts Python handlers back to the default): the program ignores them until it exits."""
    finished = fake_run(tmp_path, "protonet", 0, [1.0])
    script = f"""
import os, signal, sys
sys.argv = ["cli.py", "run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", {str(tmp_path)!r}]
import bench.engine.run
from bench.results.runfolder import RunFolder
bench.engine.run.run = lambda *args, **kwargs: RunFolder({str(finished.path)!r})
import runpy
try:
    runpy.run_path("cli.py", run_name="__main__")
finally:
    # ignored outright (SIG_IGN), which the interpreter's shutdown keeps, unlike a Python handler
    print("disposition:", signal.getsignal({int(sig)}) is signal.SIG_IGN)
    os.kill(os.getpid(), {int(sig)})
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert str(finished.path) in out.stdout and "Aborted" not in out.stderr + out.stdout
    assert "disposition: True" in out.stdout


def test_a_checkpoint_copied_from_another_run_is_refused_naming_both(tmp_path):
    import shutil

    mine = fake_run(tmp_path / "a", "protonet", 0, [1.0], checkpoint=True, complete=False)
    other = fake_run(tmp_path / "b", "protonet", 1, [1.0], checkpoint=True, complete=False, task="omniglot-20w1s")
    state = {"trainer": {"iteration": 2}, "best_value": 0.7, "best_iteration": 2, "train_seconds": 1.0}
    mine.save_state(state, "protonet")
    other.save_state(state, "protonet")
    assert mine.load_state("protonet")["run"] == mine.name and mine.load_best("protonet")["seed"] == 0
    for name in ("state.pt", "best.pt"):
        shutil.copy(other.path / name, mine.path / name)
    with pytest.raises(UserError, match=f"belongs to another run .{other.name}: task omniglot-20w1s, seed 1"):
        mine.load_state("protonet")
    one_line_error(invoke("run", "--resume", mine.path, "--data-root", tmp_path / "none"), 2,
                   f"state.pt belongs to another run ({other.name}")
    one_line_error(invoke("eval", mine.path, "--data-root", tmp_path / "none"), 2, f"best.pt belongs to another run ({other.name}")


def test_reading_a_small_file_asks_for_its_size_not_the_limit(tmp_path):
    """With the address space capped at 1 GiB, a file of a few bytes still reads (asking for the
    16 GiB limit at once was refused with a MemoryError whenever the machine's memory was in use),
    a file that grew past its stat is read whole, and one over the limit is refused."""
    import textwrap

    small, grown = tmp_path / "small", tmp_path / "grown"
    small.write_bytes(b"abc")
    grown.write_bytes(b"x" * 100_000)
    script = textwrap.dedent(f"""
        import os, resource
        from pathlib import Path
        from unittest import mock
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from bench.files import read_file
        assert read_file(Path({str(small)!r})) == b"abc"
        real_stat = os.stat
        def stale(path, *a, **k):  # the file as it was before it grew
            return os.stat_result((*real_stat(path)[:6], 10, *real_stat(path)[7:]))
        with mock.patch("os.stat", stale):
            assert read_file(Path({str(grown)!r})) == b"x" * 100_000
        try:
            read_file(Path({str(grown)!r}), limit=99_999)
        except OSError as exc:
            assert "larger than 99999 bytes" in str(exc)
        else:
            raise AssertionError("a file over the limit was read")
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_interrupted_run_carried_with_its_checkpoints_resumes_elsewhere_to_identical_results(reference, tmp_path, data_root):
    """What lets a run longer than a session outlive its machine: ``carry_runs.py --unfinished``
    copies it whole into the repository, and the copy resumes on another machine."""
    proc = start_run(tmp_path / "grid", data_root)
    wait_for(tmp_path / "grid", proc, lambda d, s: s.get("phase") == "training" and s.get("iteration", 0) >= 20)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=300)
    carry = [sys.executable, "scripts/carry_runs.py", "--unfinished", str(tmp_path / "grid"), str(tmp_path / "inflight")]
    out = subprocess.run(carry, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (copy,) = map(Path, out.stdout.split())
    assert (copy / "state.pt").is_file() and not (copy / ".lock").exists() and not (copy / "summary.json").exists()
    result = invoke("run", "--resume", copy, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    assert episodes(copy) == episodes(reference) and json.loads((copy / "summary.json").read_text())["resumed"]
