"""glibc's handling of freed memory, which changes CPU training speed and resident memory.

No torch here: the CLI sets this up before any command, ``report`` included.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


MALLOC_STATE = {"keeps_freed_memory": False}


def keep_freed_memory() -> bool:
    """Has glibc keep freed blocks of up to 32 MiB for reuse instead of returning them to the OS.

    By default glibc maps large blocks afresh and unmaps them on free, and trims the heap,
    so a CPU training step whose tensors are a few MiB each (batched MAML: one per task and
    layer) touches new pages every iteration: up to tens of thousands of page faults per step
    on this project's machine, a 5-15 % slowdown that came and went with the heap's history.
    The price is a higher resident set: freed blocks stay mapped. ``CSN_BENCH_KEEP_FREED_MEMORY=0``
    leaves glibc's defaults. Returns whether the process now runs with the setting (glibc only).
    """
    libc = _glibc()
    if libc is None or os.environ.get("CSN_BENCH_KEEP_FREED_MEMORY", "1") == "0":
        return MALLOC_STATE["keeps_freed_memory"]  # nothing changed: an earlier call's setting stays
    applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    MALLOC_STATE["keeps_freed_memory"] = applied
    return applied


def release_freed_memory() -> None:
    """Hands memory kept for reuse back to the OS (``malloc_trim``), e.g. before a new peak is measured."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
