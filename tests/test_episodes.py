import random

import torch

from bench.data.classification import ClassificationSource
from bench.data.episodes import PyRandomStream, eval_episodes
from bench.data.sinusoid import SinusoidSource
from bench.data.tasks import get_task


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
