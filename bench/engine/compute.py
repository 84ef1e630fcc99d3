"""A model's size and compute at test: parameters, the FLOPs of predicting one test episode, and
whether a query's prediction depends on the episode's other queries (transduction)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.interface.method import Batch, Method


def parameter_count(method: Method) -> int:
    return sum(p.numel() for p in method.parameters())


def episode_flops(method: Method, episode: Batch) -> int:
    """FLOPs of matrix multiplications and convolutions (``torch.utils.flop_counter``) that
    ``method`` spends to predict the queries of one test episode: support processing and
    adaptation included (MAML's inner steps, backward passes too), elementwise work not."""
    method.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        method(episode)
    return int(counter.get_total_flops())


def is_transductive(method: Method, episode: Batch) -> bool:
    """Whether the first query's prediction changes when the episode's other queries change
    (e.g. batch norm with the statistics of each test batch, as in the MAML paper)."""
    if episode.query_x.shape[1] < 2:
        return False
    others_changed = episode.query_x.clone()
    others_changed[:, 1:] = others_changed[:, 1:].flip(1) * 0.5 + 0.25
    changed = Batch(episode.support_x, episode.support_y, others_changed, episode.query_y, episode.ways, episode.extras)
    method.eval()
    with torch.no_grad():
        return not torch.allclose(method(episode)[:, 0], method(changed)[:, 0], rtol=1e-4, atol=1e-5)


def model_cost(method: Method, episode: Batch) -> dict:
    """``parameters``, ``flops_per_episode``, ``flops_per_query`` (the episode's over its queries)
    and ``transductive``."""
    flops = episode_flops(method, episode)
    return {"parameters": parameter_count(method), "flops_per_episode": flops,
            "flops_per_query": flops / episode.query_y.shape[1], "transductive": is_transductive(method, episode)}
