"""The memory estimate against sizes worked out by hand, and glibc's handling of freed memory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import resolve

from bench.engine import allocator
from bench.engine.memory import current_rss_bytes, estimate, reset_peak_memory
from bench.engine.setup import make_method
from bench.interface.method import Batch

REPO = Path(__file__).resolve().parent.parent

# ProtoNet's Conv-4 (64 filters, 2x2 max-pool) on one 84x84x3 image, float32, every leaf module's
# output: each block's conv, batch norm and ReLU at full size, then its pool; then the flattened 64x5x5.
PER_IMAGE = 64 * (3 * 84**2 + 42**2 + 3 * 42**2 + 21**2 + 3 * 21**2 + 10**2 + 3 * 10**2 + 5**2) + 64 * 5 * 5
PARAMETERS = (3 * 64 * 9 + 64) + 3 * (64 * 64 * 9 + 64) + 4 * 2 * 64  # convs with biases, batch-norm scales and shifts


def episode(support: int, queries: int) -> Batch:
    return Batch(torch.rand(1, support, 3, 84, 84), torch.arange(support).view(1, -1),
                 torch.rand(1, queries, 3, 84, 84), torch.arange(queries).view(1, -1) % support, support)


def test_estimate_of_a_protonet_episode_is_the_hand_count():
    method = make_method(resolve("protonet", "miniimagenet-5w1s", "smoke"), torch.device("cpu"))
    e = estimate(method, episode(5, 10), meta_batch=1)
    assert e.parameter_bytes == 4 * PARAMETERS
    assert e.optimizer_bytes == 3 * 4 * PARAMETERS
    assert e.activation_bytes_per_episode == 4 * 15 * PER_IMAGE
    assert e.training_bytes == 3 * 4 * PARAMETERS + 4 * 15 * PER_IMAGE


def test_estimate_scales_with_the_episodes_adapted_at_once_and_maml_graph():
    protonet = make_method(resolve("protonet", "miniimagenet-5w1s", "smoke"), torch.device("cpu"))
    one = estimate(protonet, episode(5, 10), meta_batch=1)
    chunked = estimate(protonet, episode(5, 10), meta_batch=32, chunk_tasks=8)
    assert chunked.episodes_at_once == 8
    assert chunked.training_bytes == one.optimizer_bytes + 8 * one.activation_bytes_per_episode
    maml = make_method(resolve("maml", "miniimagenet-5w1s", "smoke"), torch.device("cpu"))
    assert estimate(maml, episode(5, 10), meta_batch=4).graph_factor == 2.0
    first_order = make_method(resolve("maml", "miniimagenet-5w1s", "smoke", None, {"method": {"first_order": True}}),
                              torch.device("cpu"))
    assert estimate(first_order, episode(5, 10), meta_batch=4).graph_factor == 1.0


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
def test_freed_memory_is_kept_for_reuse_and_released_before_a_new_peak():
    assert allocator.keep_freed_memory() and allocator.MALLOC_STATE["keeps_freed_memory"]
    blocks = [torch.ones(2**21) for _ in range(16)]  # 16 x 8 MiB, each below the 32 MiB threshold
    held = current_rss_bytes()
    del blocks
    assert current_rss_bytes() > held - 32 * 2**20, "freed blocks were handed back to the OS"
    reset_peak_memory(torch.device("cpu"))
    assert current_rss_bytes() < held - 96 * 2**20, "memory kept for reuse would count in the next run's baseline"


FREE_AND_MEASURE = """
import torch
from bench.engine import allocator
from bench.engine.memory import current_rss_bytes
print(allocator.keep_freed_memory())
blocks = [torch.ones(2**21) for _ in range(16)]
held = current_rss_bytes()
del blocks
print((held - current_rss_bytes()) // 2**20)
"""


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
@pytest.mark.parametrize("setting,kept", [("1", True), ("0", False)])
def test_the_setting_decides_whether_a_fresh_process_keeps_freed_memory(setting, kept):
    env = {**os.environ, "CSN_BENCH_KEEP_FREED_MEMORY": setting}
    out = subprocess.run([sys.executable, "-c", FREE_AND_MEASURE], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    applied, released_mib = out.stdout.split()
    assert applied == str(kept)
    assert (int(released_mib) < 32) if kept else (int(released_mib) > 96)
