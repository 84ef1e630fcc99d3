"""Copies the finished runs of a grid into a committed results folder: the small files of every
complete run at rest (no checkpoints, no lock file), compacted (RunFolder.compact), with their
rows of the grid's index.jsonl. Runs still training or interrupted stay behind; a run already
there is left as it is, so carrying again after more runs finished adds only those.

    python scripts/carry_runs.py ../runs-8c3b924/results/col-20w5s results/inflight/col-20w5s
    python scripts/carry_runs.py --flat results/inflight/col-20w5s results/reference

Without --flat the grid's layout is kept (a column's one sweep folder per job); with it every run
goes into DEST/runs/ and its index row into DEST/index.jsonl, the layout `report` reads.

With --unfinished, a run stopped half-way that can resume (it has its state checkpoint) is copied
too, whole and with its checkpoints, so that a run longer than a session can go on from the
repository when the machine is not kept (into results/inflight/unfinished/, whose checkpoints
git tracks): copy its folder back into the grid and run the same sweep (or `cli.py run
--resume`). Carrying again replaces that copy with the run's newer state, and with its small
files alone once it has finished."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.files import append_jsonl, read_jsonl  # noqa: E402
from bench.results.runfolder import INDEX, LOCK, RUNS, RunFolder  # noqa: E402

LEFT_BEHIND = ("*.pt", LOCK)  # checkpoints (the report never reads them) and lock files


def runs_at_rest(grid: Path) -> list[RunFolder]:
    """Every run folder under ``grid`` (in any ``runs/`` folder at any depth) that no process holds."""
    folders = (RunFolder(p) for p in sorted(grid.rglob(f"{RUNS}/*")) if p.is_dir() and p.parent.name == RUNS)
    return [f for f in folders if not f.in_use()]


def carry(grid: Path, dest: Path, flat: bool = False, unfinished: bool = False) -> list[Path]:
    """Copies the finished runs at rest in ``grid`` into ``dest`` (and, with ``unfinished``, the
    resumable ones with their checkpoints); the run folders written."""
    carried = []
    for run in runs_at_rest(grid):
        complete = run.is_complete()
        if not (complete or (unfinished and run.has_state())):
            continue
        results = dest if flat else dest / run.results_root.relative_to(grid)
        target = results / RUNS / run.name
        if target.exists():
            if RunFolder(target).is_complete():
                continue  # carried finished before
            shutil.rmtree(target)  # an earlier unfinished copy: the run has moved on since
        if not complete:
            shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(LOCK))
        else:
            shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
            RunFolder(target).compact()
            index = run.results_root / INDEX
            for row in read_jsonl(index) if index.is_file() else []:
                if row.get("run") == run.name:
                    append_jsonl(results / INDEX, row)
        carried.append(target)
    return carried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="the grid's results folder")
    parser.add_argument("dest", type=Path, help="where the finished runs go")
    parser.add_argument("--flat", action="store_true", help="every run into DEST/runs/ (the layout `report` reads)")
    parser.add_argument("--unfinished", action="store_true",
                        help="also the runs stopped half-way that can resume, whole, with their checkpoints")
    args = parser.parse_args()
    if not args.grid.is_dir():
        sys.exit(f"error: {args.grid} is not a folder")
    carried = carry(args.grid, args.dest, args.flat, args.unfinished)
    print("\n".join(str(p) for p in carried) or "nothing new to carry")


if __name__ == "__main__":
    main()
