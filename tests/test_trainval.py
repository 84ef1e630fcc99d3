"""``train.classes=trainval``: training episodes over the training and validation classes
together (the ProtoNet and Matching Networks papers' 1,200 Omniglot characters), the final
weights tested because validation classes were trained on."""

import json

import torch
from helpers import invoke, one_line_error, resolve, the_run

from bench.data.classification import ClassificationSource, RandomRotationSource
from bench.engine.setup import set_up


def test_joined_splits_hold_both_sets_of_classes_in_order_and_keep_their_kind():
    a = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 7, dtype=torch.uint8)
    joined = RandomRotationSource(a, ["x", "y"], {"d": 1}).joined(RandomRotationSource(b, ["z"]))
    assert type(joined) is RandomRotationSource and joined.class_names == ["x", "y", "z"]
    assert torch.equal(joined.images, torch.cat([a, b])) and joined.identity == {"d": 1} and joined.num_classes == 3


def test_joining_splits_of_different_image_counts_is_an_error():
    import pytest

    from bench.errors import UserError

    a = ClassificationSource(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), ["x", "y"])
    with pytest.raises(UserError, match="different counts or shapes"):
        a.joined(ClassificationSource(torch.zeros(1, 5, 4, 4, dtype=torch.uint8), ["z"]))


def test_trainval_trains_on_the_vinyals_train_and_validation_classes(data_root):
    plain = set_up(resolve("protonet", "omniglot-5w1s", "smoke", None, {}), data_root)
    both = set_up(resolve("protonet", "omniglot-5w1s", "smoke", None, {"train": {"classes": "trainval"}}), data_root)
    train, val = plain.sources["train"].class_names, plain.sources["val"].class_names
    assert both.sources["train"].class_names == train + val and len(train) + len(val) == 4800  # 1,200 characters
    assert both.sources["val"].class_names == val and both.sources["test"].class_names == plain.sources["test"].class_names


def test_the_papers_profiles_train_on_trainval_on_omniglot_only():
    for method in ("protonet", "matchingnet"):
        assert resolve(method, "omniglot-20w5s", "paper", None, {}).settings.train.classes == "trainval"
        assert resolve(method, "omniglot-finn-5w1s", "paper", None, {}).settings.train.classes == "train"
        assert resolve(method, "miniimagenet-5w1s", "paper", None, {}).settings.train.classes == "train"
        assert resolve(method, "omniglot-5w1s", "quick", None, {}).settings.train.classes == "train"


def test_a_trainval_run_tests_its_final_weights_though_validation_fell(tmp_path, data_root, monkeypatch):
    import bench.engine.train

    scores = iter([0.9, 0.5, 0.3])
    validate = bench.engine.train.Trainer.validate

    def falling(self):
        return {**validate(self), "accuracy": next(scores)}

    monkeypatch.setattr(bench.engine.train.Trainer, "validate", falling)
    result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke", "--set", "train.classes=trainval",
                    "--set", "train.val_every=1", "--data-root", data_root, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads((the_run(tmp_path) / "summary.json").read_text())
    assert summary["best_iteration"] == summary["iterations"] == 3 and summary["best_val"] == 0.3


def test_trainval_on_a_task_without_class_splits_is_a_one_line_error(tmp_path):
    result = invoke("run", "--method", "maml", "--task", "sinusoid-5s", "--profile", "smoke", "--set", "train.classes=trainval",
                    "--out", tmp_path)
    one_line_error(result, 2, "train.classes=trainval needs a task whose splits are sets of classes")
