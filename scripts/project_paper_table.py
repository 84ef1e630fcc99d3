"""Projects the wall time of the Omniglot paper table (3 methods x 4 tasks x 3 seeds) on one
device from `bench` records: python scripts/project_paper_table.py results/bench/*.json

Per method, seconds per iteration of its `paper` profile on omniglot-5w1s (eager; MAML second
order) times the paper profile's iterations of each task, for 3 seeds; then divided by the
throughput gain of running several at once (aggregate iterations per second at the best number
of concurrent runs over one run, measured on the quick profile). 20-way and 5-shot iterations
cost more than 5-way 1-shot ones, so the figures are lower bounds; validation and testing are
not counted.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine.runconfig import resolve  # noqa: E402
from methods import METHODS  # noqa: E402

TASKS = ("omniglot-5w1s", "omniglot-5w5s", "omniglot-20w1s", "omniglot-20w5s")


def main(paths: list[str]) -> None:
    per_iteration, gain = {}, {}
    for path in paths:
        record = json.loads(Path(path).read_text())
        for row in record["rows"]:
            config = row["config"]
            method, settings = config["method"], config["method_settings"]
            if config["profile"] == "paper" and row.get("jobs", 1) == 1 and row.get("compile", "none") == "none" \
                    and not settings.get("first_order", False):
                per_iteration[method] = row["seconds_per_iteration"]
            if config["profile"] == "quick" and row.get("compile", "none") == "none":
                gain.setdefault(method, {})[row["jobs"]] = row["iterations_per_second"]
    total_sequential = total_concurrent = 0.0
    print(f"{'method':10s} {'s/iter':>8s} {'iterations (4 tasks x 3 seeds)':>32s} {'hours, one at a time':>21s} "
          f"{'gain (jobs)':>12s} {'hours, concurrent':>18s}")
    for method, seconds in sorted(per_iteration.items()):
        iterations = 3 * sum(resolve(METHODS.get(method), task, "paper", None, {"seed": 0}).settings.train.iterations for task in TASKS)
        levels = gain.get(method, {1: 1.0})
        best = max(levels, key=lambda n: levels[n])
        factor = levels[best] / levels.get(1, levels[best])
        hours = iterations * seconds / 3600
        total_sequential += hours
        total_concurrent += hours / factor
        print(f"{method:10s} {seconds:8.4f} {iterations:32d} {hours:21.2f} {factor:8.2f} ({best}) {hours / factor:18.2f}")
    print(f"{'all':10s} {'':8s} {'':32s} {total_sequential:21.2f} {'':12s} {total_concurrent:18.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
