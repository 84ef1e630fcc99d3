"""``cli.py report``: tables and plots built only from the files that runs wrote.

Everything comes from tidy pandas frames (one row per run, per test episode, per
validation) assembled by ``collect``; tables are pure functions of those frames.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from bench.metrics import mean_ci95
from bench.store import atomic_write_bytes, write_figure
from bench.sweep import config_digest

RUN_FILES = ("config.json", "environment.json", "train.jsonl", "val.jsonl", "test_episodes.jsonl", "summary.json", "best.pt")
PUBLISHED = Path(__file__).with_name("published.yaml")


@dataclass
class Collected:
    runs: pd.DataFrame  # one row per complete run
    episodes: pd.DataFrame  # one row per test episode of a complete run
    curves: pd.DataFrame  # one row per validation of a complete run
    incomplete: pd.DataFrame  # run folder, what is missing


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def collect(results: Path) -> Collected:
    runs, episodes, curves, incomplete = [], [], [], []
    for run_dir in sorted((results / "runs").glob("*")):
        if not run_dir.is_dir():
            continue
        missing = [f for f in RUN_FILES if not (run_dir / f).is_file()]
        try:
            summary = json.loads((run_dir / "summary.json").read_text()) if "summary.json" not in missing else {}
            config = json.loads((run_dir / "config.json").read_text()) if "config.json" not in missing else {}
            rows = _jsonl(run_dir / "test_episodes.jsonl") if not missing else []
            vals = _jsonl(run_dir / "val.jsonl") if not missing else []
        except (OSError, ValueError) as exc:
            missing.append(f"unreadable ({type(exc).__name__})")
            summary = {}
        if missing or summary.get("status") != "complete":
            incomplete.append({"run": run_dir.name, "missing": ", ".join(missing) or f"status {summary.get('status')}"})
            continue
        metric = summary["metric"]
        settings = config["method_settings"]
        info = summary.get("method_info", {})
        label = f"{summary['method']} ({summary['profile']})"
        variant = config_digest({k: v for k, v in config.items() if k != "seed"})
        runs.append({
            "run": run_dir.name, "task": summary["task"], "method": summary["method"], "profile": summary["profile"],
            "label": label, "seed": summary["seed"], "metric": metric, "value": summary[metric],
            "ci95": summary[f"{metric}_ci95"], "episodes": summary["episodes"], "iterations": summary["iterations"],
            "train_seconds": summary["train_seconds"], "seconds_per_iteration": summary["seconds_per_iteration"],
            "episodes_per_second": summary["episodes_per_second"], "test_ms_per_episode": summary["test_ms_per_episode"],
            "peak_mib": summary["peak_memory_bytes"] / 2**20, "peak_kind": summary["peak_memory_kind"],
            "device": summary["device"],
            "backbone": info.get("backbone") or info.get("architecture") or settings.get("backbone", ""),
            "batch_norm": settings.get("batch_norm", ""), "variant": variant,
        })
        for r in rows:
            episodes.append({"run": run_dir.name, "task": summary["task"], "label": label, "seed": summary["seed"],
                             "episode": r["episode"], "fingerprint": r["fingerprint"], "value": r[metric]})
        for v in vals:
            curves.append({"run": run_dir.name, "task": summary["task"], "label": label, "seed": summary["seed"],
                           "iteration": v["iteration"], "train_seconds": v.get("train_seconds", math.nan), "value": v[metric]})
    runs_df, episodes_df, curves_df = pd.DataFrame(runs), pd.DataFrame(episodes), pd.DataFrame(curves)
    if not runs_df.empty:
        _disambiguate(runs_df, episodes_df, curves_df)
    return Collected(runs_df, episodes_df, curves_df, pd.DataFrame(incomplete, columns=["run", "missing"]))


def _disambiguate(runs: pd.DataFrame, episodes: pd.DataFrame, curves: pd.DataFrame) -> None:
    """Runs pool over seeds only when their configs are otherwise equal: where one method and
    profile has several configs on a task, each label gets its config digest."""
    counts = runs.groupby(["task", "label"])["variant"].transform("nunique")
    runs.loc[counts > 1, "label"] = runs["label"] + " " + runs["variant"].str[:6]
    label_of = runs.set_index("run")["label"]
    for frame in (episodes, curves):
        if not frame.empty:
            frame["label"] = frame["run"].map(label_of)


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


def shift_figures(c: Collected, results: Path, out: Path) -> list[Path]:
    """The CSN sinusoid pictures of the first such run, copied into the report."""
    from bench.shift_plots import write_shift_plots

    csn = c.runs[(c.runs.method == "csn") & (c.runs.metric == "mse")].sort_values(["task", "seed"])
    written = []
    for task, g in csn.groupby("task"):
        run = g.iloc[0]["run"]
        for path in write_shift_plots(results / "runs" / run, task_seed=0):
            if path.name in ("shift_before_after.png", "shifts_all.png"):
                target = out / f"{task}_csn_{path.name}"
                atomic_write_bytes(target, path.read_bytes())
                written.append(target)
    return written


def build_report(results: Path, out: Path) -> Path:
    from bench.errors import UserError

    c = collect(results)
    if c.runs.empty:
        raise UserError(f"no complete runs under {results / 'runs'}" + (f" ({len(c.incomplete)} incomplete)" if len(c.incomplete) else ""))
    out.mkdir(parents=True, exist_ok=True)
    acc, paired, cost = accuracy_table(c), paired_table(c), cost_table(c)
    figures = plots(c, acc, out) + shift_figures(c, results, out)
    tables = {"accuracy": acc, "paired": paired, "cost": cost, "incomplete": c.incomplete}
    for name, df in tables.items():
        atomic_write_bytes(out / f"{name}.csv", df.to_csv(index=False).encode())
    tex = "".join(latex(df, f"{name} table") for name, df in tables.items() if name != "incomplete")
    atomic_write_bytes(out / "report.tex", tex.encode())

    md = ["# Benchmark report", "", f"Built from {len(c.runs)} complete runs under `{results}`."]
    md += ["", "## Test metric", "",
           "Accuracy in %, MSE as is. `mean +- ci95`: pooled over all test episodes of all seeds (95% normal CI); "
           "`seed_mean +- seed_std`: spread of the per-run means; `difference`: mean minus the published number.", "",
           markdown(acc)]
    md += ["## Paired differences", "",
           "Every method saw the same test episodes, so differences are taken episode by episode "
           "(first minus second, seeds averaged per episode); `significant`: the 95% CI excludes 0.", "",
           markdown(paired)]
    md += ["## Cost", "", "Peak memory is the CUDA peak allocated on a GPU and the process's peak RSS on CPU.", "", markdown(cost)]
    md += ["## Incomplete runs", "", "Listed, never averaged in.", "", markdown(c.incomplete)]
    md += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    atomic_write_bytes(out / "report.md", "\n".join(md).encode())
    return out / "report.md"
