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


def finished_runs(out: Path) -> dict[str, Path]:
    """Config digest -> folder of each complete run under ``out/runs``."""
    done = {}
    for run_dir in sorted((out / "runs").glob("*")):
        try:
            if read_json(run_dir / "summary.json").get("status") == "complete":
                done[config_digest(read_json(run_dir / "config.json"))] = run_dir
        except (OSError, ValueError):
            continue  # incomplete or damaged: not finished
    return done


def sweep(
    configs: list[RunConfig], run_one: Callable[[RunConfig], Path], out: Path, progress: bool = True
) -> list[tuple[RunConfig, Path, bool]]:
    """Runs every config not already finished; returns (config, run folder, ran now)."""
    if not configs:
        raise UserError("the sweep grid is empty (no method supports the tasks given)")
    done = finished_runs(out)
    results = []
    for config in tqdm(configs, desc="sweep", disable=not progress, position=1, leave=True):
        digest = config_digest(config.to_dict())
        if digest in done:
            results.append((config, done[digest], False))
            continue
        run_dir = run_one(config)
        done[digest] = run_dir
        results.append((config, run_dir, True))
    return results
