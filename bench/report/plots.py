"""Report figures: accuracy, validation curves, cost trade-off, and the runs' own pictures."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.files import atomic_write_bytes, write_figure
from bench.report.collect import Collected
from bench.report.tables import METHOD_ORDER, PAPER_SHAPES, curve_clock, label_rank, method_rank, paper_table_runs

LINE_STYLES = ("-", "--", ":", "-.")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")


def method_color(method: str) -> str:
    """One colour per method in every figure: the built-in four first, in the tables' order."""
    rank = method_rank(method)[0]
    if rank < len(METHOD_ORDER):
        return PALETTE[rank]
    return PALETTE[len(METHOD_ORDER) + zlib.crc32(method.encode()) % (len(PALETTE) - len(METHOD_ORDER))]


def _shape_rank(runs: pd.DataFrame, task: str) -> tuple:
    """Sort key of a task: by dataset, then as the paper tables run (5-way 1-shot, 5-way 5-shot, 20-way 1-shot, ...)."""
    first = runs[runs["task"] == task].iloc[0]
    return first["dataset"], first["ways"], first["shots"], task


def _plot_scale(c: Collected, task: str) -> float:
    """Accuracies are drawn in %, like the tables."""
    return 100.0 if c.runs[c.runs.task == task]["metric"].iloc[0] == "accuracy" else 1.0


def _metric_label(c: Collected, task: str) -> str:
    return "accuracy (%)" if _plot_scale(c, task) == 100.0 else "MSE (lower is better)"


def plots(c: Collected, acc: pd.DataFrame, out: Path) -> list[Path]:
    """Every report figure, written into ``out``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    tasks = sorted(acc["task"].unique(), key=lambda task: _shape_rank(c.runs, task))
    return (_accuracy_figure(plt, acc, tasks, out) + _validation_figure(plt, c, tasks, out)
            + _omniglot_figure(plt, acc, c, out) + _comparison_curves(plt, c, out) + _cost_figure(sns, plt, c, tasks, out))


def _accuracy_figure(plt, acc: pd.DataFrame, tasks: list[str], out: Path) -> list[Path]:
    """Each task's test metric per method label, in the tables' order and the methods' colours."""
    # Wrapped three to a row so that the figure stays readable at page width.
    ncols = min(3, len(tasks))
    nrows = -(-len(tasks) // ncols)
    most = int(acc.groupby("task")["method"].nunique().max())
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.8 * ncols, nrows * (0.42 * most + 1.5)), squeeze=False,
                             layout="constrained")
    for ax, task in zip(axes.flat, tasks):
        rows = acc[acc.task == task].set_index("method")
        labels = sorted(rows.index, key=label_rank)
        for y, label in enumerate(labels):
            r = rows.loc[label]
            ax.errorbar(r["mean"], y, xerr=r["ci95"], fmt="o", capsize=3, color=method_color(label.split()[0]))
            if r["published"] == r["published"]:  # not NaN
                ax.scatter(r["published"], y, marker="x", color="black", s=50, zorder=5)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # the tables' order, top to bottom
        ax.set_title(task)
        ax.set_xlabel("accuracy (%)" if rows["metric"].iloc[0] == "accuracy" else "MSE (lower is better)")
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    fig.suptitle("Test metric per task: mean over seeds and test episodes +- its two-level 95% interval; "
                 "x: published, same protocol")
    write_figure(fig, out / "accuracy.png")
    return [out / "accuracy.png"]


def _validation_figure(plt, c: Collected, tasks: list[str], out: Path) -> list[Path]:
    """Per task, the validation metric against iterations and training seconds, mean and spread over seeds."""
    if c.curves.empty:
        return []
    grouped = c.curves.groupby(["task", "label", "iteration"]).agg(
        mean=("value", "mean"), std=("value", "std"), seconds=("train_seconds", "mean")).reset_index()
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False, layout="constrained")
    for row, task in zip(axes, tasks):
        scale = _plot_scale(c, task)
        of_task = grouped[grouped.task == task]
        styles: dict[str, int] = {}  # a method's colour everywhere; its profiles and tags by line style
        for label in sorted(of_task["label"].unique(), key=label_rank):
            g = of_task[of_task.label == label]
            method = label.split()[0]
            styles[method] = styles.get(method, -1) + 1
            style = LINE_STYLES[styles[method] % len(LINE_STYLES)]
            mean, std = g["mean"] * scale, g["std"].fillna(0) * scale
            for ax, x in zip(row, ("iteration", "seconds")):
                ax.plot(g[x], mean, marker=".", label=label, color=method_color(method), linestyle=style)
                ax.fill_between(g[x], mean - std, mean + std, alpha=0.15, color=method_color(method))
        row[0].set_title(f"{task}: validation vs iterations")
        row[1].set_title(f"{task}: validation vs training time")
        row[0].set_xlabel("iteration")
        row[1].set_xlabel("training seconds")
        for ax in row:
            ax.set_ylabel("validation " + _metric_label(c, task))
        row[0].legend(fontsize=8)
    fig.suptitle("Validation curves (line: mean over the seeds that reached each iteration; band: +- 1 std)")
    write_figure(fig, out / "validation_curves.png")
    return [out / "validation_curves.png"]


def _cost_figure(sns, plt, c: Collected, tasks: list[str], out: Path) -> list[Path]:
    """Per task, each run's test metric against its training seconds and its peak memory."""
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False, layout="constrained")
    for row, task in zip(axes, tasks):
        t = c.runs[c.runs.task == task].assign(shown=lambda d: d["value"] * _plot_scale(c, task))
        order = sorted(t["label"].unique(), key=label_rank)
        colours = {label: method_color(label.split()[0]) for label in order}
        sns.scatterplot(data=t, x="train_seconds", y="shown", hue="label", hue_order=order, palette=colours,
                        style="label", style_order=order, ax=row[0], s=60)
        sns.scatterplot(data=t, x="peak_mib", y="shown", hue="label", hue_order=order, palette=colours,
                        style="label", style_order=order, ax=row[1], s=60, legend=False)
        row[0].legend(title="method", fontsize=8)
        row[0].set_title(f"{task}: test metric vs training time (one point per run)")
        row[1].set_title(f"{task}: test metric vs peak memory")
        row[0].set_xscale("log")  # paper budgets train 10-100 times longer than the short profiles
        row[0].set_xlabel("training seconds (log)")
        row[1].set_xlabel(f"peak memory (MiB, {t['peak_kind'].iloc[0]})")
        for ax in row:
            ax.set_ylabel("test " + _metric_label(c, task))
    write_figure(fig, out / "cost_tradeoff.png")
    return [out / "cost_tradeoff.png"]


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


def _omniglot_figure(plt, acc: pd.DataFrame, c: Collected, out: Path) -> list[Path]:
    """The CSN paper's Omniglot table as a figure: one panel per shape, one row per method label
    in the tables' order and colours, the published number of the same protocol as a cross."""
    shapes = paper_table_runs(c.runs)[["task", "ways", "shots"]]
    tasks = {(w, s): t for t, w, s in shapes.drop_duplicates().itertuples(index=False) if (w, s) in PAPER_SHAPES}
    if not tasks:
        return []
    labels = sorted(acc[acc["task"].isin(tasks.values())]["method"].unique(), key=label_rank)
    fig, axes = plt.subplots(1, len(PAPER_SHAPES), figsize=(16, 0.45 * len(labels) + 1.6), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (ways, shots) in zip(axes[0], PAPER_SHAPES):
        ax.set_title(f"{ways}-way {shots}-shot")
        ax.set_xlabel("test accuracy (%)")
        rows = acc[acc["task"] == tasks.get((ways, shots), "")].set_index("method")
        chance, shown = 100.0 / ways, []
        for y, label in enumerate(labels):
            if label not in rows.index:
                continue
            r = rows.loc[label]
            if r["mean"] < chance + 10:  # drawn as a note: it would squeeze the methods that learn
                ax.annotate(f"at chance: {r['mean']:.1f} %", (0.02, y), xycoords=("axes fraction", "data"), va="center",
                            fontsize=8, color=method_color(label.split()[0]))
                continue
            ax.errorbar(r["mean"], y, xerr=r["ci95"], fmt="o", capsize=3, color=method_color(label.split()[0]))
            half = r["ci95"] if r["ci95"] == r["ci95"] else 0.0  # no interval from a single test episode
            shown += [r["mean"] - half, r["mean"] + half]
            if r["published"] == r["published"]:  # not NaN
                ax.scatter(r["published"], y, marker="x", color="black", s=50, zorder=5)
                shown.append(r["published"])
        if shown:
            pad = 0.08 * (max(shown) - min(shown)) + 0.1
            ax.set_xlim(min(shown) - pad, max(shown) + pad)
        else:
            ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes, color="gray")
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    fig.suptitle("Omniglot (Vinyals protocol): mean +- two-level 95% interval; x: published, same protocol")
    write_figure(fig, out / "omniglot.png")
    return [out / "omniglot.png"]


@dataclass
class Panel:
    """One panel of the comparison curves: each run's validation curve, by its method's label."""

    title: str
    metric: str
    clock: str  # "cpu": the x axis is training CPU seconds (the comparison's budget clock); "wall"
    runs: dict[str, list[pd.DataFrame]]  # label -> one frame (seconds, value) per run, in the tables' order
    at_chance: list[str]  # labels whose every run stayed near chance, drawn as a note instead


def comparison_panels(c: Collected) -> list[Panel]:
    """One panel per comparison with a budget in seconds, then one per task for the paper-budget
    runs, in the paper table's order of shapes. Each run keeps its whole curve, its last validation
    (where its budget ended) included: runs of a time budget stop at different iterations, so a mean
    over seeds would have to drop those ends. A comparison whose every run was bounded by CPU
    seconds is drawn against them, the clock its budget counted; the others against wall seconds."""
    if c.curves.empty:
        return []
    runs = c.runs.set_index("run")
    timed = runs[runs["budget"].str.endswith("s")]  # "600 s", "600 CPU-s"; iteration budgets end in "it"
    groups = [(task, f"{task}, {profile}, {tag}: equal training time", list(g.index))
              for (task, profile, tag), g in timed.groupby(["task", "profile", "tag"])]
    groups = sorted(groups, key=lambda g: (_shape_rank(c.runs, g[0]), g[1]))
    groups += sorted(((task, f"{task}: the papers' budgets", list(g.index))
                      for task, g in runs[runs["profile"] == "paper"].groupby("task")), key=lambda g: _shape_rank(c.runs, g[0]))
    panels = []
    for _, title, members in groups:
        curves = c.curves[c.curves["run"].isin(members)].sort_values(["run", "iteration"])
        metric, ways = runs.loc[members[0], "metric"], runs.loc[members[0], "ways"]
        clock = curve_clock(runs.loc[members], curves)
        chance = 1.0 / ways if metric == "accuracy" and ways else None
        by_label, at_chance = {}, []
        for label, g in sorted(curves.groupby("label"), key=lambda kv: label_rank(kv[0])):
            if chance is not None and g["value"].max() < chance + 0.1:
                at_chance.append(f"{label} stays near chance ({100 * g['value'].max():.0f} % at best)")
                continue
            by_label[label] = [r[[clock, "value"]].set_axis(["seconds", "value"], axis=1).reset_index(drop=True)
                               for _, r in g.groupby("run", sort=True)]
        panels.append(Panel(title, metric, "cpu" if clock == "train_cpu_seconds" else "wall", by_label, at_chance))
    return panels


def _comparison_curves(plt, c: Collected, out: Path) -> list[Path]:
    """The panels of ``comparison_panels``, training seconds on a log axis; the y range is set by
    the methods that learn, and a method left at chance is named in its panel instead of flattening it."""
    panels = comparison_panels(c)
    if not panels:
        return []
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.4 * len(panels)), squeeze=False, layout="constrained")
    for ax, panel in zip(axes[:, 0], panels):
        scale = 100.0 if panel.metric == "accuracy" else 1.0
        shown = []
        for label, curves in panel.runs.items():
            for i, run in enumerate(curves):
                ax.plot(run["seconds"], scale * run["value"], marker=".", lw=1, alpha=0.8, label=label if i == 0 else None,
                        color=method_color(label.split()[0]))
                shown.append(scale * run["value"])
        if shown:
            values = pd.concat(shown)
            low = values.quantile(0.05) if panel.metric == "accuracy" else values.min()
            ax.set_ylim(low - 0.05 * (values.max() - low + 1e-9), values.max() + 0.05 * (values.max() - low + 1e-9))
            ax.legend(fontsize=8, loc="lower right" if panel.metric == "accuracy" else "upper right")
        if panel.at_chance:
            ax.text(0.01, 0.02, "; ".join(panel.at_chance), transform=ax.transAxes, fontsize=8, color="gray")
        ax.set_xscale("log")
        ax.set_title(panel.title)
        ax.set_xlabel(("training CPU seconds" if panel.clock == "cpu" else "training seconds") + " (log)")
        ax.set_ylabel("validation " + ("accuracy (%)" if panel.metric == "accuracy" else "MSE"))
    fig.suptitle("Validation during training, per comparison (one line per seed)")
    write_figure(fig, out / "comparison_curves.png")
    return [out / "comparison_curves.png"]
