"""Prototypical Networks (Snell, Swersky & Zemel, NeurIPS 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from bench.interface import embedding  # the module, not the class: a method folder exposes one Method subclass
from bench.interface.method import Batch


@dataclass(frozen=True)
class ProtoNetConfig:
    backbone: str = "auto"
    """Embedding network (``cli.py list`` shows the backbones); ``auto``: conv4-64-max for images, text-cnn for sentences."""
    batch_norm: Literal["running", "transductive"] = "running"
    """``running``: running statistics at test; ``transductive``: the statistics of each forward pass (every episode evaluated together)."""


def prototypes(z: torch.Tensor, labels: torch.Tensor, ways: int) -> torch.Tensor:
    """Class means of support embeddings.

    Args:
        z: [T, S, D] support embeddings. labels: [T, S] in 0..ways-1.
    Returns:
        [T, ways, D].
    """
    onehot = torch.nn.functional.one_hot(labels, ways).to(z.dtype)  # [T, S, ways]
    return onehot.transpose(1, 2) @ z / onehot.sum(1).unsqueeze(-1)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[T, Q, D] x [T, C, D] -> [T, Q, C] squared Euclidean distances."""
    return (a.unsqueeze(2) - b.unsqueeze(1)).pow(2).sum(-1)


class ProtoNet(embedding.EmbeddingMethod):
    """Embeds support and queries, classifies queries by the nearest class mean."""

    kinds = frozenset({"classification"})
    Config = ProtoNetConfig
    profiles = Path(__file__).with_name("profiles.yaml")

    def forward(self, batch: Batch) -> torch.Tensor:
        zs, zq = batch.embed(self.encoder)
        return -squared_distances(zq, prototypes(zs, batch.support_y, batch.ways))
