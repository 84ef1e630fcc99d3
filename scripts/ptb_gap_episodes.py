"""How much of the first PTB gap measurement is its validation episodes' luck (a one-off check).

The measurement in ``results/reference/ptb-gap`` was made before ``scripts/ptb_gap.py`` scored its
variants on the base task's episodes: each variant task (``ptb-5w1s-window-81``, ...) drew its own
100 validation episodes, so its change from ptb-5w1s mixes the effect of its rule with the
difference between two sets of episodes, shared by every seed and method of the variant. This
scores each given run's best checkpoint on its own validation episodes (which must give its
recorded ``best_val`` again) and on ptb-5w1s's, read under the variant's rule, and prints both.
Only runs whose ``best.pt`` is still at hand can be checked.

    CSN_BENCH_DATA=../shared/data .venv/bin/python scripts/ptb_gap_episodes.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data.episodes import eval_episodes  # noqa: E402
from bench.data.storage import resolve_root  # noqa: E402
from bench.data.tasks import TASKS, get_task  # noqa: E402
from bench.engine.evaluate import evaluate  # noqa: E402
from bench.engine.runconfig import open_run  # noqa: E402
from bench.engine.setup import load_weights, set_up  # noqa: E402
from methods import METHODS  # noqa: E402

BASE = "ptb-5w1s"
# The variant tasks as that measurement registered them (ptb_gap.py at 5b5925b and 021144c).
FIRST_VARIANTS = {"visible-context": {"split": "vinyals-visible-context", "vocabulary": 10_001},
                  "window-21": {"sequence_length": 21}, "window-81": {"sequence_length": 81},
                  "sentence-start": {"split": "vinyals-sentence-start"}}


def register_first_variants() -> None:
    for label, change in FIRST_VARIANTS.items():
        name = f"{BASE}-{label}"
        if name not in TASKS:
            TASKS.add(name, dataclasses.replace(get_task(BASE), name=name, **change))


def accuracy(setup, task_of_episodes) -> float:
    """Mean accuracy on the validation episodes of ``task_of_episodes``, read by the run's sources."""
    settings, source = setup.config.settings, setup.sources["val"]
    episodes = eval_episodes(source, task_of_episodes, "val", task_of_episodes.val_episodes, settings.eval.seed)
    rows = evaluate(setup.method, source, episodes, setup.task, setup.place, settings.eval.batch)
    return statistics.mean(r["accuracy"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    register_first_variants()
    root = resolve_root(args.data_root)
    print("| run | recorded best val % | own episodes % | ptb-5w1s's episodes % | difference |\n|---|---|---|---|---|")
    for path in args.runs:
        folder, config = open_run(path, METHODS.get)
        setup = set_up(config, root, device="cpu")
        load_weights(setup.method, folder.load_best(config.method), folder)
        own, base = accuracy(setup, setup.task), accuracy(setup, get_task(BASE))
        print(f"| {folder.name} | {100 * folder.summary().best_val:.2f} | {100 * own:.2f} | {100 * base:.2f} "
              f"| {100 * (base - own):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
