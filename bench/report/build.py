"""``cli.py report``: tables and plots built only from the files that runs wrote (no torch).

Everything comes from tidy pandas frames (one row per run, per test episode, per
validation) assembled by ``collect``; tables are pure functions of those frames.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import UserError
from bench.files import atomic_write_bytes
from bench.report.collect import collect
from bench.report.plots import copy_run_figures, plots
from bench.report.tables import (
    PAPER_DATA,
    accuracy_table,
    comparison_table,
    cost_table,
    latex,
    markdown,
    omniglot_table,
    paired_table,
    runs_table,
    selection_table,
    time_to_level_table,
)


def build_report(results: Path, out: Path) -> Path:
    c = collect(results)
    if c.runs.empty:
        raise UserError(f"no complete runs under {results / 'runs'}" + (f" ({len(c.incomplete)} incomplete)" if len(c.incomplete) else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the report folder {out}: {exc.strerror}") from None
    acc, paired, cost = accuracy_table(c), paired_table(c), cost_table(c)
    levels, selection, comparisons = time_to_level_table(c), selection_table(c), comparison_table(c)
    omniglot, omniglot_paper = omniglot_table(c, acc, paper_profiles=False), omniglot_table(c, acc, paper_profiles=True)
    figures = plots(c, acc, out) + copy_run_figures(c, out)
    paper = PAPER_DATA[0]  # the table files are named after its dataset: omniglot.csv, omniglot_paper.csv
    tables = {paper: omniglot, f"{paper}_paper": omniglot_paper, "accuracy": acc, "paired": paired,
              "comparisons": comparisons, "cost": cost, "time_to_level": levels, "selection": selection,
              "incomplete": c.incomplete, "runs": runs_table(c)}
    for name, df in tables.items():
        atomic_write_bytes(out / f"{name}.csv", df.to_csv(index=False).encode())
    tex = "".join(latex(df, f"{name} table") for name, df in tables.items() if name not in ("incomplete", "runs"))
    atomic_write_bytes(out / "report.tex", tex.encode())

    transductive = sorted(set(cost.loc[cost["transductive"], "method"]))
    unselected = int(c.candidates.loc[~c.candidates["selected"].astype(bool), "runs"].sum())
    md = ["# Benchmark report", "", f"Built from {len(c.runs) + unselected} complete runs under `{results}`"
          + (f"; {unselected} of them ran settings not selected on validation and appear only in the Selection table." if unselected else ".")]
    md += ["", "## Omniglot, as the CSN paper's table", "",
           "The Vinyals protocol (its character split, 1000 test episodes of 15 queries per class shared by every "
           "method). Each cell: the test accuracy in % over seeds and episodes, `+-` its two-level 95% interval "
           "(seed and episode variance; with one seed, the run's episode interval alone, which leaves out the "
           "seed spread), and the seed count. `published`: the paper's number for the same protocol and "
           "backbone; in parentheses, one of another or an unretrieved protocol, never a like-for-like "
           "comparison. `budget`: what bounded each run's training (`CPU-s`: the process's CPU seconds). "
           "`mixed code`: that comparison's runs differ in commit or thread count (Comparisons table). `training "
           "classes`: `train`, the 1,028 training characters (4,112 classes with rotations); `train+val`, those "
           "and the validation characters, 1,200 (4,800 classes), as the ProtoNets and Matching Networks papers "
           "trained, with the final weights tested.",
           "", "Short budgets (the profiles sized for this CPU):", "", markdown(omniglot),
           "The `paper` profiles (each paper's own budget):", "", markdown(omniglot_paper)]
    md += ["## Test metric", "",
           "Accuracy in %, MSE as is. `mean +- ci95`: the mean over seeds and test episodes with a 95% interval "
           "that counts both the seed-to-seed (training) variance and the episode variance (every seed is tested "
           "on the same episodes; `bench/stats.py: two_level_ci`); with one seed the seed variance is unknown and "
           "`ci95` is that run's episode interval, which understates the uncertainty. `run_ci95`: a single run's interval over its "
           "episodes alone, as one run reports it. `seed_std`: the spread of the per-run means. `budget`: what "
           "bounded training (iterations, or training seconds); `best_at_last_val`: runs whose best validation "
           "was their last (still improving, not converged). `published` and `difference`: only for a published "
           "number of the same protocol and backbone; other published numbers of the method on that dataset "
           "and shape are in `other_protocol`. `note`: where a one-seed run is set beside a published number, the seed "
           "spread its interval leaves out.", "", markdown(acc)]
    md += ["## Paired differences", "",
           "Methods of one comparison (same task, profile and tag, so the same kind of budget) tested on the "
           "same episodes, first minus second. `ci95`: two-level (each method's seed "
           "variance and the shared episodes); `episode_ci95`: over the seed-averaged per-episode differences "
           "alone (too narrow where seeds vary); `significant`: the two-level interval excludes 0. A difference "
           "measures the budgets in `budgets` as much as the methods.", "", markdown(paired)]
    md += ["## Comparisons", "",
           "Every comparison (task, profile and tag) with the commits and thread counts of its runs: `uniform` "
           "where all ran one commit with one thread count, so that no method gained from a speed-up another "
           "did not have.", "", markdown(comparisons)]
    md += ["## Selection", "",
           "Where runs of one method, profile and tag had different settings, the setting with the best mean "
           "validation metric over the seeds every candidate ran (`compared_seeds`) is reported above; test "
           "results played no part.", "", markdown(selection)]
    md += ["## Time to validation levels", "",
           "Training seconds (validation excluded) at which the validation metric first reached each level: "
           "the median over seeds; in CPU seconds (`CPU-s`) for runs whose budget counted them, which other "
           "work on the machine does not stretch, in wall seconds (`s`) otherwise.", "", markdown(levels)]
    md += ["## Cost", "",
           "`parameters` of the whole method (CSN: base, key and value networks); `mflops_per_query`: matrix "
           "multiplications and convolutions to predict one test episode (adaptation included), over its "
           "queries. Peak memory is the CUDA peak allocated on a GPU and the process's peak RSS on CPU. "
           + (f"Transductive at test (batch statistics of each test episode, so a prediction depends on the "
              f"other queries): {', '.join(transductive)}; the others classify each query on its own."
              if transductive else "No method is transductive at test."), "", markdown(cost)]
    md += ["## Incomplete runs", "", "Listed, never averaged in.", "", markdown(c.incomplete)]
    md += ["## Runs", "",
           f"`runs.csv` lists all {len(c.every)} complete runs, reported or not, with their candidate setting "
           "(where their group had several), their test metric with its episode interval, their best validation "
           "metric and whether it was their last, and what their times depend on: commit, threads and niceness, what bounded "
           "training, the training wall and CPU seconds, the wall time of the process that finished the run "
           "(`resumed`: the last of several), the machine's 1-minute load as it started and ended, and the "
           "command that started it (empty for runs made before runs recorded it).", ""]
    md += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())
    return out / "report.md"
