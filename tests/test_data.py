from pathlib import Path

import pytest
import torch

from bench.data.classification import ClassificationSource
from bench.data.omniglot import N_CHARACTERS, load_split, omniglot_split
from bench.errors import DataError, UserError


def characters(lines):
    return {line.rsplit("/", 1)[0] for line in lines}


def test_vinyals_splits_are_disjoint_and_complete(data_root, omniglot):
    train, val, test = (load_split(data_root, s, download=False) for s in ("train", "val", "test"))
    assert (len(characters(train)), len(characters(val)), len(characters(test))) == (1028, 172, 423)
    assert (len(train), len(val), len(test)) == (4112, 688, 1692)
    assert not characters(train) & characters(val)
    assert not characters(train) & characters(test)
    assert not characters(val) & characters(test)
    assert characters(train) | characters(val) | characters(test) == set(omniglot.characters)
    assert len(omniglot.characters) == N_CHARACTERS


def test_preprocessing_gives_28px_strokes_high(omniglot):
    assert omniglot.images.shape == (1623, 20, 28, 28)
    assert omniglot.images.dtype == torch.uint8
    # strokes = 1 after inversion: background (0) dominates every image
    assert (omniglot.images.float().mean(dim=(2, 3)) < 128).all()


def test_rotations_are_their_own_classes(omniglot):
    lines = ["Latin/character01/rot000", "Latin/character01/rot090"]
    source = omniglot_split(omniglot, lines)
    assert torch.equal(source.images[1], torch.rot90(source.images[0], 1, dims=(-2, -1)))


def test_missing_data_is_a_clear_error(tmp_path):
    from bench.data.omniglot import load_omniglot

    with pytest.raises(DataError, match="Omniglot not found under"):
        load_omniglot(tmp_path, download=False)
    with pytest.raises(DataError, match="split file missing"):
        load_split(tmp_path, "train", download=False)


def test_impossible_episodes_are_rejected():
    source = ClassificationSource(torch.zeros(4, 20, 2, 2, dtype=torch.uint8), list("abcd"))
    with pytest.raises(UserError, match="5 ways but the split has only 4 classes"):
        source.check(5, 1, 1, "test")
    with pytest.raises(UserError, match="only 20 samples"):
        source.check(2, 5, 16, "test")


def test_finn_protocol_split_of_the_real_characters(data_root):
    from bench.data.datasets import build_sources
    from bench.data.omniglot import finn_split
    from bench.data.tasks import get_task

    sources = build_sources(get_task("omniglot-finn-5w1s"), data_root)
    names = {split: set(s.class_names) for split, s in sources.items()}
    assert {k: len(v) for k, v in names.items()} == {"train": 1100, "val": 100, "test": 423}
    assert not names["train"] & names["test"] and not names["train"] & names["val"] and not names["val"] & names["test"]
    assert names == {k: set(v) for k, v in finn_split(sorted(set().union(*names.values()))).items()}
    assert all(s.images.shape[1:] == (20, 28, 28) for s in sources.values())


def test_a_task_takes_its_examples_shape_from_its_dataset_and_names_a_registered_one(tmp_path):
    from bench.data.tasks import get_task, load_task

    assert (get_task("miniimagenet-5w1s").channels, get_task("ptb-5w1s").channels) == (3, 8501)
    assert (get_task("sinusoid-5s").modality, get_task("ptb-5w1s").is_text) == ("vector", True)
    text = (Path(__file__).parent.parent / "bench/data/tasks/omniglot-5w1s.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(text.replace("dataset: omniglot", "dataset: omniglott"))
    with pytest.raises(UserError, match=r"typo.yaml: unknown dataset 'omniglott' \(did you mean 'omniglot'\?\)"):
        load_task(tmp_path / "typo.yaml")
    (tmp_path / "shape.yaml").write_text(text + "data_channels: 3\n")
    with pytest.raises(UserError, match="data_channels come from the dataset's registration"):
        load_task(tmp_path / "shape.yaml")
