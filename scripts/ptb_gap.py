"""What moves PTB one-shot accuracy: each choice the Matching Networks paper leaves open, measured
on validation only (issue 23's "explain the gap").

Each variant is ptb-5w1s with one choice changed, registered here under its own name (no task
YAML: the variants are for this measurement, not for comparisons):

- ``visible-context``: held-out words keep their own token where another word is blanked (the
  tasks make them ``<unk>`` everywhere);
- ``window-21`` and ``window-81``: the sentence window around the blank (the tasks use 41 tokens);
- ``sentence-start``: the window starts at the sentence's first token, so the blank sits where it
  falls in the sentence (the tasks centre the window on the blank, always at position 20);
- ``text-bow-encoder``: the method's encoder is a bag of words (mean word embedding and a dense
  layer) instead of text-cnn: the paper's encoder is only "a simple encoding model".

The query count is not a variant: every method here scores each query on its own (text-cnn has no
batch norm, and the report's transductive column says no for every method on PTB), so 4 queries
per word instead of 1 changes the interval, not what is estimated.

Every variant task draws ptb-5w1s's validation (and test) episodes (``TaskSpec.episodes_of``): the
same words and sentences, read under its rule, so that a change is the rule's and not the luck of
another set of episodes. (A first measurement let each variant draw its own, which moved its
number by as much as the variant's change: results/reference/README.md, "What moves PTB accuracy".)

Every variant is trained with each method's ``quick`` profile for each seed; the number kept is
the best validation accuracy (``summary.json`` ``best_val``, on the variant's 100 validation
episodes of 20 queries); the test split is scored on only ``--test-episodes`` episodes and never
read. Writes ``<out>/ptb_gap.csv`` (one row per run) and prints the table of means. As a sweep,
it reads the runs it finds finished under ``--out`` and resumes interrupted ones, so a stopped
measurement carries on where it was.

    CSN_BENCH_DATA=../shared/data .venv/bin/python scripts/ptb_gap.py --methods protonet --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data.storage import resolve_root  # noqa: E402
from bench.data.tasks import TASKS, get_task  # noqa: E402
from bench.engine.runconfig import CommandLine  # noqa: E402
from bench.engine.sweep import run_grid  # noqa: E402
from bench.engine.sweep.executor import InProcess  # noqa: E402
from bench.engine.sweep.plan import DONE  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.results.runfolder import config_digest  # noqa: E402
from methods import METHODS  # noqa: E402

BASE = "ptb-5w1s"
VISIBLE_VOCABULARY = 10_001  # <pad>, <blank>, <unk> and all 9,998 words


def variants() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Variant label -> (registered task name, settings changed): a task variant is the base task
    changed and registered under its own name, drawing the base task's validation episodes."""
    base = get_task(BASE)
    specs = {"visible-context": dataclasses.replace(base, split="vinyals-visible-context", vocabulary=VISIBLE_VOCABULARY),
             "window-21": dataclasses.replace(base, sequence_length=21),
             "window-81": dataclasses.replace(base, sequence_length=81),
             "sentence-start": dataclasses.replace(base, split="vinyals-sentence-start")}
    named = {"tasks-rule": (BASE, ())}  # 41 tokens centred on the blank, held-out words <unk>
    for label, spec in specs.items():
        # scored on the base task's own validation episodes (the same words and sentences, read
        # under the variant's rule), so that no variant's number carries its own episodes' luck
        name = f"{BASE}@{label}"
        if name not in TASKS:
            TASKS.add(name, dataclasses.replace(spec, name=name, episodes_of=BASE))
        named[label] = (name, ())
    named["text-bow-encoder"] = (BASE, ("method.backbone=text-bow",))
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="protonet")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=None, help="Comma-separated variants to run (default: all)")
    parser.add_argument("--test-episodes", type=int, default=10)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="results/ptb-gap")
    args = parser.parse_args()
    out, root = Path(args.out), resolve_root(args.data_root)
    chosen = variants()
    if args.variants:
        unknown = set(args.variants.split(",")) - set(chosen)
        if unknown:
            sys.exit(f"error: unknown variants {', '.join(sorted(unknown))}; known: {', '.join(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    grid = [(label, task, extra, method, int(seed)) for label, (task, extra) in chosen.items()
            for method in args.methods.split(",") for seed in args.seeds.split(",")]
    configs = [CommandLine(args.profile, assignments=(f"eval.episodes={args.test_episodes}", *extra), seed=seed)
               .config(METHODS.get(method), task) for _, task, extra, method, seed in grid]
    # As a sweep: a run finished before is read, not trained again; an interrupted one resumes.
    try:
        outcomes = list(run_grid(configs, out, InProcess(root, None, progress=False)))
    except UserError as exc:  # interrupted (run it again to carry on) or refused
        sys.exit(f"error: {exc}")
    if failed := [o for o in outcomes if o.what not in DONE]:
        sys.exit(f"error: {len(failed)} runs did not finish: {failed[0].error}")
    folders = {config_digest(o.config.to_dict()): o.folder for o in outcomes}
    rows = []
    for (label, task, _, method, seed), config in zip(grid, configs):
        summary = folders[config_digest(config.to_dict())].summary()
        rows.append({"variant": label, "task": task, "method": method, "seed": seed, "best_val": summary.best_val,
                     "run": summary.run})
        print(f"{label:48s} {method:12s} seed {seed}: validation {100 * summary.best_val:.2f} %", flush=True)
    with open(out / "ptb_gap.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("\n| variant | method | validation accuracy % (mean over seeds) | sd | seeds |\n|---|---|---|---|---|")
    for label in chosen:
        for method in args.methods.split(","):
            values = [100 * r["best_val"] for r in rows if r["variant"] == label and r["method"] == method]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            print(f"| {label} | {method} | {statistics.mean(values):.2f} | {sd:.2f} | {len(values)} |")


if __name__ == "__main__":
    main()
