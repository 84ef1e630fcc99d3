"""The one episode sampler of every source whose samples belong to classes: learn2learn's
``NWays`` and ``KShots`` on a ``TaskDataset`` of sample indices (images and sentences alike)."""

from __future__ import annotations

import contextlib
import io

import torch

from bench.data.episodes import PyRandomStream

with contextlib.redirect_stderr(io.StringIO()):  # gym, imported by learn2learn, prints a notice
    import learn2learn as l2l


class IndexDataset(torch.utils.data.Dataset):
    """Stands in for the samples inside learn2learn: only indices are sampled there."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class ClassSampler:
    """Draws ``ways`` classes and ``per_class`` samples of each from ``labels_to_indices``
    (class id -> the flat indices of its samples), on a private random stream."""

    def __init__(self, labels_to_indices: dict[int, list[int]]):
        total = sum(len(v) for v in labels_to_indices.values())
        self.meta = l2l.data.MetaDataset(IndexDataset(total), labels_to_indices=labels_to_indices)
        self._tasksets: dict[tuple[int, int], object] = {}

    def _taskset(self, ways: int, per_class: int):
        key = (ways, per_class)
        if key not in self._tasksets:
            transforms = [l2l.data.transforms.NWays(self.meta, ways), l2l.data.transforms.KShots(self.meta, per_class)]
            self._tasksets[key] = l2l.data.TaskDataset(self.meta, task_transforms=transforms)
        return self._tasksets[key]

    def draw(self, ways: int, per_class: int, stream: PyRandomStream) -> dict[int, list[int]]:
        """Class id -> its drawn sample indices, in NWays' random order (the labels 0..ways-1)."""
        with stream.active():
            description = self._taskset(ways, per_class).sample_task_description()
        by_class: dict[int, list[int]] = {}
        for dd in description:
            by_class.setdefault(self.meta.indices_to_labels[dd.index], []).append(dd.index)
        return by_class
