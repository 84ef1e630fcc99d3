"""``cli.py sweep``: a grid of runs, one at a time, skipping runs already finished with the same config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from bench.errors import UserError
from bench.runconfig import RunConfig
from bench.store import read_json


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def scan_runs(out: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Config digest -> folder, for complete runs and for interrupted runs that can resume."""
    done, resumable = {}, {}
    for run_dir in sorted((out / "runs").glob("*")):
        try:
            digest = config_digest(read_json(run_dir / "config.json"))
        except (OSError, ValueError):
            continue  # not a run folder, or a damaged one
        try:
            complete = read_json(run_dir / "summary.json").get("status") == "complete"
        except (OSError, ValueError):
            complete = False
        if complete:
            done[digest] = run_dir
        elif (run_dir / "state.pt").is_file():
            resumable[digest] = run_dir
    return done, resumable


def sweep(
    configs: list[RunConfig], run_one: Callable[[RunConfig, Path | None], Path], out: Path, progress: bool = True
) -> list[tuple[RunConfig, Path, str]]:
    """Runs every config not already finished, resuming interrupted ones; returns
    (config, run folder, what happened: ``ran``, ``resumed`` or ``finished``)."""
    if not configs:
        raise UserError("the sweep grid is empty (no method supports the tasks given)")
    done, resumable = scan_runs(out)
    results = []
    for config in tqdm(configs, desc="sweep", disable=not progress, position=1, leave=True):
        digest = config_digest(config.to_dict())
        if digest in done:
            results.append((config, done[digest], "finished"))
            continue
        resume = resumable.pop(digest, None)
        run_dir = run_one(config, resume)
        done[digest] = run_dir
        results.append((config, run_dir, "resumed" if resume else "ran"))
    return results
