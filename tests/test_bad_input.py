"""One regression test per kind of bad input found so far: each ends in a one-line error with
its exit code (2 bad input, 3 bad data), before anything is trained, leaving results as they were."""

import json
import multiprocessing
import zipfile

import pytest
from helpers import fake_run, invoke, one_line_error, resolve

from bench.errors import DataError, UserError

RUN = ["run", "--method", "csn", "--task", "sinusoid-5s", "--profile", "smoke"]


@pytest.mark.parametrize("assignment,message", [
    ("train.lr=nan", "'train.lr' must be a finite number, got nan"),
    ("train.lr=.inf", "'train.lr' must be a finite number, got inf"),
    ("train.lr_decay=-0.5", "'train.lr_decay' must be positive"),
    ("train.grad_clip=nan", "'train.grad_clip' must be a finite number"),
    ("method.key_size=-4", "method.key_size must be from 0 to 65536, got -4"),
    ("method.value_hidden=[10, -3]", "method.value_hidden sizes must be from 1 to 65536"),
    ("eval.episodes=100000000", "'eval.episodes' must be from 0 to 100000"),
    ("train.val_episodes=100000000", "'train.val_episodes' must be from 0 to 100000"),
    ("train.iterations=100000000000000000000000", "'train.iterations' must be from 1 to 1e+09"),
    ("method=abc", "config section 'method' must be a mapping, got 'abc'"),
    ("tag=a/b", "config key 'tag' must be up to 64 letters"),
])
def test_numbers_and_shapes_out_of_range_are_refused_before_anything_is_written(assignment, message, tmp_path):
    one_line_error(invoke(*RUN, "--set", assignment, "--out", tmp_path), 2, message)
    assert not (tmp_path / "runs").exists()


def test_a_number_where_a_string_is_expected_is_read_as_text():
    assert resolve("csn", "sinusoid-5s", "smoke", None, {"method": {"csn_layers": 2}}).method_config.csn_layers == "2"


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 leaves when expanded
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("train:\n  lr:\n    " + "\n    ".join(f"- {line.split(': ', 1)[1]}" for line in lines) + "\n")
    result = invoke(*RUN, "--config", bomb, "--out", tmp_path)
    one_line_error(result, 2, "'train.lr' must be a number")
    assert len(result.output) < 400


@pytest.mark.parametrize("content,message", [
    (b"\xff\xfe\x00\x01binary", "is not UTF-8 text"),
    (b"train: [1, 2\n", "cannot read config file"),
    (b"x" * (2**20 + 1), "is larger than 1 MiB"),
])
def test_config_files_that_are_not_yaml_text(content, message, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    one_line_error(invoke(*RUN, "--config", path, "--out", tmp_path), 2, message)


def test_binary_split_file_and_empty_image_and_bad_image_name(tmp_path):
    from bench.data.omniglot import _decode, _drawer, load_split

    folder = tmp_path / "omniglot" / "splits" / "vinyals"
    folder.mkdir(parents=True)
    (folder / "extra.txt").write_bytes(b"\xff\xfe binary")
    with pytest.raises(DataError, match="is not text"):
        load_split(tmp_path, "extra", download=False)
    with pytest.raises(DataError, match=r"corrupt image a/b/c_01.png: the file is empty"):
        _decode("a/b/c_01.png", b"", 28)
    with pytest.raises(DataError) as exc:
        _decode("a/b/c_01.png", b"\x89PNG not really", 28)
    assert "BytesIO" not in str(exc.value)
    with pytest.raises(DataError, match="unexpected Omniglot file name images_background/A/character01/0101.png"):
        _drawer("images_background/A/character01/0101.png")


def test_corrupt_compressed_data_inside_a_zip_is_a_data_error(tmp_path):
    from bench.data.omniglot import _Source

    (tmp_path / "omniglot").mkdir()
    for name in ("images_background", "images_evaluation"):
        path = tmp_path / "omniglot" / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}/A/character01/0101_01.png", b"\x89PNG" + bytes(range(256)) * 40)
        data = bytearray(path.read_bytes())
        data[60:80] = b"\x00" * 20  # inside the deflated member
        path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="cannot read"):
        _Source(tmp_path).files()


def test_output_folders_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    results = tmp_path / "results"
    fake_run(results, "maml", 0, [0.5], task="sinusoid-5s")
    one_line_error(invoke("report", "--results", results, "--out", blocker / "report"), 2, "cannot create the report folder")
    one_line_error(invoke("data", "synth-miniimagenet", blocker / "mini"), 2, "cannot create")


def test_an_index_that_is_a_folder_is_refused_before_training(tmp_path):
    (tmp_path / "index.jsonl").mkdir()
    one_line_error(invoke(*RUN, "--out", tmp_path), 2, "index.jsonl: it is not a file")
    assert not (tmp_path / "runs").exists()


def test_empty_sweep_lists_name_the_option(tmp_path):
    one_line_error(invoke("sweep", "--methods", "csn", "--tasks", "sinusoid-5s", "--seeds", "", "--out", tmp_path),
                   2, "--seeds names nothing")


@pytest.mark.parametrize("args,message", [
    (["sweep", "--methods", "csn", "--tasks", "sinusoid-5s", "--seeds", "0,,1"], "the list '0,,1' has an empty item"),
    (["sweep", "--methods", "csn,", "--tasks", "sinusoid-5s"], "the list 'csn,' has an empty item"),
    (["sweep", "--methods", "csn", "--tasks", "sinusoid-5s", "--grid", "train.lr=0.1,"], "--grid 'train.lr': the list '0.1,' has an empty item"),
    (["sweep", "--methods", "csn", "--tasks", "sinusoid-5s", "--grid", "train.lr="], "--grid 'train.lr' needs at least one value"),
    (["bench", "--method", "maml", "--task", "sinusoid-5s", "--impl", "batched,,split"], "the list 'batched,,split' has an empty item"),
    (["floor", "--methods", ",", "--task", "sinusoid-5s"], "the list ',' has an empty item"),
    (["oracle", "--tasks", "ptb-5w1s,"], "the list 'ptb-5w1s,' has an empty item"),
])
def test_an_empty_item_in_a_comma_separated_option_is_a_one_line_error(tmp_path, args, message):
    one_line_error(invoke(*args, "--out", tmp_path), 2, message)


def test_eval_episodes_are_bounded_as_the_config_bounds_them(tmp_path):
    run_dir = fake_run(tmp_path, "protonet", 0, [1.0], checkpoint=True).path
    one_line_error(invoke("eval", run_dir, "--episodes", "10000000", "--data-root", tmp_path), 2,
                   "--episodes must be from 1 to 100000, got 10000000")


@pytest.mark.parametrize("content", ["{}", "[]", '"x"'])
def test_a_run_folder_with_a_config_of_the_wrong_shape_is_listed_not_fatal(content, tmp_path):
    from bench.engine.sweep import scan_runs
    from bench.report.collect import collect

    good = fake_run(tmp_path, "maml", 0, [0.5], task="sinusoid-5s")
    bad = fake_run(tmp_path, "maml", 1, [0.5], task="sinusoid-5s")
    (bad.path / "config.json").write_text(content)
    c = collect(tmp_path)
    assert list(c.runs["run"]) == [good.name] and list(c.incomplete["run"]) == [bad.name]
    done, _ = scan_runs(tmp_path)
    assert good.path in {f.path for f in done.values()}
    result = invoke("report", "--results", tmp_path, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output


def test_runs_that_differ_only_in_profile_or_tag_get_different_folder_names(tmp_path):
    from bench.results.runfolder import RunFolder

    names = set()
    for profile, tag in (("quick", ""), ("paper", ""), ("quick", "equal-time")):
        config = {"task": "sinusoid-5s", "method": "maml", "profile": profile, "tag": tag, "seed": 0}
        names.add(RunFolder.create(tmp_path, config).name.rsplit("__", 1)[0])
    assert names == {"sinusoid-5s__maml__quick__s0", "sinusoid-5s__maml__paper__s0", "sinusoid-5s__maml__quick__equal-time__s0"}


def _claim(results, barrier, queue):
    from bench.results.runfolder import RunFolder
    from bench.results.summary import read_summary

    barrier.wait()
    folder = RunFolder.create(results, {"task": "t", "method": "m", "profile": "p", "seed": 0})
    folder.write_config({"n": 1})
    record = {"method": "m", "task": "t", "profile": "p", "seed": 0, "run": folder.name, "metric": "accuracy",
              "accuracy": 0.5, "accuracy_ci95": 0.0, "episodes": 1, "best_iteration": 1, "best_val": 0.5, "iterations": 1,
              "train_seconds": 1.0, "seconds_per_iteration": 1.0, "episodes_per_second": 1.0, "test_ms_per_episode": 1.0,
              "wall_seconds": 1.0, "peak_memory_bytes": 1, "peak_memory_kind": "cpu_rss", "device": "cpu",
              "resumed": False, "finished": "now", "status": "complete"}
    folder.finish([{"episode": 0}], read_summary(record))
    queue.put(folder.name)


def test_folders_claimed_at_the_same_moment_are_distinct_and_each_indexed(tmp_path):
    """Many processes released by one barrier, in the same second, several times."""
    context = multiprocessing.get_context("fork")
    for trial in range(5):
        results = tmp_path / f"trial{trial}"
        barrier, queue = context.Barrier(6), context.Queue()
        procs = [context.Process(target=_claim, args=(results, barrier, queue)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        names = [queue.get(timeout=5) for _ in procs]
        assert len(set(names)) == 6
        index = [json.loads(line)["run"] for line in (results / "index.jsonl").read_text().splitlines()]
        assert sorted(index) == sorted(names)


def test_two_runs_started_together_get_two_folders_and_two_index_rows(concurrent_runs):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    args = [sys.executable, "cli.py", *RUN, "--set", "eval.episodes=2", "--out", str(concurrent_runs)]
    procs = [subprocess.Popen(args, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    assert len(list((concurrent_runs / "runs").iterdir())) == 2
    assert len((concurrent_runs / "index.jsonl").read_text().splitlines()) == 2


def test_user_errors_are_one_line_even_when_a_library_says_more(tmp_path, monkeypatch):
    import bench.engine.runconfig

    def boom(*args, **kwargs):
        raise UserError("first line\nsecond line")

    monkeypatch.setattr(bench.engine.runconfig, "resolve", boom)
    one_line_error(invoke(*RUN, "--out", tmp_path), 2, "first line second line")


def test_a_run_folder_in_use_by_another_process_is_neither_resumed_nor_rerun(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from bench.engine.sweep import scan_runs

    folder = fake_run(tmp_path, "maml", 0, [0.5], task="sinusoid-5s", complete=False)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from bench.results.runfolder import RunFolder; "
        "f = RunFolder(sys.argv[1]); assert f.lock(); print('locked', flush=True); time.sleep(60)"),
        str(folder.path), str(Path(__file__).resolve().parent.parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert folder.in_use()
        assert scan_runs(tmp_path) == ({}, {})
        one_line_error(invoke("run", "--resume", folder.path), 2, "is being run by another process")
    finally:
        holder.kill()
        holder.wait()
    assert not folder.in_use() and list(scan_runs(tmp_path)[1].values())[0].path == folder.path
