import random
from pathlib import Path

import pytest
import torch

from bench.data.classification import ClassificationSource
from bench.data.datasets import build_sources
from bench.data.episodes import PyRandomStream, Seeds, eval_episodes
from bench.data.sinusoid import SinusoidSource
from bench.data.tasks import get_task
from bench.results.runfolder import RunFolder

REPO = Path(__file__).resolve().parent.parent


def toy_source(classes=12, per_class=20):
    images = torch.arange(classes * per_class, dtype=torch.int32).view(classes, per_class, 1, 1).to(torch.uint8)
    return ClassificationSource(images, [f"c{i}" for i in range(classes)])


def test_eval_episodes_depend_only_on_task_split_and_seed():
    task = get_task("omniglot-5w1s")
    source = toy_source()
    random.seed(123)
    before = random.getstate()
    a = eval_episodes(source, task, "test", 10, seed=0)
    assert random.getstate() == before  # the global state is left as it was...
    random.random()
    b = eval_episodes(toy_source(), task, "test", 10, seed=0)
    assert [e.fingerprint for e in a] == [e.fingerprint for e in b]  # ...and does not matter
    c = eval_episodes(source, task, "test", 10, seed=1)
    d = eval_episodes(source, task, "val", 10, seed=0)
    assert {e.fingerprint for e in a}.isdisjoint({e.fingerprint for e in c})
    assert {e.fingerprint for e in a}.isdisjoint({e.fingerprint for e in d})


def test_episode_shape_labels_and_no_overlap():
    source = toy_source()
    stream = PyRandomStream(0)
    episode = source.sample(5, 2, 3, stream)
    batch = source.collate([episode, source.sample(5, 2, 3, stream)], 5, 2)
    assert batch.support_x.shape == (2, 10, 1, 1, 1)
    assert batch.query_x.shape == (2, 15, 1, 1, 1)
    assert batch.support_y[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    ids = lambda x: x.flatten().tolist()  # noqa: E731  (pixel value = sample index)
    for t in range(2):
        assert not set(ids(batch.support_x[t])) & set(ids(batch.query_x[t]))
        # every sample of label k comes from the same class
        for k in range(5):
            samples = ids(batch.support_x[t][batch.support_y[t] == k]) + ids(batch.query_x[t][batch.query_y[t] == k])
            assert len({s // 20 for s in samples}) == 1
    assert len(set(episode.classes)) == 5


def test_streams_are_independent_and_reproducible():
    source = toy_source()
    s1, s2 = PyRandomStream(7), PyRandomStream(7)
    first = [source.sample(5, 1, 1, s1).fingerprint for _ in range(3)]
    PyRandomStream(8)
    random.random()
    assert first == [source.sample(5, 1, 1, s2).fingerprint for _ in range(3)]


def test_sinusoid_episodes():
    source = SinusoidSource()
    task = get_task("sinusoid-10s")
    eps = eval_episodes(source, task, "test", 4, seed=0)
    assert [e.fingerprint for e in eps] == [e.fingerprint for e in eval_episodes(source, task, "test", 4, seed=0)]
    batch = source.collate(eps, 0, task.shots)
    assert batch.support_x.shape == (4, 10, 1) and batch.query_x.shape == (4, 50, 1)
    amp, phase = batch.extras["amplitude"], batch.extras["phase"]
    assert ((amp >= 0.1) & (amp <= 5.0)).all() and ((phase >= 0) & (phase <= torch.pi)).all()
    expected = amp.view(-1, 1, 1) * torch.sin(batch.query_x - phase.view(-1, 1, 1))
    assert torch.allclose(batch.query_y, expected)


def test_rotated_episodes_rotate_each_class_by_its_recorded_quarter_turns():
    from bench.data.classification import RandomRotationSource

    images = torch.zeros(6, 4, 3, 3, dtype=torch.uint8)
    images[:, :, 0, 0] = 1 + torch.arange(24, dtype=torch.uint8).view(6, 4)  # a mark in one corner, unique per sample
    source = RandomRotationSource(images, [f"c{i}" for i in range(6)])
    episodes = [source.sample(3, 1, 1, PyRandomStream(s)) for s in range(40)]
    batch = source.collate(episodes, 3, 1)
    for episode, sx in zip(episodes, batch.support_x):
        indices, rotations = episode.payload
        for label, (k, per_class) in enumerate(zip(rotations, indices)):
            original = images.reshape(-1, 3, 3)[per_class[0]]
            assert torch.equal(sx[label, 0], torch.rot90(original, k, dims=(-2, -1)))
        assert [name.rsplit("/", 1)[1] for name in episode.classes] == [f"rot{90 * k:03d}" for k in rotations]
    assert {k for e in episodes for k in e.payload[1]} == {0, 1, 2, 3}
    again = [source.sample(3, 1, 1, PyRandomStream(s)) for s in range(40)]
    assert [e.fingerprint for e in again] == [e.fingerprint for e in episodes]


def test_finn_split_sizes_disjointness_and_independence_of_listing_order():
    from bench.data.omniglot import finn_split

    characters = [f"Alphabet{a:02d}/character{c:02d}" for a in range(50) for c in range(1, 34)][:1623]
    split = finn_split(characters)
    assert {k: len(v) for k, v in split.items()} == {"train": 1100, "val": 100, "test": 423}
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(characters)
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])
    random.Random(5).shuffle(characters)  # os.listdir order varies; the split must not
    assert finn_split(characters) == split


# The first test episodes of a task version that no reference run was made on yet (eval seed 0),
# pinned when the version was made; a reference run of that version replaces the pin.
PINNED = {("ptb-5w2s", 2): ["f5023ae94fcf7114", "2f81267df5e30997", "e835f01f6c186fbc", "70fe00919662e506"]}


@pytest.mark.parametrize("task_name", ["omniglot-5w1s", "omniglot-finn-5w1s", "omniglot-20w1s", "ptb-5w2s", "sinusoid-10s"])
def test_todays_test_episodes_are_those_of_the_committed_reference_runs(task_name, data_root):
    """Episodes are part of the protocol: a change to the data code that redraws them would
    make today's runs incomparable with the reference report's (runs of the task's version)."""
    task = get_task(task_name)
    runs = [r for r in sorted((REPO / "results" / "reference" / "runs").glob(f"{task_name}__*"))
            if RunFolder(r).summary().task_version == task.version]
    if runs:
        result = RunFolder(runs[0]).result()
        seed, expected = result.config["eval"]["seed"], [row["fingerprint"] for row in result.test_rows[:30]]
    else:
        seed, expected = 0, PINNED[(task_name, task.version)]
    drawn = eval_episodes(build_sources(task, data_root)["test"], task, "test", len(expected), seed)
    assert [e.fingerprint for e in drawn] == expected


def test_every_stream_of_a_run_has_its_own_seed_and_only_training_ones_follow_the_run_seed():
    task = get_task("omniglot-5w1s")
    a, b = Seeds(task, 0, 0).record(), Seeds(task, 1, 0).record()
    assert set(a) == {"init", "train", "capture-probe", "memory-probe", "val", "test"}
    assert len(set(a.values())) == len(a)  # no two streams coincide
    assert {k for k in a if a[k] != b[k]} == {"init", "train", "capture-probe", "memory-probe"}
    assert Seeds(task, 0, 1).seed("test") != a["test"] and Seeds(get_task("omniglot-5w5s"), 0, 0).seed("test") != a["test"]
    source, stream = toy_source(), Seeds(task, 7, 0).stream("test")  # any run seed: the same test episodes
    assert [e.fingerprint for e in eval_episodes(source, task, "test", 3, seed=0)] == \
        [source.sample(5, 1, 15, stream).fingerprint for _ in range(3)]
