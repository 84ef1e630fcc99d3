"""Episodes: what identifies one, the random streams they are drawn from, and what a source of them provides.

Training episodes follow the run seed. Validation and test episodes depend only on
(task, split, episode seed), so every method and every run sees the same ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from dataclasses import dataclass
from typing import Iterator, Protocol

from bench.interface.method import Batch
from bench.interface.task import TaskSpec


@dataclass(frozen=True)
class Episode:
    """What identifies one episode: enough to rebuild it and to compare it across runs."""

    fingerprint: str
    classes: tuple[str, ...]
    payload: tuple  # source-specific: sample indices, or sinusoid parameters and inputs


class PyRandomStream:
    """A private stream of Python's global ``random``, which learn2learn's transforms draw from.

    The global state is swapped in while sampling and restored afterwards, so nothing else
    (and no other stream) perturbs the episodes this stream produces.
    """

    def __init__(self, seed: int):
        self.state = random.Random(seed).getstate()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        saved = random.getstate()
        random.setstate(self.state)
        try:
            yield
        finally:
            self.state = random.getstate()
            random.setstate(saved)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across processes (unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


# Each stream's seed parts, by name. The labels are those the streams have always had (the
# validation and test streams lead with the task's name): changing one would redraw that stream.
STREAMS = {
    "init": lambda s: ("init", s.run),  # the method's initial weights (torch's generator)
    "train": lambda s: ("train", s.task.name, s.run),  # training episodes
    "capture-probe": lambda s: ("capture-probe", s.task.name, s.run),  # the meta-batch train.compile decides on
    "memory-probe": lambda s: ("memory-probe", s.task.name, s.run),  # the episode the memory estimate measures
    "val": lambda s: (s.task.episodes_of or s.task.name, s.task.version, "val", s.episodes),  # shared by every run of the task
    "test": lambda s: (s.task.episodes_of or s.task.name, s.task.version, "test", s.episodes),  # shared by every run of the task
}


@dataclass(frozen=True)
class Seeds:
    """Every random stream of a run, derived by name from its run seed (``seed``: training
    episodes, initialisation, probes) or its episode seed (``eval.seed``: the validation and test
    episodes, which therefore depend on the task and that seed alone); ``record`` lists them."""

    task: TaskSpec
    run: int
    episodes: int

    def seed(self, name: str) -> int:
        return derive_seed(*STREAMS[name](self))

    def stream(self, name: str) -> PyRandomStream:
        return PyRandomStream(self.seed(name))

    def record(self) -> dict[str, int]:
        return {name: self.seed(name) for name in STREAMS}

    @staticmethod
    def picture(task_seed: int) -> PyRandomStream:
        """The episode ``plot-shifts`` draws, chosen by its own ``--task-seed`` alone."""
        return PyRandomStream(derive_seed("plot-shifts", task_seed))


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class EpisodeSource(Protocol):
    """Makes episodes of one dataset split; ``identity`` says which data (recorded with runs)."""

    identity: dict

    def check(self, ways: int, shots: int, queries: int, what: str) -> None:
        """Raises a UserError when episodes of this shape cannot be drawn."""

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode: ...

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch: ...


def eval_episodes(source: EpisodeSource, task: TaskSpec, split: str, n: int, seed: int) -> list[Episode]:
    """The fixed evaluation episodes of ``task``'s ``split``: a function of (task, split, seed) only."""
    stream = Seeds(task, 0, seed).stream(split)
    return [source.sample(task.ways, task.shots, task.queries, stream) for _ in range(n)]
