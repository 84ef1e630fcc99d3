"""Methods from outside the repository (entry points, --methods-path) and ``check-method``: the
built-in methods and the example pass it; a toy method broken in one way fails exactly that rule."""

import dataclasses
import json
import random
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.engine.conformance import check_method
from bench.interface.method import Batch, Method
from methods import METHODS, PATH_VARIABLE
from helpers import invoke, one_line_error, the_run

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "methods"
RULES = ["config", "kind image", "kind text", "kind regression", "learns", "deterministic", "query independence",
         "checkpoint", "support order", "quiet"]


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    width: int = 16
    """Embedding size."""


class Toy(Method):
    """A nearest-class-mean classifier on a linear embedding (images) or mean word vectors (text),
    and a linear regressor: small enough to check in a second, correct by every rule."""

    kinds = frozenset({"classification", "regression"})
    Config = ToyConfig
    profiles = EXAMPLE / "relationnet" / "profiles.yaml"  # any valid profile file

    def __init__(self, config, task, ways):
        super().__init__(config, task, ways)
        if task.is_text:
            self.embed = nn.Sequential(nn.Embedding(task.vocabulary, config.width), Mean(1))
        else:
            self.embed = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(task.input_shape).prod()), config.width))
        self.head = nn.Linear(2, 1)

    def features(self, x):
        return self.embed(x.flatten(0, 1)).view(*x.shape[:2], -1)

    def forward(self, batch: Batch):
        if batch.ways == 0:
            sx, qx = batch.support_x, batch.query_x
            return self.head(torch.cat([qx, sx.mean(1, keepdim=True).expand_as(qx)], -1))
        zs, zq = self.features(batch.support_x), self.features(batch.query_x)
        onehot = nn.functional.one_hot(batch.support_y, batch.ways).to(zs.dtype)
        centres = onehot.transpose(1, 2) @ zs / onehot.sum(1).unsqueeze(-1)
        return -torch.cdist(zq, centres)


class Mean(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.mean(self.dim)


@dataclasses.dataclass
class MutableConfig:  # not frozen: a run's settings could change under it
    width: int = 16


class BadConfig(Toy):
    Config = MutableConfig


class BadKind(Toy):
    def forward(self, batch):
        out = super().forward(batch)
        return out[:, :1] if batch.ways == 0 else out


class LearnsNothing(Toy):
    def forward(self, batch):
        return super().forward(batch).detach() + 0 * self.head.bias


class Random(Toy):
    def __init__(self, config, task, ways):
        super().__init__(config, task, ways)
        with torch.no_grad():  # Python's generator: the run seed does not reach it
            for p in self.parameters():
                p.add_(random.random() * 0.01)


class PeeksAtQueries(Toy):
    def forward(self, batch):
        out = super().forward(batch)
        return out - out.mean(1, keepdim=True)


class StateOutsideTheCheckpoint(Toy):
    def __init__(self, config, task, ways):
        super().__init__(config, task, ways)
        self.offset = torch.randn(1)  # neither parameter nor buffer: not saved

    def forward(self, batch):
        return super().forward(batch) * (1 + self.offset.abs())


class FirstSupportOnly(Toy):
    def forward(self, batch):
        weights = torch.linspace(1, 2, batch.support_x.shape[1]).view(1, -1, *[1] * (batch.support_x.dim() - 2))
        x = batch.support_x * weights if batch.support_x.is_floating_point() else batch.support_x
        return super().forward(dataclasses.replace(batch, support_x=x))


class Chatty(Toy):
    def forward(self, batch):
        print("hello")
        Path("notes.txt").write_text("written by a method")
        return super().forward(batch)


BROKEN = {BadConfig: "config", BadKind: "kind regression", LearnsNothing: "learns", Random: "deterministic",
          PeeksAtQueries: "query independence", StateOutsideTheCheckpoint: "checkpoint",
          FirstSupportOnly: "support order", Chatty: "quiet"}


def verdicts(cls) -> dict[str, bool]:
    cls.name = cls.__name__.lower()
    return {check.rule: check.ok for check in check_method(cls)}


def test_the_toy_method_passes_every_rule():
    assert verdicts(Toy) == dict.fromkeys(RULES, True)


@pytest.mark.parametrize("cls", list(BROKEN), ids=lambda c: c.__name__)
def test_a_method_broken_in_one_way_fails_exactly_that_rule(cls):
    found = verdicts(cls)
    assert list(found) == RULES
    assert [rule for rule, ok in found.items() if not ok] == [BROKEN[cls]]


class DivergesOnTextBeforeTraining(Toy):
    """On sentences, evaluation predictions that are not finite while ``scale`` is at its initial
    0 (training moves it), as MAML's test-time adaptation at its Omniglot settings was on PTB."""

    def __init__(self, config, task, ways):
        super().__init__(config, task, ways)
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        out = super().forward(batch) * (1 + self.scale)
        return out + 0 * torch.log(self.scale.abs()) if self.task.is_text and not self.training else out


def test_non_finite_evaluation_of_an_untrained_method_is_noted_not_failed():
    checks = {check.rule: check for check in check_method(DivergesOnTextBeforeTraining)}
    assert all(check.ok for check in checks.values()), checks
    assert checks["kind text"].detail.endswith("; the untrained model's evaluation predictions are not finite")
    assert "not finite" not in checks["kind image"].detail


@pytest.mark.parametrize("name", METHODS.names())
def test_every_built_in_method_passes_check_method(name):
    result = invoke("check-method", name)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len([r for r in RULES if r != "kind regression" or "regression" in METHODS.get(name).kinds])
    assert all(line.startswith("pass  ") for line in lines), result.output


def test_check_method_exits_1_naming_the_broken_rules(tmp_path, monkeypatch):
    package = tmp_path / "chatty"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from test_plugins import Chatty as ChattyMethod
    """))
    monkeypatch.setenv(PATH_VARIABLE, "")  # restored (unset) after the test: the CLI sets it
    result = invoke("--methods-path", tmp_path, "check-method", "chatty")
    assert result.exit_code == 1, result.output
    assert "FAIL  quiet" in result.output and "printed 'hello'" in result.output and "notes.txt" in result.output
    assert result.output.splitlines()[-1] == "error: chatty fails 1 rule"


def test_a_name_taken_by_a_built_in_method_is_an_error_not_an_override(tmp_path, monkeypatch):
    (tmp_path / "protonet").mkdir()
    (tmp_path / "protonet" / "__init__.py").write_text("from test_plugins import Toy\n")
    monkeypatch.setenv(PATH_VARIABLE, "")
    one_line_error(invoke("--methods-path", tmp_path, "list"), 2,
                   f"two methods are called 'protonet': the built-in one and the one from folder {tmp_path.resolve()}")


def test_a_folder_that_would_shadow_another_module_is_refused(tmp_path, monkeypatch):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "__init__.py").write_text("from test_plugins import Toy\n")
    monkeypatch.setenv(PATH_VARIABLE, str(tmp_path))
    one_line_error(invoke("check-method", "json"), 2, "cannot load 'json' from")
    one_line_error(invoke("check-method", "jsno"), 2, "unknown method 'jsno' (did you mean 'json'?)")


def test_a_package_that_does_not_import_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "__init__.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.setenv(PATH_VARIABLE, str(tmp_path))
    one_line_error(invoke("check-method", "broken"), 2, "method 'broken' (folder")
    listed = invoke("list")
    assert listed.exit_code == 2 and "csn" in listed.stdout and "omniglot-5w1s" in listed.stdout  # the others are listed
    assert listed.stderr.startswith("error: 1 method cannot be loaded: broken (method 'broken' (folder")


def test_the_example_runs_from_methods_path_through_every_command(tmp_path, data_root, monkeypatch):
    """run, sweep (worker processes), eval, check-method and report, no file of the repository changed."""
    monkeypatch.setenv(PATH_VARIABLE, "")
    out = tmp_path / "results"
    common = ["--methods-path", EXAMPLE]
    result = invoke(*common, "run", "--method", "relationnet", "--task", "omniglot-5w1s", "--profile", "smoke",
                    "--out", out, "--data-root", data_root)
    assert result.exit_code == 0, result.output
    code = json.loads((the_run(out) / "environment.json").read_text())["method_code"]
    assert code["source"] == "path" and code["path"] == str(EXAMPLE / "relationnet") and len(code["sha256"]) == 64
    assert invoke(*common, "eval", the_run(out), "--episodes", 4, "--data-root", data_root).exit_code == 0
    swept = subprocess.run([sys.executable, "cli.py", *map(str, common), "sweep", "--methods", "relationnet,protonet",
                            "--tasks", "omniglot-5w1s", "--seeds", "1", "--profile", "smoke", "--jobs", "2",
                            "--out", str(out), "--data-root", str(data_root)], cwd=REPO, capture_output=True, text=True)
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.count("ran") == 2
    assert invoke(*common, "check-method", "relationnet").exit_code == 0
    assert invoke("report", "--results", out).exit_code == 0
    table = (out / "report" / "report.md").read_text()
    assert "relationnet" in table and "protonet" in table


def project_copy(folder: Path) -> Path:
    """The files ``pip install`` packages (pip builds in the source folder: not in this checkout)."""
    folder.mkdir()
    for name in ("pyproject.toml", "cli.py"):
        (folder / name).write_bytes((REPO / name).read_bytes())
    for name in ("bench", "methods"):
        subprocess.run(["cp", "-r", str(REPO / name), str(folder / name)], check=True)
    return folder


def make_venv(venv: Path) -> Path:
    """A new virtual environment whose dependencies are this one's, through a ``.pth`` file (no network)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.fixture
def fresh_venv(tmp_path) -> Path:
    """A new virtual environment with ``pip install .`` of a copy of the project."""
    venv = make_venv(tmp_path / "venv")
    pip_install(venv, project_copy(tmp_path / "source"))
    return venv


def pip_install(venv: Path, *args) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                           "--no-deps", "--no-build-isolation", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pip_install_gives_the_csn_bench_command_and_entry_points_add_methods(fresh_venv, tmp_path, data_root):
    command = str(fresh_venv / "bin" / "csn-bench")
    helped = subprocess.run([command, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "check-method" in helped.stdout
    listed = subprocess.run([command, "list"], capture_output=True, text=True, cwd=tmp_path)
    assert "omniglot-5w1s" in listed.stdout and "relationnet" not in listed.stdout
    example = tmp_path / "example"  # a copy: pip builds in the source folder
    subprocess.run(["cp", "-r", str(EXAMPLE), str(example)], check=True)
    pip_install(fresh_venv, example)  # a distribution declaring a csn_bench.methods entry point
    listed = subprocess.run([command, "list"], capture_output=True, text=True, cwd=tmp_path)
    assert "relationnet" in listed.stdout, listed.stderr
    checked = subprocess.run([command, "check-method", "relationnet"], capture_output=True, text=True, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.count("pass  ") == 9, checked.stdout + checked.stderr
    clash = subprocess.run([command, "--methods-path", str(EXAMPLE), "list"], capture_output=True, text=True, cwd=tmp_path)
    assert clash.returncode == 2 and "two methods are called 'relationnet'" in clash.stderr
    out = tmp_path / "results"
    for args in (["run", "--method", "relationnet", "--task", "omniglot-5w1s", "--profile", "smoke", "--out", str(out)],
                 ["eval", str(out / "runs"), "--episodes", "4"], ["report", "--results", str(out)]):
        if args[0] == "eval":
            args[1] = str(the_run(out))
        done = subprocess.run([command, *args, *(["--data-root", str(data_root)] if args[0] != "report" else [])],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    code = json.loads((the_run(out) / "environment.json").read_text())["method_code"]
    assert (code["source"], code["distribution"], code["version"]) == ("distribution", "csn-bench-relationnet", "0.1.0")
    assert "relationnet" in (out / "report" / "report.md").read_text()


def test_pip_install_editable_gives_the_command_too(tmp_path):
    venv = make_venv(tmp_path / "venv")
    pip_install(venv, "-e", project_copy(tmp_path / "source"))
    helped = subprocess.run([str(venv / "bin" / "csn-bench"), "list"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "omniglot-5w1s" in helped.stdout, helped.stderr
