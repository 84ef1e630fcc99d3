"""Training memory: measured (peak and current, on a GPU or the CPU) and estimated before a run
starts.

The estimate measures activations, not models them: one training episode of the real shape
goes through a copy of the method, and the outputs of every leaf module are added up. The
copy keeps the probe from touching the method's batch-norm statistics or recorded choices.
The graph factor covers what module outputs miss (MAML's second-order inner-gradient graph).
"""

from __future__ import annotations

import copy
import os
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.engine.allocator import release_freed_memory
from bench.interface.method import Batch, Method

MB = 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    parameter_bytes: int
    optimizer_bytes: int
    """Gradients and Adam's two moments: three more copies of the parameters."""
    activation_bytes_per_episode: int
    graph_factor: float
    episodes_at_once: int
    """The meta-batch, or ``train.chunk_tasks`` when the meta-batch is adapted in chunks."""

    @property
    def training_bytes(self) -> int:
        """What training adds to the memory in use when it starts (parameters already resident)."""
        activations = self.activation_bytes_per_episode * self.graph_factor * self.episodes_at_once
        return int(self.optimizer_bytes + activations)

    def describe(self) -> str:
        factor = f" x graph factor {self.graph_factor:g}" if self.graph_factor != 1 else ""
        return (
            f"memory estimate: parameters {self.parameter_bytes / MB:.1f} MiB, gradients + Adam "
            f"{self.optimizer_bytes / MB:.1f} MiB, activations {self.activation_bytes_per_episode / MB:.1f} MiB "
            f"per episode x {self.episodes_at_once} episodes{factor}: training adds about "
            f"{self.training_bytes / MB:.0f} MiB"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "training_bytes": self.training_bytes}


def module_output_bytes(method: Method, episode: Batch) -> int:
    """Bytes of every leaf module's outputs in one training forward of ``episode`` (one task)."""
    probe = copy.deepcopy(method).train()
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()  # per task, also inside vmap

    leaves = [m for m in probe.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        probe(episode)
    finally:
        for handle in handles:
            handle.remove()
    return total


def estimate(method: Method, episode: Batch, meta_batch: int, chunk_tasks: int = 0) -> MemoryEstimate:
    params = sum(p.numel() * p.element_size() for p in method.parameters())
    return MemoryEstimate(
        parameter_bytes=params,
        optimizer_bytes=3 * params,
        activation_bytes_per_episode=module_output_bytes(method, episode),
        graph_factor=method.graph_factor,
        episodes_at_once=min(chunk_tasks, meta_batch) if chunk_tasks else meta_batch,
    )


# -- measurement ------------------------------------------------------------------------


def current_rss_bytes() -> int:
    """Resident set size now (Linux); 0 where /proc is unavailable."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def current_memory_bytes(device: torch.device) -> int:
    """What the peak is measured against: CUDA memory allocated now, or the resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return current_rss_bytes()


def reset_peak_memory(device: torch.device) -> None:
    """Starts a new peak: CUDA's counter, or the process's RSS high-water mark (Linux), so
    that several runs in one process (demo, sweep) each report their own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    release_freed_memory()  # memory kept for reuse would hide the next run's growth
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak covers the whole process


def peak_memory_kind(device: torch.device) -> str:
    """What ``peak_memory_bytes`` measures on ``device``."""
    return "cuda_allocated" if device.type == "cuda" else "cpu_rss"


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA peak allocated on a GPU; the peak resident set size since the last reset on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
