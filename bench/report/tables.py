"""Report tables: pure functions of the collected frames, and their Markdown and LaTeX forms."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.report.collect import Collected
from bench.stats import mean_ci95, paired_two_level_ci, two_level_ci

PUBLISHED = Path(__file__).with_name("published.yaml")


def published() -> pd.DataFrame:
    """The published numbers (a new frame each call: callers may change theirs)."""
    return pd.DataFrame(_published_rows())


@functools.cache
def _published_rows() -> tuple[dict, ...]:
    # Parsed once per process: pure-Python YAML took a third of a small report's time, three times over.
    return tuple(yaml.safe_load(PUBLISHED.read_text()))


def _scale(runs: pd.DataFrame) -> float:
    """Accuracies are shown in %, MSEs as they are."""
    return 100.0 if runs["metric"].iloc[0] == "accuracy" else 1.0


def episode_matrix(c: Collected, task: str, label: str) -> tuple[np.ndarray, tuple]:
    """[seeds, episodes] test values of one task and method label, and the episodes' fingerprints.

    Raises:
        ValueError: where the seeds were not tested on the same episodes.
    """
    eps = c.episodes[(c.episodes.task == task) & (c.episodes.label == label)].sort_values(["run", "episode"])
    per_run = [g for _, g in eps.groupby("run", sort=True)]
    fingerprints = {tuple(g["fingerprint"]) for g in per_run}
    if len(fingerprints) != 1:
        raise ValueError(f"the runs of {label} on {task} were tested on different episodes")
    return np.array([g["value"].to_numpy() for g in per_run]), fingerprints.pop()


def _published_for(pub: pd.DataFrame, row: pd.Series) -> tuple[pd.Series | None, pd.DataFrame]:
    """The published number of the run's own protocol and backbone, and the method's others on that shape."""
    same_shape = pub[(pub.method == row["method"]) & (pub.dataset == row["dataset"]) & (pub.ways == row["ways"])
                     & (pub.shots == row["shots"])]
    exact = same_shape[(same_shape.protocol == row["protocol"]) & (same_shape.backbone == row["backbone"])]
    return (exact.iloc[0] if len(exact) else None), same_shape.drop(exact.index)


def _source(ref: pd.Series) -> str:
    kind = "" if ref["source_kind"] == "paper" else ", secondary"
    return f"{ref['source']} ({ref['protocol']}{kind}{', unverified' if ref['unverified'] else ''})"


def accuracy_table(c: Collected) -> pd.DataFrame:
    """Per task and method: the mean test metric with its two-level 95% CI (seeds and episodes),
    a single run's episode CI, the seed spread, the budget, and the published numbers."""
    pub = published()
    rows = []
    for (task, label), runs in c.runs.groupby(["task", "label"], sort=True):
        scale, first = _scale(runs), runs.iloc[0]
        matrix, _ = episode_matrix(c, task, label)
        interval = two_level_ci(matrix)
        ref, others = _published_for(pub, first)
        rows.append({
            "task": task, "protocol": first["protocol"], "method": label, "metric": first["metric"],
            "mean": scale * interval.mean, "ci95": scale * interval.half_width,
            "run_ci95": scale * runs["ci95"].mean(),
            "seed_std": scale * runs["value"].std(ddof=1) if len(runs) > 1 else math.nan,
            "seeds": len(runs), "episodes": matrix.shape[1], "budget": _same(runs["budget"]),
            "best_at_last_val": f"{int(runs['best_at_last_validation'].sum())}/{len(runs)}",
            "published": ref["value"] if ref is not None else math.nan,
            "difference": scale * interval.mean - ref["value"] if ref is not None else math.nan,
            "other_protocol": "; ".join(f"{r.value:g} ({r.protocol}, {r.backbone})" for r in others.itertuples()),
            "source": _source(ref) if ref is not None else "",
        })
    table = pd.DataFrame(rows)
    table["note"] = [_one_seed_note(table, r) for r in table.itertuples()]
    return table


def _one_seed_note(table: pd.DataFrame, row) -> str:
    """For a one-seed row set beside a published number: the seed spread its interval leaves out,
    as the same method's runs of several seeds on that dataset measured it."""
    if row.seeds != 1 or math.isnan(row.published):
        return ""
    method = row.method.split()[0]
    dataset = row.task.split("-")[0]
    spread = table[(table["method"].str.split().str[0] == method) & (table["seeds"] > 1)
                   & (table["task"].str.split("-").str[0] == dataset)]["seed_std"]
    if spread.empty:
        return "1 seed: ci95 leaves out the seed spread (not measured for this method)"
    return f"1 seed: ci95 leaves out the seed spread ({method}'s seed_std in its runs of several seeds: {spread.min():.2f}-{spread.max():.2f})"


def _same(values: pd.Series) -> str:
    return ", ".join(sorted(set(values)))


PAIRED_COLUMNS = ["task", "first", "second", "difference", "ci95", "episode_ci95", "significant", "seeds", "budgets"]


def paired_table(c: Collected) -> pd.DataFrame:
    """Per comparison (task, profile and tag: runs given the same budget) and pair of methods
    tested on the same episodes: mean difference (first - second) with its two-level 95% CI (both
    methods' seed variance and the shared episodes), the CI of the seed-averaged per-episode
    differences alone, and whether the two-level CI excludes 0."""
    rows = []
    for (task, _, _), runs in c.runs.groupby(["task", "profile", "tag"], sort=True):
        scale = _scale(runs)
        matrices = {label: episode_matrix(c, task, label) for label in sorted(runs["label"].unique())}
        budgets = runs.groupby("label")["budget"].agg(_same)
        labels = sorted(matrices)
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                (xa, fa), (xb, fb) = matrices[a], matrices[b]
                if fa != fb:
                    continue
                interval = paired_two_level_ci(xa, xb)
                _, episode_ci = mean_ci95((xa.mean(0) - xb.mean(0)).tolist())
                rows.append({
                    "task": task, "first": a, "second": b, "difference": scale * interval.mean,
                    "ci95": scale * interval.half_width, "episode_ci95": scale * episode_ci,
                    "significant": abs(interval.mean) > interval.half_width,
                    "seeds": f"{xa.shape[0]} / {xb.shape[0]}", "budgets": f"{budgets[a]} / {budgets[b]}",
                })
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def cost_table(c: Collected) -> pd.DataFrame:
    """Per task and method: model size and test compute, training time (wall, and the process's CPU
    seconds, which load on the machine does not stretch; NaN for runs from before they were
    recorded) and test time, peak memory."""
    return c.runs.groupby(["task", "label"], sort=True).agg(
        backbone=("backbone", "first"), batch_norm=("batch_norm", "first"), transductive=("transductive", "first"),
        parameters=("parameters", "first"), mflops_per_query=("flops_per_query", lambda f: f.iloc[0] / 1e6),
        runs=("run", "count"), iterations=("iterations", "mean"), train_seconds=("train_seconds", "mean"),
        train_cpu_seconds=("train_cpu_seconds", "mean"),
        seconds_per_iteration=("seconds_per_iteration", "mean"), episodes_per_second=("episodes_per_second", "mean"),
        test_ms_per_episode=("test_ms_per_episode", "mean"), peak_mib=("peak_mib", "max"),
        peak_kind=("peak_kind", "first"), device=("device", _same),
    ).reset_index().rename(columns={"label": "method"})


RUN_COLUMNS = ["run", "task", "method", "setting", "seed", "reported", "value", "ci95", "best_val", "best_at_last_validation",
               "commit", "threads", "niceness", "budget", "iterations", "train_seconds", "train_cpu_seconds", "process_seconds", "resumed", "load_start", "load_end", "device",
               "command"]


def runs_table(c: Collected) -> pd.DataFrame:
    """Every complete run, reported or not: its candidate setting where its group had several, its
    test metric with the episode interval, its best validation metric (what the selection chose
    on) and whether that was its last, and what a reviewer needs to weigh its times: the code (commit,
    threads, niceness), what bounded it, its training wall and CPU seconds, the wall time of the
    process that finished it (``resumed``: the last of several), the machine's load as it started
    and ended, and the command that started it ('' for runs made before runs recorded it)."""
    if c.every.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    scale = np.where(c.every["metric"] == "accuracy", 100.0, 1.0)  # accuracies in %, as in every table
    runs = c.every.assign(method=c.every["label"], reported=c.every["run"].isin(c.runs["run"]),
                          value=c.every["value"] * scale, ci95=c.every["ci95"] * scale, best_val=c.every["best_val"] * scale)
    runs = runs.astype({"threads": "Int64", "niceness": "Int64"})  # integers, empty where unrecorded
    return runs.sort_values(["task", "method", "setting_rank", "seed", "run"], key=_ledger_order)[RUN_COLUMNS].reset_index(drop=True)


def _ledger_order(column: pd.Series) -> pd.Series:
    return column.map(label_rank) if column.name == "method" else column


LEVELS = {"accuracy": (0.8, 0.9, 0.95, 0.97, 0.98), "mse": (1.0, 0.5, 0.4, 0.3)}


def curve_clock(runs: pd.DataFrame, curves: pd.DataFrame) -> str:
    """The curves' column to measure ``runs``' training time with: ``train_cpu_seconds`` where every
    run's budget counted CPU seconds (so that other work on the machine does not stretch it) and
    every validation recorded them, else ``train_seconds`` (wall)."""
    cpu = runs["budget"].str.endswith("CPU-s").all() and curves["train_cpu_seconds"].notna().all()
    return "train_cpu_seconds" if cpu else "train_seconds"


def time_to_level_table(c: Collected) -> pd.DataFrame:
    """Training seconds at which each run's validation metric first reached each level (at
    least, for accuracy; at most, for MSE): the median over seeds, or how many seeds never did;
    in CPU seconds (``CPU-s``) for runs of a CPU-second budget. Levels that no method reached are
    left out."""
    rows = []
    for (task, label), runs in c.runs.groupby(["task", "label"], sort=True):
        metric = runs["metric"].iloc[0]
        clock = curve_clock(runs, c.curves[c.curves.run.isin(runs["run"])])
        unit = "CPU-s" if clock == "train_cpu_seconds" else "s"
        row = {"task": task, "method": label}
        for level in LEVELS[metric]:
            firsts = []
            for run in runs["run"]:
                curve = c.curves[c.curves.run == run].sort_values("iteration")
                reached = curve[curve["value"] >= level] if metric == "accuracy" else curve[curve["value"] <= level]
                firsts.append(reached[clock].iloc[0] if len(reached) else math.nan)
            done = [f for f in firsts if not math.isnan(f)]
            name = f"{100 * level:g}%" if metric == "accuracy" else f"mse {level:g}"
            row[name] = (f"{np.median(done):.0f} {unit}" + (f" ({len(firsts) - len(done)} of {len(firsts)} never)"
                                                             if len(done) < len(firsts) else "")) if done else "never"
        rows.append(row)
    table = pd.DataFrame(rows)
    reached = [col for col in table.columns[2:] if table[col].map(lambda v: isinstance(v, str) and v != "never").any()]
    return table[["task", "method", *reached]].fillna("")


COMPARISON_COLUMNS = ["task", "profile", "tag", "methods", "runs", "budgets", "commits", "threads", "uniform", "load"]


def comparison_table(c: Collected) -> pd.DataFrame:
    """Per comparison (task, profile and tag): its methods, budgets, and the commits and thread
    counts its runs were made with; ``uniform`` only where every run shares one known commit and
    one thread count, so that no method gained from a speed-up another lacked; ``load``: the range
    of the machine's 1-minute load average at the starts and ends of the runs that recorded it."""
    rows = []
    for (task, profile, tag), runs in c.runs.groupby(["task", "profile", "tag"], sort=True):
        commits = sorted(set(runs["commit"].map(lambda v: v or "unknown")))
        threads = sorted(set(runs["threads"].map(lambda v: "unknown" if v is None or pd.isna(v) else str(int(v)))))
        loads = [v for v in (*runs["load_start"], *runs["load_end"]) if not math.isnan(v)]
        unrecorded = int((runs["load_start"].isna() & runs["load_end"].isna()).sum())
        rows.append({
            "task": task, "profile": profile, "tag": tag,
            "methods": ", ".join(sorted(runs["method"].unique(), key=method_rank)), "runs": len(runs),
            "budgets": _same(runs["budget"]), "commits": ", ".join(commits), "threads": ", ".join(threads),
            "uniform": len(commits) == 1 and len(threads) == 1 and "unknown" not in commits + threads,
            "load": (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "")
                    + (f" ({unrecorded} of {len(runs)} runs unrecorded)" if loads and unrecorded else ""),
        })
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


METHOD_ORDER = ("csn", "maml", "protonet", "matchingnet")
"""The order (and, in the figures, the colours) of the methods everywhere; others follow by name."""


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def label_rank(label: str) -> tuple:
    """Sort key of a report label (``csn (quick, equal-time)``): by its method, then by the label."""
    return (method_rank(label.split()[0]), label)


PAPER_SHAPES = ((5, 1), (5, 5), (20, 1), (20, 5))
"""The columns of the CSN paper's Omniglot table, in its order."""
PAPER_DATA = ("omniglot", "vinyals")
"""The dataset and protocol of the CSN paper's Omniglot table."""


def paper_table_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the CSN paper's table's dataset and protocol (every shape)."""
    return runs[(runs["dataset"] == PAPER_DATA[0]) & (runs["protocol"] == PAPER_DATA[1])]


def omniglot_table(c: Collected, acc: pd.DataFrame, paper_profiles: bool) -> pd.DataFrame:
    """The CSN paper's Omniglot table on the Vinyals protocol: a row per method label (runs of
    the ``paper`` profiles, or of every other profile), a column per shape with the mean, its
    two-level 95% interval and the seed count, and beside it the published number of the same
    protocol and backbone, or in parentheses one of another protocol (never comparable). A cell
    whose comparison mixed commits or thread counts says so."""
    pub = published()
    runs = paper_table_runs(c.runs)
    runs = runs[(runs["profile"] == "paper") == paper_profiles]
    runs = runs[pd.Series([(w, s) in PAPER_SHAPES for w, s in zip(runs["ways"], runs["shots"])], index=runs.index, dtype=bool)]
    mixed = {(r.task, r.profile, r.tag) for r in comparison_table(c).itertuples() if not r.uniform}
    cells = acc.set_index(["task", "method"])
    rows = []
    labels = runs.drop_duplicates("label").sort_values("label", key=lambda s: s.map(label_rank))
    for first in labels.itertuples():
        of_label = runs[runs["label"] == first.label]
        row = {"method": first.label, "budget": _budget_by_shape(of_label),
               "training classes": _same(of_label["classes"].map(lambda v: "train+val" if v == "trainval" else "train"))}
        for ways, shots in PAPER_SHAPES:
            column = f"{ways}-way {shots}-shot"
            here = of_label[(of_label["ways"] == ways) & (of_label["shots"] == shots)]
            if len(here):
                cell = cells.loc[(here["task"].iloc[0], first.label)]
                seeds = f"{cell['seeds']} seed, episodes only" if cell["seeds"] == 1 else f"{cell['seeds']} seeds"
                row[column] = f"{cell['mean']:.2f} +- {cell['ci95']:.2f} ({seeds})" + (
                    " mixed code" if (here["task"].iloc[0], first.profile, first.tag) in mixed else "")
            else:
                row[column] = ""
            ref, others = _published_for(pub, pd.Series({**first._asdict(), "ways": ways, "shots": shots}))
            row[f"{column} published"] = (f"{ref['value']:g}" + (" (unverified)" if ref["unverified"] else "") if ref is not None
                                          else "; ".join(f"({r.value:g}, protocol {r.protocol})" for r in others.itertuples()))
        rows.append(row)
    columns = ["method", "budget", "training classes"] + [f"{w}-way {s}-shot{p}" for w, s in PAPER_SHAPES for p in ("", " published")]
    return pd.DataFrame(rows, columns=columns)


def _budget_by_shape(runs: pd.DataFrame) -> str:
    """A table row's budget; where its columns had different ones, each with its shapes
    (``600 CPU-s (5w1s, 5w5s); 900 CPU-s (20w1s)``)."""
    shapes: dict[str, list[str]] = {}
    for (ways, shots), here in runs.groupby(["ways", "shots"]):
        shapes.setdefault(_same(here["budget"]), []).append(f"{ways}w{shots}s")
    if len(shapes) <= 1:
        return _same(runs["budget"])
    return "; ".join(f"{budget} ({', '.join(of)})" for budget, of in shapes.items())


def selection_table(c: Collected) -> pd.DataFrame:
    """The candidate settings of each group that had several, with their mean best validation metric."""
    return c.candidates


# -- rendering -----------------------------------------------------------------------


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) >= 100:
            return str(int(v))  # counts: iterations, parameters
        # two decimals for accuracies in %, three significant digits for MSEs and small spreads
        return f"{v:.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3f}" if abs(v) >= 0.1 else f"{v:.2g}"
    return str(v)


def markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)\n"
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(_fmt(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def latex(df: pd.DataFrame, caption: str) -> str:
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")  # noqa: E731
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(caption)}}}", r"\begin{tabular}{" + "l" * len(df.columns) + "}",
             r"\hline", " & ".join(esc(c) for c in df.columns) + r" \\", r"\hline"]
    lines += [" & ".join(esc(_fmt(v)) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)
