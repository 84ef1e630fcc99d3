"""Report tables: pure functions of the collected frames, and their Markdown and LaTeX forms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.report.collect import Collected
from bench.stats import mean_ci95, paired_two_level_ci, two_level_ci

PUBLISHED = Path(__file__).with_name("published.yaml")


def published() -> pd.DataFrame:
    return pd.DataFrame(yaml.safe_load(PUBLISHED.read_text()))


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


def _published_for(pub: pd.DataFrame, row: pd.Series) -> tuple[pd.Series | None, list[str]]:
    """The published number of the run's own protocol and backbone, and the method's others on that shape."""
    same_shape = pub[(pub.method == row["method"]) & (pub.dataset == row["dataset"]) & (pub.ways == row["ways"])
                     & (pub.shots == row["shots"])]
    exact = same_shape[(same_shape.protocol == row["protocol"]) & (same_shape.backbone == row["backbone"])]
    others = same_shape.drop(exact.index)
    other_text = [f"{r.value:g} ({r.protocol}, {r.backbone})" for r in others.itertuples()]
    return (exact.iloc[0] if len(exact) else None), other_text


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
            "other_protocol": "; ".join(others), "source": _source(ref) if ref is not None else "",
        })
    return pd.DataFrame(rows)


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
    """Per task and method: model size and test compute, training and test time, peak memory."""
    return c.runs.groupby(["task", "label"], sort=True).agg(
        backbone=("backbone", "first"), batch_norm=("batch_norm", "first"), transductive=("transductive", "first"),
        parameters=("parameters", "first"), mflops_per_query=("flops_per_query", lambda f: f.iloc[0] / 1e6),
        runs=("run", "count"), iterations=("iterations", "mean"), train_seconds=("train_seconds", "mean"),
        seconds_per_iteration=("seconds_per_iteration", "mean"), episodes_per_second=("episodes_per_second", "mean"),
        test_ms_per_episode=("test_ms_per_episode", "mean"), peak_mib=("peak_mib", "max"),
        peak_kind=("peak_kind", "first"), device=("device", _same),
    ).reset_index().rename(columns={"label": "method"})


LEVELS = {"accuracy": (0.8, 0.9, 0.95, 0.97, 0.98), "mse": (1.0, 0.5, 0.4, 0.3)}


def time_to_level_table(c: Collected) -> pd.DataFrame:
    """Training seconds at which each run's validation metric first reached each level (at
    least, for accuracy; at most, for MSE): the median over seeds, or how many seeds never did.
    Levels that no method reached are left out."""
    rows = []
    for (task, label), runs in c.runs.groupby(["task", "label"], sort=True):
        metric = runs["metric"].iloc[0]
        row = {"task": task, "method": label}
        for level in LEVELS[metric]:
            firsts = []
            for run in runs["run"]:
                curve = c.curves[c.curves.run == run].sort_values("iteration")
                reached = curve[curve["value"] >= level] if metric == "accuracy" else curve[curve["value"] <= level]
                firsts.append(reached["train_seconds"].iloc[0] if len(reached) else math.nan)
            done = [f for f in firsts if not math.isnan(f)]
            name = f"{100 * level:g}%" if metric == "accuracy" else f"mse {level:g}"
            row[name] = (f"{np.median(done):.0f} s" + (f" ({len(firsts) - len(done)} of {len(firsts)} never)"
                                                        if len(done) < len(firsts) else "")) if done else "never"
        rows.append(row)
    table = pd.DataFrame(rows)
    reached = [col for col in table.columns[2:] if table[col].map(lambda v: isinstance(v, str) and v != "never").any()]
    return table[["task", "method", *reached]].fillna("")


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
