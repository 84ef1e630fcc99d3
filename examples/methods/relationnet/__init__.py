"""Relation Networks (Sung et al., "Learning to Compare", CVPR 2018), as a method from outside the
harness: this folder is all there is to it (docs/adding-a-method.md).

Each class's support embeddings are summed (the paper's k-shot rule), concatenated with each
query's embedding, and a small relation network scores the pair in [0, 1]; training regresses
the scores on one-hot targets with mean squared error, as the paper does. The paper's relation
module is convolutional over feature maps; this one is an MLP over embedding vectors, so that the
same method runs on images and sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.interface import embedding  # the module, not the class: a method package exposes one Method subclass
from bench.interface.method import Batch


@dataclass(frozen=True)
class RelationNetConfig:
    backbone: str = "auto"
    """Embedding network (``cli.py list`` shows the backbones); ``auto``: conv4-64-max for images, text-cnn for sentences."""
    batch_norm: Literal["running", "transductive"] = "running"
    """``running``: running statistics at test; ``transductive``: the statistics of each episode."""
    hidden: int = 8
    """Width of the relation network's hidden layer (the paper's 8)."""


class RelationNet(embedding.EmbeddingMethod):
    """Scores each (class, query) pair with a learned relation network."""

    kinds = frozenset({"classification"})
    Config = RelationNetConfig
    profiles = Path(__file__).with_name("profiles.yaml")

    def __init__(self, config: RelationNetConfig, task, ways: int):
        super().__init__(config, task, ways)
        self.relation = nn.Sequential(nn.Linear(2 * self.embedding_dim, config.hidden), nn.ReLU(),
                                      nn.Linear(config.hidden, 1))

    def forward(self, batch: Batch) -> torch.Tensor:
        zs, zq = batch.embed(self.encoder)  # [T, S, D], [T, Q, D]
        onehot = F.one_hot(batch.support_y, batch.ways).to(zs.dtype)  # [T, S, ways]
        classes = onehot.transpose(1, 2) @ zs  # [T, ways, D]: summed over shots
        t, q, c = zq.shape[0], zq.shape[1], classes.shape[1]
        pairs = torch.cat([classes.unsqueeze(1).expand(t, q, c, -1), zq.unsqueeze(2).expand(t, q, c, -1)], -1)
        return torch.sigmoid(self.relation(pairs).squeeze(-1))  # [T, Q, ways] relation scores

    def train_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets = F.one_hot(batch.query_y, batch.ways).to(outputs.dtype)
        return (outputs - targets).pow(2).sum(-1).mean()
