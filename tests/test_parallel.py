"""Many runs at once: child processes on this machine, Ray tasks on a cluster, concurrent timing,
and captured (compiled) steps."""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import invoke, one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
GRID = ["sweep", "--methods", "maml", "--tasks", "sinusoid-5s", "--profile", "smoke", "--set", "eval.episodes=50",
        "--threads-per-run", "1"]


def episodes_by_config(out: Path) -> dict:
    """Each run's test episodes, keyed by the run's resolved config without its run name."""
    found = {}
    for run in (out / "runs").iterdir():
        if (run / "summary.json").exists():
            config = (run / "config.json").read_text()
            found[config] = (run / "test_episodes.jsonl").read_text()
    return found


def test_parallel_sweep_gives_the_sequential_results_and_a_failure_ends_only_its_run(concurrent_runs):
    sequential = invoke(*GRID, "--seeds", "0,1", "--set", "method.inner_lr=0.01", "--out", concurrent_runs / "one")
    assert sequential.exit_code == 0, sequential.output
    parallel = invoke(*GRID, "--seeds", "0,1", "--grid", "method.inner_lr=0.01,1e30", "--jobs", "2", "--out", concurrent_runs / "two")
    assert parallel.exit_code == 4, parallel.output  # the diverging setting fails; the others run
    assert parallel.output.count("ran      maml") == 2 and parallel.output.count("failed   maml") == 2
    assert "the training loss became" in parallel.output
    assert parallel.output.strip().splitlines()[-1].startswith("error: 2 of 4 runs failed")
    assert episodes_by_config(concurrent_runs / "two") == episodes_by_config(concurrent_runs / "one")
    logs = list((concurrent_runs / "two" / "sweeps").glob("*/*.log"))
    assert len(logs) == 4 and all("-m bench.engine.sweep.worker" in log.read_text().splitlines()[0] for log in logs)
    again = invoke(*GRID, "--seeds", "0,1", "--grid", "method.inner_lr=0.01", "--jobs", "2", "--out", concurrent_runs / "two")
    assert again.exit_code == 0 and again.output.count("finished ") == 2


SIGNALLED = [*GRID, "--seeds", "0,1,2", "--set", "method.inner_lr=0.01", "--set", "train.iterations=300",
             "--set", "train.checkpoint_every=5", "--set", "train.val_every=100"]


@pytest.fixture(scope="module")
def uninterrupted_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted_sweep")
    result = invoke(*SIGNALLED, "--out", out)
    assert result.exit_code == 0, result.output
    return episodes_by_config(out)


@pytest.mark.parametrize("jobs, sig", [(2, signal.SIGINT), (2, signal.SIGTERM), (1, signal.SIGTERM)])
def test_a_signalled_sweep_interrupts_its_runs_starts_no_other_and_a_rerun_gives_the_same_results(
        jobs, sig, uninterrupted_sweep, concurrent_runs):
    proc = subprocess.Popen([sys.executable, "cli.py", *SIGNALLED, "--jobs", str(jobs), "--out", str(concurrent_runs)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not list(concurrent_runs.glob("runs/*/state.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # as Ctrl-C in a terminal: the sweep and its children all get it
    else:
        proc.send_signal(sig)  # as kill: the sweep alone gets it
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 4 and "Traceback" not in stderr, stdout + stderr
    assert [line for line in stderr.splitlines() if line.startswith("error:")][-1].startswith("error: sweep interrupted: ")
    assert stdout.count("not started") == 3 - jobs and stdout.count("interrupted") >= 1, stdout
    statuses = [json.loads(p.read_text())["status"] for p in concurrent_runs.glob("runs/*/status.json")]
    assert "running" not in statuses and "interrupted" in statuses, statuses
    again = invoke(*SIGNALLED, "--jobs", jobs, "--out", concurrent_runs)
    assert again.exit_code == 0 and "resumed" in again.output, again.output
    assert episodes_by_config(concurrent_runs) == uninterrupted_sweep


@settings(max_examples=3, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sig=st.sampled_from([signal.SIGINT, signal.SIGTERM]), delay=st.floats(0.0, 3.0))
def test_a_signal_at_a_random_moment_of_a_parallel_sweep_ends_in_results_or_exit_4_and_a_rerun_completes_them(
        sig, delay, uninterrupted_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("signalled_sweep")
    proc = subprocess.Popen([sys.executable, "cli.py", *SIGNALLED, "--jobs", "2", "--out", str(out)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "runs").exists() and proc.poll() is None:  # from the moment the first run exists
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 4) and "Traceback" not in stderr, stdout + stderr
    statuses = [json.loads(p.read_text())["status"] for p in out.glob("runs/*/status.json")]
    assert "running" not in statuses, statuses
    again = invoke(*SIGNALLED, "--jobs", 2, "--out", out)
    assert again.exit_code == 0, again.output
    assert episodes_by_config(out) == uninterrupted_sweep


def test_two_sweeps_started_together_on_one_grid_run_each_config_once(concurrent_runs):
    command = [sys.executable, "cli.py", *GRID, "--seeds", "0,1,2", "--set", "method.inner_lr=0.01", "--out", str(concurrent_runs)]
    procs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert len(list(concurrent_runs.glob("runs/*/summary.json"))) == 3  # not 4 to 6
    assert sum(out.count("ran ") for out, _ in outputs) == 3, outputs
    # each run records the command that started it, though a worker process of the sweep ran it
    recorded = {json.loads(p.read_text())["command"] for p in concurrent_runs.glob("runs/*/environment.json")}
    assert recorded == {shlex.join(command[1:])}


def test_a_config_claimed_by_another_sweep_is_left_to_it_and_a_stopped_sweep_starts_nothing(tmp_path):
    from helpers import resolve

    from bench.engine.sweep.plan import Job, run_job
    from bench.engine.sweep.ray_tasks import STOP, ray_task
    from bench.results.runfolder import Claim, config_digest

    job = Job(0, resolve("maml", "sinusoid-5s", "smoke"))
    with Claim(tmp_path, config_digest(job.config.to_dict())) as mine:
        assert mine
        outcome = run_job(job, tmp_path, tmp_path, False, lambda: False)
        assert (outcome.what, outcome.folder) == ("elsewhere", None)
    assert run_job(job, tmp_path, tmp_path, False, lambda: True).what == "not started"
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / STOP).touch()  # a Ray sweep that was interrupted says so to its tasks
    assert ray_task(job, str(tmp_path), str(tmp_path), str(tmp_path / "logs"), 1).status == "not started"
    assert not (tmp_path / "runs").exists()


def test_an_executor_is_a_class_and_one_registration(tmp_path, monkeypatch):
    from bench.engine.sweep import EXECUTORS
    from bench.engine.sweep.executor import InProcess

    seen = []

    class Recording(InProcess):
        def execute(self, jobs, out):
            seen.extend(job.name for job in jobs)
            yield from super().execute(jobs, out)

    monkeypatch.setitem(EXECUTORS._items, "recording", lambda options: Recording(options.data_root, 1, progress=False))
    result = invoke(*GRID, "--seeds", "0,1", "--set", "method.inner_lr=0.01", "--executor", "recording", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert seen == ["000-sinusoid-5s-maml-s0", "001-sinusoid-5s-maml-s1"] and result.output.count("ran      maml") == 2
    one_line_error(invoke(*GRID, "--executor", "rey", "--out", tmp_path), 2, "unknown executor 'rey' (did you mean 'ray'?)")


def test_bench_jobs_times_concurrent_copies(concurrent_runs):
    result = invoke("bench", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "method.inner_lr=0.01",
                    "--iterations", 3, "--warmup", 1, "--jobs", "1,2", "--out", concurrent_runs)
    assert result.exit_code == 0, result.output
    (record,) = (concurrent_runs / "bench").glob("*.json")
    rows = json.loads(record.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["jobs=1", "jobs=2"] and [r["jobs"] for r in rows] == [1, 2]
    assert all(r["iterations_per_second"] > 0 for r in rows)


@pytest.mark.parametrize("jobs", ["0", "65", " ", "1,x"])
def test_bench_jobs_outside_1_to_64_is_a_one_line_error(tmp_path, jobs):
    expected = "cannot read the list" if "x" in jobs else "--jobs takes numbers from 1 to 64"
    one_line_error(invoke("bench", "--method", "maml", "--task", "sinusoid-5s", "--jobs", jobs, "--out", tmp_path), 2, expected)


def test_captured_steps_are_refused_where_they_cannot_be_captured(tmp_path):
    one_line_error(invoke("run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "train.compile=graphs",
                          "--out", tmp_path), 2, "second-order MAML differentiates twice")
    one_line_error(invoke("run", "--method", "csn", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "train.compile=graphs",
                          "--set", "method.conditioning=grad", "--out", tmp_path), 2, "grad conditioning")


def test_auto_capture_stays_eager_on_the_cpu_and_says_so(tmp_path):
    result = invoke("run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "train.compile=auto",
                    "--set", "method.inner_lr=0.01", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").iterdir()
    compiled = json.loads((run / "summary.json").read_text())["compile"]
    assert compiled == {"setting": "auto", "used": "none",
                        "reason": "auto: eager (second-order MAML differentiates twice, which torch.compile cannot capture "
                                  "(method.first_order=true can))"}


@pytest.fixture(scope="module")
def compiler():
    """torch.compile on the CPU builds C++: it needs a compiler (and takes tens of seconds)."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler for torch.compile on the CPU")


def test_a_captured_training_step_equals_the_eager_one(compiler):
    import torch
    from helpers import resolve

    from bench.engine import capture
    from bench.engine.setup import make_method
    from bench.interface.method import Batch

    config = resolve("protonet", "omniglot-5w1s", "smoke")
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.rand(2, 5, 1, 28, 28, generator=g), torch.arange(5).repeat(2, 1),
                  torch.rand(2, 10, 1, 28, 28, generator=g), torch.arange(5).repeat_interleave(2).repeat(2, 1), 5)
    results = []
    for steps_of in (capture.eager, capture.captured):
        method = make_method(config, torch.device("cpu")).train()
        steps = steps_of(method)
        outputs, loss = steps.forward_loss(batch)
        loss.backward()
        with torch.no_grad():
            evaluated = steps.evaluate(batch) if steps.mode == "none" else steps.evaluate(batch).clone()
        results.append((outputs.detach(), loss.detach(), [p.grad.clone() for p in method.parameters()], evaluated))
    (o1, l1, g1, e1), (o2, l2, g2, e2) = results
    assert torch.allclose(o1, o2, rtol=1e-4, atol=1e-4) and torch.allclose(l1, l2, rtol=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(g1, g2))
    assert torch.allclose(e1, e2, rtol=1e-4, atol=1e-4)


# Ports Ray's other components take by default: the head's port must not be one of them (a
# random free port once was 52365, the dashboard agent's, and `ray start` refused).
RAY_PORTS = {6379, 8265, 10001, 52365, 52366, *range(10002, 20000)}


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_PORTS:
            return port


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real local Ray cluster (head on 127.0.0.1), stopped afterwards with nothing left running."""
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip("Ray is not installed")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run([str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                            "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True, env=env, timeout=120)
        left = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout.split()
        assert not left, f"Ray processes left behind: {left}"


RAY_GRID = [*GRID, "--seeds", "0,1,2,3", "--set", "method.inner_lr=0.01", "--set", "train.iterations=600",
            "--set", "train.checkpoint_every=10", "--set", "train.val_every=100"]


def kill_the_worker_of_a_checkpointed_run(out: Path) -> int | None:
    """SIGKILLs the Ray worker whose run has written a checkpoint and is running (its child, the
    sweep's worker process, dies with it); returns the Ray worker's pid, or None where there is none yet."""
    from bench.results.runfolder import RunFolder

    for state in out.glob("runs/*/state.pt"):
        folder = RunFolder(state.parent)
        if folder.is_complete() or not folder.in_use():
            continue
        seed = json.loads((folder.path / "config.json").read_text())["seed"]
        for proc in Path("/proc").iterdir():  # not ps: its lines are cut to $COLUMNS, which pytest sets
            try:
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # not a process, or one that has just ended
            if "bench.engine.sweep.worker" in args and f"-s{seed}.job.json" in args:
                os.kill(ppid, signal.SIGKILL)
                return ppid
    return None


def test_a_ray_sweep_gives_the_sequential_results_and_a_killed_worker_resumes(ray_cluster, tmp_path):
    sequential = invoke(*RAY_GRID, "--out", tmp_path / "sequential")
    assert sequential.exit_code == 0, sequential.output
    out = tmp_path / "ray"
    proc = subprocess.Popen([sys.executable, "cli.py", *RAY_GRID, "--executor", "ray", "--address", ray_cluster,
                             "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 600
    while killed is None and time.time() < deadline and proc.poll() is None:
        killed = kill_the_worker_of_a_checkpointed_run(out)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stdout + stderr
    assert killed is not None, "no run was caught mid-way"
    assert stdout.count("ran ") + stdout.count("resumed ") == 4
    assert episodes_by_config(out) == episodes_by_config(tmp_path / "sequential")
    summaries = [json.loads(p.read_text()) for p in out.glob("runs/*/summary.json")]
    assert len(summaries) == 4 and len(list(out.glob("runs/*"))) == 4  # the killed run resumed in its own folder
    assert any(s["resumed"] for s in summaries)
    # Ray would run its workers niced (15): the runs have the priority of the cluster's processes.
    assert {json.loads(p.read_text())["niceness"] for p in out.glob("runs/*/environment.json")} == {os.nice(0)}
