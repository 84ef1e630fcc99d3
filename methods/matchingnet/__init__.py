"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, NeurIPS 2016).

A query's label distribution is an attention-weighted sum of the support labels: the attention
is a softmax over the cosine similarities between the query's embedding and each support
embedding (Sec. 2.1.1, eqs. 1-2). With ``full_context`` the embeddings see the whole support set
(Appendix A): a bidirectional LSTM over the support embeddings, g(x_i) = g'(x_i) + h_fwd_i + h_bwd_i
(A.2), and for each query an LSTM that reads the support set for ``read_steps`` steps (A.1):

    h^_k, c_k = LSTM(f'(x), [h_{k-1}, r_{k-1}], c_{k-1});  h_k = h^_k + f'(x)
    r_k = sum_i softmax_i(h_k . g(x_i)) g(x_i);            f(x) = h_K

Not given in the paper and chosen here: zero initial states, and ``read_steps`` (default 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UserError
from bench.interface import embedding  # the module, not the class: a method folder exposes one Method subclass
from bench.interface.method import Batch


@dataclass(frozen=True)
class MatchingNetConfig:
    backbone: str = "auto"
    """Embedding network (``cli.py list`` shows the backbones); ``auto``: conv4-64-max (the paper's Omniglot and ImageNet network, four 64-filter conv blocks) for images, text-cnn for sentences."""
    batch_norm: Literal["running", "transductive"] = "running"
    """``running``: running statistics at test; ``transductive``: the statistics of each forward pass."""
    full_context: bool = False
    """Full context embeddings (the paper's Appendix A): support embeddings through a bidirectional LSTM, queries through an attention LSTM over the support set."""
    read_steps: int = 5
    """With ``full_context``: the attention LSTM's processing steps K (the paper gives no value)."""
    temperature: float = 1.0
    """Cosine similarities are multiplied by this before the attention's softmax (the paper: 1, so a
    5-way 1-shot query's label probability can reach only about 0.65)."""
    learn_temperature: bool = False
    """Learn the multiplier, starting from ``temperature`` (as CSN's cosine attention does)."""

    def __post_init__(self):
        if not 1 <= self.read_steps <= 100:
            raise UserError(f"method.read_steps must be from 1 to 100, got {self.read_steps}")
        if not 0 < self.temperature <= 1000:
            raise UserError(f"method.temperature must be above 0 and at most 1000, got {self.temperature:g}")


def cosine_attention(queries: torch.Tensor, support: torch.Tensor, temperature: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Softmax over the support of scaled cosine similarities: [T, Q, D] x [T, S, D] -> [T, Q, S]."""
    return (temperature * F.normalize(queries, dim=-1) @ F.normalize(support, dim=-1).transpose(1, 2)).softmax(-1)


class AttentionLSTM(nn.Module):
    """The query embedding f of Appendix A.1: an LSTM whose state input is [h_{k-1}, r_{k-1}]."""

    def __init__(self, dim: int, steps: int):
        super().__init__()
        self.steps = steps
        self.gates = nn.Linear(3 * dim, 4 * dim)  # input f'(x) (dim) and state [h, r] (2 dim)

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """f: [T, Q, D] query embeddings f'(x); g: [T, S, D] support embeddings g(x_i) -> [T, Q, D]."""
        h, r, c = torch.zeros_like(f), torch.zeros_like(f), torch.zeros_like(f)
        for _ in range(self.steps):
            i, forget, cell, o = self.gates(torch.cat([f, h, r], -1)).chunk(4, -1)
            c = forget.sigmoid() * c + i.sigmoid() * cell.tanh()
            h = o.sigmoid() * c.tanh() + f
            r = (h @ g.transpose(1, 2)).softmax(-1) @ g  # content-based read of the support set
        return h


class MatchingNet(embedding.EmbeddingMethod):
    """Labels each query by attention over the support set's labels."""

    kinds = frozenset({"classification"})
    Config = MatchingNetConfig
    profiles = Path(__file__).with_name("profiles.yaml")

    def __init__(self, config: MatchingNetConfig, task, ways: int):
        super().__init__(config, task, ways)
        dim = self.embedding_dim
        self.temperature = nn.Parameter(torch.tensor(config.temperature)) if config.learn_temperature else config.temperature
        if config.full_context:
            self.support_lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
            self.query_lstm = AttentionLSTM(dim, config.read_steps)

    @property
    def support_order_matters(self) -> bool:
        return self.config.full_context  # the bidirectional LSTM reads the support set in order

    def forward(self, batch: Batch) -> torch.Tensor:
        g, f = batch.embed(self.encoder)
        if self.config.full_context:
            both, _ = self.support_lstm(g)
            forward, backward = both.chunk(2, -1)
            g = g + forward + backward
            f = self.query_lstm(f, g)
        labels = F.one_hot(batch.support_y, batch.ways).to(g.dtype)  # [T, S, ways]
        probabilities = cosine_attention(f, g, self.temperature) @ labels  # [T, Q, ways], each row sums to 1
        # Log-probabilities as logits: the softmax of the cross-entropy then returns them unchanged.
        return probabilities.clamp_min(1e-12).log()
