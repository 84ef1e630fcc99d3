"""A model's size and compute: parameters, and the FLOPs of predicting one test episode."""

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


def model_cost(method: Method, episode: Batch) -> dict:
    """``parameters``, ``flops_per_episode`` and ``flops_per_query`` (the episode's over its queries)."""
    flops = episode_flops(method, episode)
    return {"parameters": parameter_count(method), "flops_per_episode": flops,
            "flops_per_query": flops / episode.query_y.shape[1]}
