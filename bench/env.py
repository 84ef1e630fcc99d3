"""What a result was produced with: code version, library versions, hardware, peak memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def pick_device(choice: str) -> torch.device:
    from bench.errors import UserError

    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _code_state() -> dict:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


# Read once, when the harness is imported: a long sweep runs the code it loaded, whatever is
# committed or edited while it runs.
CODE_STATE = _code_state()


def environment(device: torch.device) -> dict:
    import learn2learn

    return {
        **CODE_STATE,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "learn2learn": learn2learn.__version__,
        "platform": platform.platform(),
        "device": device_name(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "malloc_keeps_freed_memory": MALLOC_STATE["keeps_freed_memory"],
    }


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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


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
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # memory kept for reuse (keep_freed_memory) would hide the next run's growth
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak covers the whole process


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
