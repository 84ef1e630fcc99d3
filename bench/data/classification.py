"""Few-shot classification episodes over images held as uint8 tensors, drawn with learn2learn."""

from __future__ import annotations

import random

import torch

from bench.data.episodes import Episode, PyRandomStream, fingerprint
from bench.data.sampler import ClassSampler
from bench.errors import UserError
from bench.interface.method import Batch


class ClassificationSource:
    """Few-shot classification episodes over a split held as uint8 images in memory.

    learn2learn's ``NWays`` and ``KShots`` transforms choose classes and samples on a
    ``TaskDataset``; images are then gathered with one tensor index instead of
    ``LoadData``, which would copy every sample through Python.

    Args:
        images: uint8 [C, P, H, W] or [C, P, H, W, 3]: P samples for each of C classes.
        class_names: C names, recorded with every episode.
        identity: what runs record about the data (a digest of the files, where known).
    """

    def __init__(self, images: torch.Tensor, class_names: list[str], identity: dict | None = None):
        self.identity = identity or {}
        self.images = images
        self.class_names = list(class_names)
        self.per_class = images.shape[1]
        self.flat = images.reshape(-1, *images.shape[2:])
        labels_to_indices = {
            c: list(range(c * self.per_class, (c + 1) * self.per_class)) for c in range(len(class_names))
        }
        self.sampler = ClassSampler(labels_to_indices)

    def joined(self, other: "ClassificationSource") -> "ClassificationSource":
        """The classes of both sources (e.g. training and validation), in that order."""
        if other.images.shape[1:] != self.images.shape[1:] or other.images.dtype != self.images.dtype:
            raise UserError("cannot join splits whose classes hold images of different counts or shapes")
        return type(self)(torch.cat([self.images, other.images]), self.class_names + other.class_names, self.identity)

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

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        by_class = self.sampler.draw(ways, shots + queries, stream)
        classes = list(by_class)  # NWays' random order: it assigns the labels 0..ways-1
        indices = tuple(tuple(by_class[c]) for c in classes)
        names = tuple(self.class_names[c] for c in classes)
        return Episode(fingerprint(names, indices), names, indices)

    def episode_images(self, episodes: list[Episode]) -> torch.Tensor:
        """uint8 [T, ways, shots + queries, C, H, W]: each episode's images, class by class."""
        x = self.flat[torch.tensor([e.payload for e in episodes])]  # [T, ways, per, H, W(, 3)]
        return x.permute(0, 1, 2, 5, 3, 4) if x.dim() == 6 else x.unsqueeze(3)

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch:
        x = self.episode_images(episodes)
        t, _, per = x.shape[:3]
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


class RandomRotationSource(ClassificationSource):
    """Episodes whose classes are each rotated by a random multiple of 90 degrees, drawn per
    task from the episode's own stream (the MAML code's Omniglot protocol, Finn et al. 2017).

    The rotations are part of the episode: its payload is (sample indices, rotations), and its
    classes are named like the Vinyals split's (``Alphabet/characterNN/rot090``).
    """

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        plain = super().sample(ways, shots, queries, stream)
        with stream.active():
            rotations = tuple(random.randrange(4) for _ in range(ways))
        classes = tuple(f"{name}/rot{90 * k:03d}" for name, k in zip(plain.classes, rotations))
        return Episode(fingerprint(classes, plain.payload), classes, (plain.payload, rotations))

    def episode_images(self, episodes: list[Episode]) -> torch.Tensor:
        x = super().episode_images([Episode(e.fingerprint, e.classes, e.payload[0]) for e in episodes])
        rotations = torch.tensor([e.payload[1] for e in episodes])  # [T, ways]
        out = torch.empty_like(x)
        for k in range(4):
            chosen = rotations == k
            out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
        return out

