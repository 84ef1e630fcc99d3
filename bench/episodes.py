"""Episodes: sampled with learn2learn's task transforms, batched as tensors, fingerprinted.

Training episodes follow the run seed. Validation and test episodes depend only on
(task, split, episode seed), so every method and every run sees the same ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import torch

from bench.errors import UserError
from bench.tasks import TaskSpec

with contextlib.redirect_stderr(io.StringIO()):  # gym, imported by learn2learn, prints a notice
    import learn2learn as l2l


@dataclass
class Batch:
    """T episodes of identical shape.

    Attributes:
        support_x: [T, S, *input] inputs; S = ways * shots (classification).
        support_y: [T, S] class indices (long) or [T, S, 1] targets (float).
        query_x: [T, Q, *input].
        query_y: [T, Q] or [T, Q, 1].
        ways: classes per episode (0 for regression).
        extras: per-task tensors, e.g. ``amplitude`` [T] for sinusoids.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    ways: int
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        return self.support_x.shape[0]

    def to(self, device: torch.device | str) -> "Batch":
        """Moves to ``device``; uint8 images become float in [0, 1] there (cheaper to move)."""

        def move(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device, non_blocking=True)
            return t.float().div_(255) if t.dtype == torch.uint8 else t

        return Batch(
            move(self.support_x), move(self.support_y), move(self.query_x), move(self.query_y),
            self.ways, {k: move(v) for k, v in self.extras.items()},
        )

    def slice(self, start: int, stop: int) -> "Batch":
        """Tasks ``start:stop`` (used to adapt a meta-batch in chunks)."""
        cut = lambda t: t[start:stop]  # noqa: E731
        return Batch(
            cut(self.support_x), cut(self.support_y), cut(self.query_x), cut(self.query_y),
            self.ways, {k: cut(v) for k, v in self.extras.items()},
        )


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


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


class EpisodeSource(Protocol):
    """Makes episodes of one dataset split."""

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode: ...

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch: ...


class ClassificationSource:
    """Few-shot classification episodes over a split held as uint8 images in memory.

    learn2learn's ``NWays`` and ``KShots`` transforms choose classes and samples on a
    ``TaskDataset``; images are then gathered with one tensor index instead of
    ``LoadData``, which would copy every sample through Python.

    Args:
        images: uint8 [C, P, H, W] or [C, P, H, W, 3]: P samples for each of C classes.
        class_names: C names, recorded with every episode.
    """

    def __init__(self, images: torch.Tensor, class_names: list[str]):
        self.images = images
        self.class_names = list(class_names)
        self.per_class = images.shape[1]
        self.flat = images.reshape(-1, *images.shape[2:])
        labels_to_indices = {
            c: list(range(c * self.per_class, (c + 1) * self.per_class)) for c in range(len(class_names))
        }
        self.meta = l2l.data.MetaDataset(_IndexDataset(len(self.flat)), labels_to_indices=labels_to_indices)
        self._tasksets: dict[tuple[int, int], object] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check(self, ways: int, shots: int, queries: int, what: str) -> None:
        if ways < 1 or shots < 1 or queries < 1:
            raise UserError(f"{what}: ways, shots and queries must be at least 1 (got {ways}, {shots}, {queries})")
        if ways > self.num_classes:
            raise UserError(f"{what}: {ways} ways but the split has only {self.num_classes} classes")
        if shots + queries > self.per_class:
            raise UserError(
                f"{what}: {shots} shots + {queries} queries per class but each class has "
                f"only {self.per_class} samples"
            )

    def _taskset(self, ways: int, per_class: int):
        key = (ways, per_class)
        if key not in self._tasksets:
            transforms = [
                l2l.data.transforms.NWays(self.meta, ways),
                l2l.data.transforms.KShots(self.meta, per_class),
            ]
            self._tasksets[key] = l2l.data.TaskDataset(self.meta, task_transforms=transforms)
        return self._tasksets[key]

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        with stream.active():
            description = self._taskset(ways, shots + queries).sample_task_description()
        by_class: dict[int, list[int]] = {}
        for dd in description:
            by_class.setdefault(dd.index // self.per_class, []).append(dd.index)
        classes = list(by_class)  # NWays' random order: it assigns the labels 0..ways-1
        indices = tuple(tuple(by_class[c]) for c in classes)
        names = tuple(self.class_names[c] for c in classes)
        return Episode(_fingerprint(names, indices), names, indices)

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch:
        index = torch.tensor([e.payload for e in episodes])  # [T, ways, shots + queries]
        x = self.flat[index]  # uint8 [T, ways, per, H, W(, 3)]
        if x.dim() == 6:
            x = x.permute(0, 1, 2, 5, 3, 4)
        else:
            x = x.unsqueeze(3)
        t, _, per = index.shape
        queries = per - shots
        labels = torch.arange(ways).view(1, ways, 1)
        sx = x[:, :, :shots].reshape(t, ways * shots, *x.shape[3:])
        qx = x[:, :, shots:].reshape(t, ways * queries, *x.shape[3:])
        return Batch(
            support_x=sx,
            support_y=labels.expand(t, ways, shots).reshape(t, -1),
            query_x=qx,
            query_y=labels.expand(t, ways, queries).reshape(t, -1),
            ways=ways,
        )


class _IndexDataset(torch.utils.data.Dataset):
    """Stands in for the images inside learn2learn: only indices are sampled there."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class SinusoidSource:
    """Sinusoid regression (Finn et al. 2017, Sec. 5.1): y = A sin(x - phi).

    A ~ U[0.1, 5.0], phi ~ U[0, pi], x ~ U[-5, 5]. Drawn from the same kind of stream as
    the classification episodes, so seeds behave identically.
    """

    amplitude = (0.1, 5.0)
    phase = (0.0, math.pi)
    x_range = (-5.0, 5.0)

    def check(self, ways: int, shots: int, queries: int, what: str) -> None:
        if shots < 1 or queries < 1:
            raise UserError(f"{what}: shots and queries must be at least 1 (got {shots}, {queries})")

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        with stream.active():
            amp = random.uniform(*self.amplitude)
            phase = random.uniform(*self.phase)
            xs = tuple(random.uniform(*self.x_range) for _ in range(shots + queries))
        payload = (amp, phase, xs)
        return Episode(_fingerprint(payload), (), payload)

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch:
        amp = torch.tensor([e.payload[0] for e in episodes])
        phase = torch.tensor([e.payload[1] for e in episodes])
        x = torch.tensor([e.payload[2] for e in episodes]).unsqueeze(-1)  # [T, S+Q, 1]
        y = amp.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))
        return Batch(
            x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:], 0,
            {"amplitude": amp, "phase": phase},
        )


def omniglot_split(omniglot, class_lines: list[str]) -> ClassificationSource:
    """One Vinyals split: each ``Alphabet/characterNN/rotDDD`` line is its own class."""
    index = {name: i for i, name in enumerate(omniglot.characters)}
    chars, rots = [], []
    for line in class_lines:
        character, rot = line.rsplit("/", 1)
        if character not in index or rot not in ("rot000", "rot090", "rot180", "rot270"):
            raise UserError(f"split names an unknown class '{line}'")
        chars.append(index[character])
        rots.append(int(rot[3:]) // 90)
    base = omniglot.images[torch.tensor(chars)]  # [C, 20, H, W]
    rots_t = torch.tensor(rots)
    images = torch.empty_like(base)
    for k in range(4):
        sel = rots_t == k
        images[sel] = torch.rot90(base[sel], k, dims=(-2, -1))
    return ClassificationSource(images, class_lines)


SPLIT_FILES = {"train": "train", "val": "val", "test": "test"}


def build_sources(task: TaskSpec, data_root: Path) -> dict[str, EpisodeSource]:
    """The train/val/test sources of a task; each split sees only its own classes."""
    if task.dataset == "sinusoid":
        source = SinusoidSource()
        return {"train": source, "val": source, "test": source}
    if task.dataset == "omniglot":
        from bench.data import load_omniglot, load_split

        omniglot = load_omniglot(data_root, task.image_size)
        return {split: omniglot_split(omniglot, load_split(data_root, f)) for split, f in SPLIT_FILES.items()}
    if task.dataset == "miniimagenet":
        from bench.miniimagenet import load_split as load_mini

        splits = {split: load_mini(data_root, split, task.image_size) for split in SPLIT_FILES}
        return {split: ClassificationSource(s.images, list(s.classes)) for split, s in splits.items()}
    raise UserError(f"task '{task.name}' uses dataset '{task.dataset}', which this version cannot load")


def eval_episodes(source: EpisodeSource, task: TaskSpec, split: str, n: int, seed: int) -> list[Episode]:
    """The fixed evaluation episodes of ``task``'s ``split``: a function of (task, split, seed) only."""
    stream = PyRandomStream(derive_seed(task.name, task.version, split, seed))
    return [source.sample(task.ways, task.shots, task.queries, stream) for _ in range(n)]
