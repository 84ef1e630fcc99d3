"""What a method is told about its task (the specs themselves are YAML files in ``bench/data/tasks/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task. ``queries`` is per class for classification, per task for regression.

    ``protocol`` names the evaluation protocol (split, classes, episode shape, test episodes);
    a published number is compared only with tasks of its own protocol. ``modality`` and
    ``data_channels`` come from the dataset's registration (``bench/data/datasets.py``), not the
    task's YAML. Text tasks have ``image_size`` 0, examples of ``sequence_length`` token ids,
    and an embedding table of ``vocabulary`` rows. ``episodes_of`` names the task whose validation
    and test episodes this one draws (default: its own): a variant that changes only how the same
    examples are read (``scripts/ptb_gap.py``) is then scored on exactly the task's episodes.
    """

    name: str
    version: int
    protocol: str
    kind: Literal["classification", "regression"]
    dataset: str
    split: str
    image_size: int
    ways: int
    shots: int
    queries: int
    test_episodes: int
    val_episodes: int
    sequence_length: int = 0
    vocabulary: int = 0
    modality: Literal["image", "vector", "text"] = "image"
    data_channels: int = 1
    episodes_of: str = ""

    @property
    def is_text(self) -> bool:
        return self.modality == "text"

    @property
    def channels(self) -> int:
        """Input channels (features, for vectors) of one example; for text, the vocabulary."""
        return self.vocabulary if self.is_text else self.data_channels

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example: (C, H, W) images, (features,) vectors, (length,) token ids."""
        if self.is_text:
            return (self.sequence_length,)
        return (self.channels, self.image_size, self.image_size) if self.image_size else (self.channels,)

    def example_inputs(self, n: int) -> "torch.Tensor":
        """``n`` all-zero examples (token ids for text), to size the networks built for the task."""
        import torch  # here: the report reads task specs without importing torch

        return torch.zeros((n, *self.input_shape), dtype=torch.long if self.is_text else torch.float)
