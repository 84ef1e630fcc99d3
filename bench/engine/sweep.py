"""``cli.py sweep``: a grid of runs, one at a time, skipping runs already finished with the same config."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tqdm import tqdm

from bench.engine.runconfig import RunConfig
from bench.errors import UserError
from bench.results.runfolder import RunFolder, config_digest, run_folders


def scan_runs(out: Path) -> tuple[dict[str, RunFolder], dict[str, RunFolder]]:
    """Config digest -> folder, for complete runs and for interrupted runs that can resume."""
    done, resumable = {}, {}
    for folder in run_folders(out):
        digest = folder.digest()
        if digest is None:
            continue  # not a run folder, or a damaged one
        if folder.is_complete():
            done[digest] = folder
        elif folder.has_state():
            resumable[digest] = folder
    return done, resumable


def sweep(
    configs: list[RunConfig], run_one: Callable[[RunConfig, RunFolder | None], RunFolder], out: Path, progress: bool = True
) -> list[tuple[RunConfig, RunFolder, str]]:
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
        folder = run_one(config, resume)
        done[digest] = folder
        results.append((config, folder, "resumed" if resume else "ran"))
    return results
