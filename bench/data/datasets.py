"""The datasets: each one's registration, and the loading module that owns everything else about it.

A registration holds what task specs and the report need without loading anything (a name,
the examples' modality and channels); its module holds the sources, the file check and the
identity that runs record, and is imported only when episodes are drawn or files checked (it
imports torch and learn2learn: seconds here). A new dataset is one module that defines

- ``sources(task, root) -> {"train": EpisodeSource, "val": ..., "test": ...}``, each source
  with an ``identity`` dict (what runs record about the data: ``dataset`` and a digest), and
- ``verify(root) -> Verification`` (``storage.Verification``),

plus one ``DATASETS.add`` line below; task YAMLs then name it as their ``dataset``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bench.registry import Registry

if TYPE_CHECKING:
    from bench.data.episodes import EpisodeSource
    from bench.data.storage import Verification
    from bench.interface.task import TaskSpec


@dataclass(frozen=True)
class Dataset:
    """One dataset's registration.

    Attributes:
        modality: ``image`` ([C, H, W]), ``vector`` ([features]) or ``text`` ([length] token ids).
        channels: image channels or vector features of one example (text: 0, the task's vocabulary).
        module: the module that loads it.
        on_disk: False for generated data (nothing for ``data verify`` to check).
    """

    name: str
    modality: Literal["image", "vector", "text"]
    channels: int
    module: str
    on_disk: bool = True

    def sources(self, task: "TaskSpec", root: Path) -> dict[str, "EpisodeSource"]:
        """The train/val/test sources of ``task``; each split sees only its own classes."""
        return importlib.import_module(self.module).sources(task, root)

    def verify(self, root: Path) -> "Verification":
        return importlib.import_module(self.module).verify(root)


DATASETS: Registry[Dataset] = Registry("dataset")
for _dataset in (
    Dataset("omniglot", "image", 1, "bench.data.omniglot"),
    Dataset("miniimagenet", "image", 3, "bench.data.miniimagenet"),
    Dataset("ptb", "text", 0, "bench.data.ptb"),
    Dataset("sinusoid", "vector", 1, "bench.data.sinusoid", on_disk=False),
):
    DATASETS.add(_dataset.name, _dataset)


def build_sources(task: "TaskSpec", root: Path) -> dict[str, "EpisodeSource"]:
    """The train/val/test sources of ``task``, from its dataset's module."""
    return DATASETS.get(task.dataset).sources(task, root)


def verify_all(root: Path) -> "Verification":
    """Every on-disk dataset's check, in one: what matched, every missing and corrupt path, the notes."""
    from bench.data.storage import Verification

    total = Verification()
    for name in DATASETS:
        dataset = DATASETS.get(name)
        if dataset.on_disk:
            found = dataset.verify(root)
            total.checked = "; ".join(c for c in (total.checked, found.checked) if c)
            total.missing += found.missing
            total.corrupt += found.corrupt
            total.notes += found.notes
    return total
