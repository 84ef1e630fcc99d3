"""What a result was produced with: code version, library versions, hardware."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from bench.engine.allocator import MALLOC_STATE
from bench.engine.device import device_name
from bench.engine.invocation import command

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


CODE_STATE_VARIABLE = "CSN_BENCH_CODE_STATE"


def _code_state() -> dict:
    """The git commit and dirty flag of the checkout; a copy of the code without git (a Ray
    task's) gets its sweep's from ``$CSN_BENCH_CODE_STATE``."""
    if os.environ.get(CODE_STATE_VARIABLE):
        try:
            state = json.loads(os.environ[CODE_STATE_VARIABLE])
            return {"git_commit": state.get("git_commit"), "git_dirty": state.get("git_dirty")}
        except (ValueError, AttributeError):
            pass
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


# Read once, when the harness is imported: a long sweep runs the code it loaded, whatever is
# committed or edited while it runs.
CODE_STATE = _code_state()


def commit_label(state: dict) -> str:
    """``0123456789``, with `` (dirty)`` for uncommitted changes, of a record holding ``CODE_STATE``'s keys."""
    return (state.get("git_commit") or "unknown")[:10] + (" (dirty)" if state.get("git_dirty") else "")


def method_code(cls: type) -> dict:
    """Where a method's code came from: ``built-in`` (this checkout, at ``git_commit``); an
    installed ``distribution`` and its ``version``; or the ``path`` of its package; with the
    SHA-256 of the package's files (``.py`` and ``.yaml``, by relative path) outside this checkout."""
    from importlib import metadata

    from bench.files import file_sha256

    top = cls.__module__.partition(".")[0]
    init = Path(sys.modules[top].__file__ or "").resolve()
    package = init.parent
    if package == REPO / "methods":  # this harness's own methods package, checked out or installed
        return {"source": "built-in", "module": cls.__module__}
    files = sorted(p for p in package.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts)
    digest = hashlib.sha256("".join(f"{p.relative_to(package)} {file_sha256(p)}\n" for p in files).encode()).hexdigest()
    for name in metadata.packages_distributions().get(top, []):
        # Only a distribution that installed this very file (a folder's leftover egg-info did not).
        distribution = metadata.distribution(name)
        if init in {Path(distribution.locate_file(f)).resolve() for f in distribution.files or []}:
            return {"source": "distribution", "distribution": name, "version": distribution.version,
                    "module": cls.__module__, "sha256": digest}
    return {"source": "path", "path": str(package), "module": cls.__module__, "sha256": digest}


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
        # what else the machine was doing as the run started (1, 5 and 15-minute load averages)
        "load_average": list(os.getloadavg()),
        # the run's scheduling priority: under load a niced process (a Ray worker's child runs at
        # Ray's worker niceness, 15 by default) gets less of the CPU, so its wall times stretch more
        "niceness": os.nice(0),
        "command": command(),
    }
