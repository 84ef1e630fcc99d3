"""Report tables: pure functions of the collected frames, and their Markdown and LaTeX forms."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from bench.report.collect import Collected
from bench.stats import mean_ci95

PUBLISHED = Path(__file__).with_name("published.yaml")


def published() -> pd.DataFrame:
    return pd.DataFrame(yaml.safe_load(PUBLISHED.read_text()))


def accuracy_table(c: Collected) -> pd.DataFrame:
    """Per task and method/profile: pooled episode mean with 95% CI, seed spread, published number."""
    pub = published().set_index(["method", "task"])
    rows = []
    for (task, label), runs in c.runs.groupby(["task", "label"], sort=True):
        values = c.episodes[(c.episodes.task == task) & (c.episodes.label == label)]["value"].tolist()
        mean, ci = mean_ci95(values)
        seeds = runs["value"]
        scale = 100.0 if runs["metric"].iloc[0] == "accuracy" else 1.0
        method = runs["method"].iloc[0]
        ref = pub.loc[(method, task)] if (method, task) in pub.index else None
        rows.append({
            "task": task, "method": label, "metric": runs["metric"].iloc[0],
            "mean": scale * mean, "ci95": scale * ci,
            "seed_mean": scale * seeds.mean(), "seed_std": scale * seeds.std(ddof=1) if len(seeds) > 1 else math.nan,
            "seeds": len(seeds), "episodes": len(values),
            "published": ref["value"] if ref is not None else math.nan,
            "difference": scale * mean - ref["value"] if ref is not None and scale == 100.0 else math.nan,
            "source": (ref["source"] + (" (unverified)" if ref["unverified"] else "")) if ref is not None else "",
            "backbone": runs["backbone"].iloc[0], "batch_norm": runs["batch_norm"].iloc[0],
            "iterations": int(runs["iterations"].iloc[0]), "device": ", ".join(sorted(set(runs["device"]))),
        })
    return pd.DataFrame(rows)


def paired_table(c: Collected) -> pd.DataFrame:
    """Per task and pair of methods: mean per-episode difference (first - second) with its 95% CI.

    Each method's episode scores are first averaged over its seeds; pairs are only formed
    where both saw exactly the same episodes (same fingerprints).
    """
    rows = []
    for task, eps in c.episodes.groupby("task", sort=True):
        per = {
            label: g.groupby("episode").agg(value=("value", "mean"), fingerprint=("fingerprint", "first"))
            for label, g in eps.groupby("label", sort=True)
        }
        labels = sorted(per)
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                if not per[a]["fingerprint"].equals(per[b]["fingerprint"]):
                    continue
                diff = (per[a]["value"] - per[b]["value"]).tolist()
                mean, ci = mean_ci95(diff)
                scale = 100.0 if c.runs[c.runs.task == task]["metric"].iloc[0] == "accuracy" else 1.0
                rows.append({
                    "task": task, "first": a, "second": b, "difference": scale * mean, "ci95": scale * ci,
                    "episodes": len(diff), "significant": abs(mean) > ci,
                })
    return pd.DataFrame(rows, columns=["task", "first", "second", "difference", "ci95", "episodes", "significant"])


def cost_table(c: Collected) -> pd.DataFrame:
    agg = c.runs.groupby(["task", "label"], sort=True).agg(
        runs=("run", "count"), train_seconds=("train_seconds", "mean"),
        seconds_per_iteration=("seconds_per_iteration", "mean"), episodes_per_second=("episodes_per_second", "mean"),
        test_ms_per_episode=("test_ms_per_episode", "mean"), peak_mib=("peak_mib", "max"),
        peak_kind=("peak_kind", "first"), device=("device", lambda d: ", ".join(sorted(set(d)))),
    )
    return agg.reset_index().rename(columns={"label": "method"})


# -- rendering -----------------------------------------------------------------------


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
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
