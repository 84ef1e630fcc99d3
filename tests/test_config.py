from dataclasses import dataclass, field
from typing import Literal

import pytest
from helpers import resolve

from bench.config import build, merge, parse_assignments
from bench.errors import UserError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    steps: int = 1
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_build_checks_keys_and_types():
    assert build(Outer, {"steps": 3, "inner": {"lr": 1}}) == Outer(3, False, Inner(1.0, "a"))
    assert build(Outer, {"inner": {"lr": "1e-3"}}).inner.lr == 0.001  # YAML reads 1e-3 as a string
    with pytest.raises(UserError, match="'inner.lr' must be a number"):
        build(Outer, {"inner": {"lr": "fast"}})
    with pytest.raises(UserError, match=r"unknown config key 'inner.lrr' \(did you mean 'inner.lr'\?\)"):
        build(Outer, {"inner": {"lrr": 1}})
    with pytest.raises(UserError, match="'steps' must be an integer"):
        build(Outer, {"steps": 1.5})
    with pytest.raises(UserError, match="'steps' must be an integer"):
        build(Outer, {"steps": True})
    with pytest.raises(UserError, match="'flag' must be true or false"):
        build(Outer, {"flag": 0})
    with pytest.raises(UserError, match="must be one of a, b"):
        build(Outer, {"inner": {"mode": "c"}})


def test_parse_assignments_and_merge():
    assert parse_assignments(["train.lr=0.01", "method.shift=pre", "seed=0", "x.flag=false"]) == {
        "train": {"lr": 0.01}, "method": {"shift": "pre"}, "seed": 0, "x": {"flag": False},
    }
    with pytest.raises(UserError):
        parse_assignments(["novalue"])
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_precedence_command_line_over_file_over_profile(tmp_path):
    profile_only = resolve("protonet", "omniglot-5w1s", "quick")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train: {iterations: 7, ways: 10}\n")
    from_file = resolve("protonet", "omniglot-5w1s", "quick", str(cfg_file))
    both = resolve("protonet", "omniglot-5w1s", "quick", str(cfg_file), {"train": {"iterations": 9}})
    assert profile_only.settings.train.ways == 30
    assert (from_file.settings.train.iterations, from_file.settings.train.ways) == (7, 10)
    assert (both.settings.train.iterations, both.settings.train.ways) == (9, 10)
    # 0 is a real value, not "not given"
    zero = resolve("protonet", "omniglot-5w1s", "quick", None, {"seed": 0, "train": {"lr_decay_every": 0}})
    assert zero.settings.train.lr_decay_every == 0


def test_resolve_errors():
    with pytest.raises(UserError, match="unknown method 'protonett'.*did you mean 'protonet'"):
        resolve("protonett", "omniglot-5w1s")
    with pytest.raises(UserError, match="unknown task"):
        resolve("protonet", "omniglot-5w2s")
    with pytest.raises(UserError, match="unknown profile"):
        resolve("protonet", "omniglot-5w1s", "fast")
    with pytest.raises(UserError, match="does not support regression"):
        resolve("protonet", "sinusoid-5s")
    with pytest.raises(UserError, match="train.iterations' must be from 1 to"):
        resolve("protonet", "omniglot-5w1s", "quick", None, {"train": {"iterations": 0}})
    with pytest.raises(UserError, match="unknown config key 'method.bakbone'"):
        resolve("protonet", "omniglot-5w1s", "quick", None, {"method": {"bakbone": "x"}})


def test_parse_grid_gives_every_combination_in_order():
    from bench.config import parse_grid

    assert parse_grid(["method.inner_lr=0.01,0.1", "method.value_hidden=[[10, 10], [40]]"]) == [
        {"method": {"inner_lr": 0.01, "value_hidden": [10, 10]}}, {"method": {"inner_lr": 0.01, "value_hidden": [40]}},
        {"method": {"inner_lr": 0.1, "value_hidden": [10, 10]}}, {"method": {"inner_lr": 0.1, "value_hidden": [40]}},
    ]
    assert parse_grid([]) == [{}]
    for bad, message in (("method.inner_lr", "expects key=value"), ("x=[1,", "cannot read the list"), ("a=", "at least one"),
                         ("a=,", "has an empty item"), ("a=1,,2", "has an empty item")):
        with pytest.raises(UserError, match=message):
            parse_grid([bad])
    with pytest.raises(UserError, match="sets 'a' twice"):
        parse_grid(["a=1", "a=2"])
