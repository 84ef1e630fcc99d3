"""Report figures: accuracy, validation curves, cost trade-off, and the runs' own pictures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.files import atomic_write_bytes, write_figure
from bench.report.collect import Collected


def _plot_scale(c: Collected, task: str) -> float:
    """Accuracies are drawn in %, like the tables."""
    return 100.0 if c.runs[c.runs.task == task]["metric"].iloc[0] == "accuracy" else 1.0


def _metric_label(c: Collected, task: str) -> str:
    return "accuracy (%)" if _plot_scale(c, task) == 100.0 else "MSE (lower is better)"


def plots(c: Collected, acc: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    written = []
    tasks = sorted(acc["task"].unique())

    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False, layout="constrained")
    for ax, task in zip(axes[0], tasks):
        t = acc[acc.task == task].reset_index(drop=True)
        ax.errorbar(t["mean"], range(len(t)), xerr=t["ci95"], fmt="o", capsize=4, label="this harness (95% CI)")
        pub = t[~t["published"].isna()]
        ax.scatter(pub["published"], pub.index, marker="x", color="black", s=60, zorder=5, label="published")
        ax.set_yticks(range(len(t)), t["method"])
        unit = "accuracy (%)" if t["metric"].iloc[0] == "accuracy" else "MSE (lower is better)"
        ax.set_title(task)
        ax.set_xlabel(unit)
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Test metric per task (pooled over seeds and test episodes)")
    write_figure(fig, out / "accuracy.png")
    written.append(out / "accuracy.png")

    if not c.curves.empty:
        grouped = c.curves.groupby(["task", "label", "iteration"]).agg(
            mean=("value", "mean"), std=("value", "std"), seconds=("train_seconds", "mean")).reset_index()
        fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False, layout="constrained")
        for row, task in zip(axes, tasks):
            scale = _plot_scale(c, task)
            for label, g in grouped[grouped.task == task].groupby("label"):
                mean, std = g["mean"] * scale, g["std"].fillna(0) * scale
                for ax, x in zip(row, ("iteration", "seconds")):
                    line = ax.plot(g[x], mean, marker=".", label=label)[0]
                    ax.fill_between(g[x], mean - std, mean + std, alpha=0.2, color=line.get_color())
            row[0].set_title(f"{task}: validation vs iterations")
            row[1].set_title(f"{task}: validation vs training time")
            row[0].set_xlabel("iteration")
            row[1].set_xlabel("training seconds")
            for ax in row:
                ax.set_ylabel("validation " + _metric_label(c, task))
            row[0].legend(fontsize=8)
        fig.suptitle("Validation curves (line: mean over seeds; band: +- 1 std)")
        write_figure(fig, out / "validation_curves.png")
        written.append(out / "validation_curves.png")

    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False, layout="constrained")
    for row, task in zip(axes, tasks):
        t = c.runs[c.runs.task == task].assign(shown=lambda d: d["value"] * _plot_scale(c, task))
        sns.scatterplot(data=t, x="train_seconds", y="shown", hue="label", ax=row[0], s=60)
        sns.scatterplot(data=t, x="peak_mib", y="shown", hue="label", ax=row[1], s=60, legend=False)
        row[0].legend(title="method", fontsize=8)
        row[0].set_title(f"{task}: test metric vs training time (one point per run)")
        row[1].set_title(f"{task}: test metric vs peak memory")
        row[0].set_xlabel("training seconds")
        row[1].set_xlabel(f"peak memory (MiB, {t['peak_kind'].iloc[0]})")
        for ax in row:
            ax.set_ylabel("test " + _metric_label(c, task))
    write_figure(fig, out / "cost_tradeoff.png")
    written.append(out / "cost_tradeoff.png")
    return written


def copy_run_figures(c: Collected, out: Path) -> list[Path]:
    """The pictures a run folder holds (``plot-shifts`` draws them), copied as
    ``<task>_<method>_<name>.png``: per task and method, those of its first run that has any."""
    written = []
    for (task, method), g in c.runs.sort_values(["task", "method", "profile", "seed"]).groupby(["task", "method"]):
        for plots in g["plots"]:
            pngs = sorted(plots.glob("*.png")) if plots.is_dir() else []
            for png in pngs:
                target = out / f"{task}_{method}_{png.name}"
                atomic_write_bytes(target, png.read_bytes())
                written.append(target)
            if pngs:
                break
    return written
