"""Captured steps: the training step's forward and loss, and the evaluation forward, compiled
once for their fixed episode shapes and replayed (``torch.compile``, mode ``reduce-overhead``:
CUDA graphs on a GPU, so a step costs one launch instead of one per kernel; on the CPU a
compiled graph without them). Chosen by ``train.compile``: ``none``, ``graphs`` or ``auto``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from bench.errors import UserError
from bench.interface.method import Batch, Method

Forward = Callable[[Batch], torch.Tensor]
ForwardLoss = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Steps:
    """The training step's forward-and-loss and the evaluation forward in use, and why."""

    forward_loss: ForwardLoss
    evaluate: Forward
    mode: str  # "none" or "graphs"
    reason: str


def eager(method: Method) -> Steps:
    return Steps(lambda batch: _forward_loss(method, batch), method, "none", "eager")


def _forward_loss(method: Method, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    outputs = method(batch)
    return outputs, method.train_loss(outputs, batch)


def captured(method: Method) -> Steps:
    """Compiled steps. The evaluation forward stays eager where the method adapts by gradients at test."""
    compile_ = lambda fn: torch.compile(fn, mode="reduce-overhead", dynamic=False)  # noqa: E731
    evaluate = method if method.capture_blocker(training=False) else compile_(method.__call__)
    return Steps(compile_(lambda batch: _forward_loss(method, batch)), evaluate, "graphs", "train.compile=graphs")


def choose(setting: str, method: Method, batch: Batch, device: torch.device) -> Steps:
    """The steps for ``train.compile``: ``graphs`` where the method's training step can be
    captured (a one-line error where it cannot); ``auto`` times eager and captured
    forward-and-backward passes of ``batch`` on a GPU and keeps the faster, and stays eager on
    the CPU (compiling takes tens of seconds there and the steps gain little)."""
    blocker = method.capture_blocker(training=True)
    if setting == "none":
        return eager(method)
    if setting == "graphs":
        if blocker:
            raise UserError(f"train.compile=graphs: {blocker}; use train.compile=none or auto")
        return captured(method)
    if blocker:
        return _with_reason(eager(method), f"auto: eager ({blocker})")
    if device.type != "cuda":
        return _with_reason(eager(method), "auto: eager on the CPU")
    timings = {}
    kept = {name: b.clone() for name, b in method.named_buffers()}  # the probe must not move batch-norm statistics
    for steps in (eager(method), captured(method)):
        best = float("inf")
        for _ in range(3):  # the first calls compile and record the graph
            torch.compiler.cudagraph_mark_step_begin()
            start = time.perf_counter()
            _, loss = steps.forward_loss(batch)
            torch.autograd.grad(loss, [p for p in method.parameters() if p.requires_grad], allow_unused=True)
            torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        timings[steps.mode] = (best, steps)
    with torch.no_grad():
        for name, b in method.named_buffers():
            b.copy_(kept[name])
    mode = min(timings, key=lambda m: timings[m][0])
    return _with_reason(timings[mode][1], f"auto: {mode} timed faster ({timings['graphs'][0]:.4f} s captured, "
                                           f"{timings['none'][0]:.4f} s eager per step)")


def _with_reason(steps: Steps, reason: str) -> Steps:
    steps.reason = reason
    return steps
