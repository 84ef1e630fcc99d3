"""Property-based tests of bad input: random values for every config key, random corruptions of
every file the harness reads, random signals at random moments of a run.

Whatever the input, the outcome is a result or a one-line error with exit code 2, 3 or 4,
never a traceback, and results that existed before stay byte-identical. The example counts are
fixed (and the examples derandomised) to keep CI fast and repeatable; for a longer soak:

    CSN_BENCH_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from helpers import fake_run, invoke, one_line_error, resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.config import describe
from bench.engine.runconfig import RunSettings
from bench.errors import DataError, UserError
from bench.report.build import build_report
from bench.report.collect import collect
from bench.results.runfolder import RunFolder
from methods import METHODS

REPO = Path(__file__).resolve().parent.parent
SCALE = int(os.environ.get("CSN_BENCH_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int):
    return settings(max_examples=SCALE or examples, derandomize=not SCALE, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- config values ----------------------------------------------------------------------------

KEYS = sorted({(name, r.key) for name in METHODS for r in describe(RunSettings) + describe(METHODS.get(name).Config, "method")})
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["nan", "inf", "-1", "0", "1e400", "1e-3", "true", "[1, 2]", "{a: 1}", "auto", "cuda"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=8)


def nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


@fuzz(300)
@given(key=st.sampled_from(KEYS), value=values)
def test_any_value_of_any_config_key_resolves_or_is_a_user_error(key, value):
    method, dotted = key
    task = "sinusoid-5s" if "regression" in METHODS.get(method).kinds else "omniglot-5w1s"
    try:
        config = resolve(method, task, "smoke", None, nested(dotted, value))
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600
        return
    config.method_class  # a config that resolved is complete


@fuzz(40)
@given(key=st.sampled_from(KEYS), text=st.text(max_size=30))
def test_any_set_text_on_the_command_line_is_run_or_refused_in_one_line(key, text, tmp_path_factory):
    method, dotted = key
    task = "sinusoid-5s" if "regression" in METHODS.get(method).kinds else "omniglot-5w1s"
    assignment = f"{dotted}={text}"
    from bench.config import parse_assignments

    try:
        resolve(method, task, "smoke", None, parse_assignments([assignment]))
    except UserError:
        out = tmp_path_factory.mktemp("out")
        existing = fake_run(out, "maml", 0, [0.5], task="sinusoid-5s")
        before = snapshot(out)
        result = invoke("run", "--method", method, "--task", task, "--profile", "smoke", "--set", assignment, "--out", out)
        one_line_error(result, 2, "")
        assert snapshot(out) == before and existing.is_complete()


# -- files ------------------------------------------------------------------------------------


def mutations(original: bytes):
    """Truncations, bit flips, other JSON or YAML shapes, random bytes and a huge file."""
    return st.one_of(
        st.integers(0, max(len(original) - 1, 0)).map(lambda n: original[:n]),
        st.lists(st.tuples(st.integers(0, max(len(original) - 1, 0)), st.integers(0, 7)), min_size=1, max_size=8).map(
            lambda flips: _flip(original, flips)),
        st.sampled_from([b"", b"[]", b"{}", b"null", b"1", b'"x"', b"\xff\xfe\x00", b"{a: [", b"- 1\n- 2\n",
                         b"method: 3\n", b"train: {lr: nan}\n"]),
        st.binary(max_size=200),
        st.just(b"x" * (2**20 + 10)),
    )


def _flip(data: bytes, flips) -> bytes:
    out = bytearray(data)
    for position, bit in flips:
        if out:
            out[position % len(out)] ^= 1 << bit
    return bytes(out)


CONFIG = b"train: {iterations: 3, lr: 0.001, ways: 5}\neval: {episodes: 4}\nmethod: {backbone: conv4-64-max}\n"


@fuzz(150)
@given(data=mutations(CONFIG))
def test_a_damaged_config_file_is_used_or_refused_in_one_line(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "c.yaml"
    path.write_bytes(data)
    try:
        resolve("protonet", "omniglot-5w1s", "smoke", str(path))
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600


def test_a_config_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path):
    one_line_error(invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--config", "/dev/zero", "--out", tmp_path),
                   2, "is not a regular file")


@fuzz(60)
@given(data=mutations(b"Latin/character01/rot000\nLatin/character01/rot090\n"))
def test_a_damaged_split_file_is_a_data_error(data, tmp_path_factory):
    from bench.data.omniglot import load_split

    root = tmp_path_factory.mktemp("root")
    (root / "omniglot" / "splits" / "vinyals").mkdir(parents=True)
    (root / "omniglot" / "splits" / "vinyals" / "val.txt").write_bytes(data)
    with pytest.raises(DataError):
        load_split(root, "val", download=False)  # the checksum never matches a damaged file


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@fuzz(100)
@given(data=mutations(_png()))
def test_a_damaged_image_decodes_or_is_a_data_error(data):
    from bench.data.omniglot import _decode

    try:
        image = _decode("images_background/A/character01/0101_01.png", data, 28)
    except DataError as exc:
        assert "BytesIO" not in str(exc) and "\n" not in str(exc)
        return
    assert image.shape == (28, 28)


def _zip(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


ZIP = _zip({f"images_background/A/character01/0101_{i:02d}.png": _png() for i in range(1, 4)})


@fuzz(100)
@given(data=mutations(ZIP))
def test_a_damaged_zip_is_read_or_is_a_data_error(data, tmp_path_factory):
    from bench.data.omniglot import _Source

    root = tmp_path_factory.mktemp("zips")
    (root / "omniglot").mkdir()
    (root / "omniglot" / "images_background.zip").write_bytes(data)
    (root / "omniglot" / "images_evaluation.zip").write_bytes(ZIP)
    try:
        files = _Source(root).files()
    except DataError:
        return
    assert all(isinstance(name, str) and isinstance(blob, bytes) for name, blob in files)


def _pickle() -> bytes:
    import numpy as np

    return pickle.dumps({"image_data": np.zeros((4, 84, 84, 3), dtype=np.uint8), "class_dict": {"n1": [0, 1], "n2": [2, 3]}})


@fuzz(100)
@given(data=mutations(_pickle()))
def test_a_damaged_pickle_loads_or_is_a_data_error(data, tmp_path_factory):
    from bench.data.miniimagenet import load_pickle

    path = tmp_path_factory.mktemp("pickle") / "mini-imagenet-cache-test.pkl"
    path.write_bytes(data)
    try:
        load_pickle(path)
    except DataError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A complete run folder with real checkpoints, whose files the next tests damage (copies)."""
    results = tmp_path_factory.mktemp("finished")
    folder = fake_run(results, "protonet", 0, [1.0, 0.5, 0.75], checkpoint=True)
    folder.save_state({"trainer": {"iteration": 2}, "best_value": 0.7, "best_iteration": 2, "train_seconds": 1.0}, "protonet")
    return folder


RUN_FILES = ["config.json", "summary.json", "test_episodes.jsonl", "val.jsonl", "train.jsonl", "status.json"]


def _close_unsaved(fig, path):
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


@fuzz(40)
@given(name=st.sampled_from(RUN_FILES), data=st.data())
def test_a_damaged_run_file_never_stops_the_report_or_the_sweep_scan(name, data, finished_run, tmp_path_factory):
    from bench.engine.sweep import scan_runs

    results = tmp_path_factory.mktemp("results")
    good = fake_run(results, "maml", 0, [0.5, 0.25, 0.75])
    damaged = results / "runs" / finished_run.name
    damaged.mkdir()
    for p in finished_run.path.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    original = (damaged / name).read_bytes()
    (damaged / name).write_bytes(data.draw(mutations(original)))
    c = collect(results)
    assert good.name in set(c.runs["run"])
    assert (damaged.name in set(c.runs["run"])) != (damaged.name in set(c.incomplete["run"]))
    scan_runs(results)
    # Every table and every plotting call runs on the damaged run's numbers; only the PNG encoding
    # is skipped (three quarters of a report's time; test_report renders every figure).
    with mock.patch("bench.report.plots.write_figure", _close_unsaved):
        build_report(results, results / "report")


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(), st.text(max_size=4),
                        st.sampled_from([[0], [], {}, {"a": 1}, [[3]], -1, 1.5, 10**30]))


def field_mutation(original: bytes, jsonl: bool, data) -> bytes:
    """``original`` (a JSON object, or with ``jsonl`` rows of objects) with one field, top-level or
    one level down, given a value of another type or out of its range."""
    rows = [json.loads(line) for line in original.decode().splitlines() if line.strip()] if jsonl else [json.loads(original)]
    target = data.draw(st.sampled_from(rows))
    nested = [k for k, v in target.items() if isinstance(v, dict) and v]
    if nested and data.draw(st.booleans()):
        target = target[data.draw(st.sampled_from(nested))]
    target[data.draw(st.sampled_from(sorted(target)))] = data.draw(JSON_VALUES)
    return ("".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows[0])).encode()


@fuzz(25)
@given(name=st.sampled_from(["config.json", "summary.json", "test_episodes.jsonl", "val.jsonl", "status.json"]), data=st.data())
def test_a_run_file_field_of_another_type_or_range_never_stops_the_report_or_the_sweep_scan(name, data, finished_run,
                                                                                            tmp_path_factory):
    from bench.engine.sweep import scan_runs

    results = tmp_path_factory.mktemp("results")
    good = fake_run(results, "maml", 0, [0.5, 0.25, 0.75])
    damaged = results / "runs" / finished_run.name
    damaged.mkdir()
    for p in finished_run.path.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    (damaged / name).write_bytes(field_mutation((damaged / name).read_bytes(), name.endswith(".jsonl"), data))
    c = collect(results)
    assert good.name in set(c.runs["run"])
    assert (damaged.name in set(c.runs["run"])) != (damaged.name in set(c.incomplete["run"]))
    scan_runs(results)
    with mock.patch("bench.report.plots.write_figure", _close_unsaved):
        build_report(results, results / "report")


def test_a_test_episode_listed_twice_makes_its_run_unreadable_not_the_report(finished_run, tmp_path):
    damaged = tmp_path / "runs" / finished_run.name
    damaged.mkdir(parents=True)
    for p in finished_run.path.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    lines = (damaged / "test_episodes.jsonl").read_text().splitlines()
    (damaged / "test_episodes.jsonl").write_text("\n".join(lines + lines[:1]) + "\n")
    c = collect(tmp_path)
    assert list(c.incomplete["missing"]) == [f"test_episodes.jsonl line {len(lines) + 1} repeats episode 0"]


@fuzz(50)
@given(name=st.sampled_from(["best.pt", "state.pt"]), data=st.data())
def test_a_damaged_checkpoint_loads_or_is_a_user_error(name, data, finished_run, tmp_path_factory):
    folder = RunFolder(tmp_path_factory.mktemp("ckpt"))
    original = (finished_run.path / name).read_bytes()
    (folder.path / name).write_bytes(data.draw(mutations(original)))
    try:
        folder.load_best("protonet") if name == "best.pt" else folder.load_state("protonet")
    except UserError as exc:
        assert "\n" not in str(exc)


# -- signals ----------------------------------------------------------------------------------

SHORT_RUN = ["run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--seed", "5",
             "--set", "method.inner_lr=0.01", "--set", "train.iterations=400", "--set", "train.val_every=100",
             "--set", "train.checkpoint_every=20", "--set", "eval.episodes=100"]


def episodes_of_one_run(args: list, out: Path) -> str:
    """The test episodes of the one run ``args`` makes in ``out``, the yardstick of a resumed run."""
    result = invoke(*args, "--out", out)
    assert result.exit_code == 0, result.output
    (run_dir,) = (out / "runs").iterdir()
    return (run_dir / "test_episodes.jsonl").read_text()


@pytest.fixture(scope="module")
def uninterrupted_short_run(tmp_path_factory):
    return episodes_of_one_run(SHORT_RUN, tmp_path_factory.mktemp("uninterrupted_short_run"))


@fuzz(4)
@given(sig=st.sampled_from([signal.SIGINT, signal.SIGTERM]), delay=st.floats(0.0, 1.0))
def test_a_signal_at_a_random_moment_ends_in_a_result_or_a_resumable_exit_4(sig, delay, uninterrupted_short_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("signalled")
    proc = subprocess.Popen([sys.executable, "cli.py", *SHORT_RUN, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "runs").exists() and proc.poll() is None:  # from the moment the run exists
        time.sleep(0.01)
    time.sleep(delay * 4)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode in (0, 4), stderr
    (run_dir,) = (out / "runs").iterdir()
    if proc.returncode == 4:
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "--resume" in errors[0], stderr
        assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
        result = invoke("run", "--resume", run_dir)
        assert result.exit_code == 0, result.output
    assert (run_dir / "test_episodes.jsonl").read_text() == uninterrupted_short_run


# -- files that are not files -------------------------------------------------------------------

def _not_a_file(path: Path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


def _within(seconds: int):
    """Fails the test instead of letting an endless read hang the suite."""
    def ring(*_):
        raise AssertionError(f"still reading after {seconds} s")
    signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_run_file_that_is_a_fifo_device_or_folder_is_listed_not_read(name, kind, finished_run, tmp_path):
    from bench.engine.sweep import scan_runs

    results = tmp_path / "results"
    damaged = results / "runs" / finished_run.name
    damaged.mkdir(parents=True)
    for p in finished_run.path.iterdir():
        (damaged / p.name).write_bytes(p.read_bytes())
    _not_a_file(damaged / name, kind)
    _within(60)
    try:
        c = collect(results)
        scan_runs(results)
    finally:
        signal.alarm(0)
    counted = not c.runs.empty and damaged.name in set(c.runs["run"])
    assert counted == (name in ("train.jsonl", "status.json")) and counted != (damaged.name in set(c.incomplete["run"]))


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_corpus_or_split_file_that_is_a_fifo_or_device_is_a_data_error(kind, tmp_path):
    from test_ptb import write_corpus

    from bench.data.ptb import TEST_WORDS, ptb_sources

    for name in ("ptb.train.txt", str(TEST_WORDS)):
        root = write_corpus(tmp_path / f"{kind}-{Path(name).name}")
        _not_a_file(root / "ptb" / name, kind)
        _within(60)
        try:
            with pytest.raises(DataError, match="not a regular file|not found"):
                ptb_sources(root, 8501, 41)
        finally:
            signal.alarm(0)


# -- the operating system refuses a write -----------------------------------------------------

FAULT_RUN = ["run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--seed", "2",
             "--set", "method.inner_lr=0.01", "--set", "train.iterations=30", "--set", "train.val_every=10",
             "--set", "train.checkpoint_every=5", "--set", "eval.episodes=20"]
ERRNOS = [errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.ENAMETOOLONG, errno.EDQUOT]


class RefusedWrites:
    """``os.fsync``, which every write of the harness ends with, refusing from its ``after``-th call on."""

    def __init__(self, after: int, err: int):
        self.after, self.err, self.real, self.fired = after, err, os.fsync, False

    def __call__(self, fd: int) -> None:
        if self.after == 0:
            self.fired = True
            raise OSError(self.err, os.strerror(self.err))
        self.after -= 1
        self.real(fd)


def refused_in_one_line(result, err: int) -> None:
    """Exit 3 and one ``error:`` line naming the refusal, among the lines a run prints as it goes."""
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert len(errors) == 1 and errors[0].startswith("error: ") and os.strerror(err) in errors[0], result.output


@pytest.fixture(scope="module")
def unrefused_run(tmp_path_factory):
    return episodes_of_one_run(FAULT_RUN, tmp_path_factory.mktemp("unrefused_run"))


@fuzz(10)
@given(err=st.sampled_from(ERRNOS), after=st.integers(0, 60))
def test_a_write_the_system_refuses_ends_the_run_in_one_line_exit_3_and_it_resumes(err, after, unrefused_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("refused")
    refuse = RefusedWrites(after, err)
    with mock.patch("os.fsync", refuse):
        result = invoke(*FAULT_RUN, "--out", out)
    if not refuse.fired:  # the run needed fewer writes than that
        assert result.exit_code == 0, result.output
        return
    refused_in_one_line(result, err)
    runs = list((out / "runs").iterdir()) if (out / "runs").exists() else []
    if not runs:
        assert "nothing was run" in result.output
        return
    (run_dir,) = runs
    assert RunFolder(run_dir).is_complete() == ("--resume" not in result.output)
    if "--resume" in result.output:
        resumed = invoke("run", "--resume", run_dir)
        assert resumed.exit_code == 0, resumed.output
    assert (run_dir / "test_episodes.jsonl").read_text() == unrefused_run


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_report_eval_and_sweep_end_in_one_line_exit_3_when_a_write_is_refused(err, tmp_path):
    results = tmp_path / "results"
    copy = fake_run(results, "maml", 0, [0.5, 0.25, 0.75], task="sinusoid-5s", checkpoint=True).path
    before = snapshot(results)
    for command in (["report", "--results", results, "--out", tmp_path / "report"], ["eval", copy, "--episodes", 3],
                    ["sweep", "--methods", "maml", "--tasks", "sinusoid-5s", "--profile", "smoke", "--out", tmp_path / "swept"]):
        with mock.patch("os.fsync", RefusedWrites(0, err)):
            result = invoke(*command)
        refused_in_one_line(result, err)
    assert snapshot(results) == before


def test_a_results_folder_whose_name_is_too_long_is_one_line_exit_3(tmp_path):
    one_line_error(invoke(*FAULT_RUN, "--out", tmp_path / ("x" * 300)), 3, "File name too long")


def test_an_index_that_cannot_be_appended_to_is_refused_before_the_run_starts(tmp_path):
    (tmp_path / "index.jsonl").write_text("")
    refused = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "index.jsonl"))
    with mock.patch("bench.results.runfolder.open", side_effect=refused, create=True):
        result = invoke(*FAULT_RUN, "--out", tmp_path)
    one_line_error(result, 3, "cannot append to")
    assert not (tmp_path / "runs").exists()
