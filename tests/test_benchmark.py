import pytest
import torch

from bench import env


@pytest.mark.skipif(env._glibc() is None, reason="glibc only")
def test_freed_memory_is_kept_for_reuse_and_released_before_a_new_peak():
    assert env.keep_freed_memory() and env.MALLOC_STATE["keeps_freed_memory"]
    blocks = [torch.ones(2**21) for _ in range(16)]  # 16 x 8 MiB, each below the 32 MiB threshold
    held = env.current_rss_bytes()
    del blocks
    assert env.current_rss_bytes() > held - 32 * 2**20, "freed blocks were handed back to the OS"
    env.reset_peak_memory(torch.device("cpu"))
    assert env.current_rss_bytes() < held - 96 * 2**20, "memory kept for reuse would count in the next run's baseline"
