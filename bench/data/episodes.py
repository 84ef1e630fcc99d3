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
    stream = PyRandomStream(derive_seed(task.name, task.version, split, seed))
    return [source.sample(task.ways, task.shots, task.queries, stream) for _ in range(n)]
