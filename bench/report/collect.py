"""Reading run folders into tidy pandas frames: one row per run, per test episode, per validation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.results.runfolder import IncompleteRun, config_digest, run_folders


@dataclass
class Collected:
    runs: pd.DataFrame  # one row per complete run
    episodes: pd.DataFrame  # one row per test episode of a complete run
    curves: pd.DataFrame  # one row per validation of a complete run
    incomplete: pd.DataFrame  # run folder, what is missing


def collect(results: Path) -> Collected:
    """Every complete run under ``results``; the others are listed in ``incomplete`` with the reason."""
    runs, episodes, curves, incomplete = [], [], [], []
    for folder in run_folders(results):
        if not folder.path.is_dir():
            continue
        try:
            result = folder.result()
        except IncompleteRun as exc:
            incomplete.append({"run": folder.name, "missing": str(exc)})
            continue
        summary, config, metric = result.summary, result.config, result.metric
        settings = config.get("method_settings", {})
        info = summary.get("method_info", {})
        label = f"{summary['method']} ({summary['profile']})"
        variant = config_digest({k: v for k, v in config.items() if k != "seed"})
        runs.append({
            "run": folder.name, "task": summary["task"], "method": summary["method"], "profile": summary["profile"],
            "label": label, "seed": summary.get("seed"), "metric": metric, "value": summary[metric],
            "ci95": summary[f"{metric}_ci95"], "episodes": summary["episodes"], "iterations": summary["iterations"],
            "train_seconds": summary["train_seconds"], "seconds_per_iteration": summary["seconds_per_iteration"],
            "episodes_per_second": summary["episodes_per_second"], "test_ms_per_episode": summary["test_ms_per_episode"],
            "peak_mib": summary["peak_memory_bytes"] / 2**20, "peak_kind": summary.get("peak_memory_kind", ""),
            "device": summary.get("device", ""),
            "backbone": info.get("backbone") or info.get("architecture") or settings.get("backbone", ""),
            "batch_norm": settings.get("batch_norm", ""), "variant": variant, "plots": folder.plots_dir,
        })
        for r in result.test_rows:
            episodes.append({"run": folder.name, "task": summary["task"], "label": label, "seed": summary.get("seed"),
                             "episode": r["episode"], "fingerprint": r["fingerprint"], "value": r[metric]})
        for v in result.val_rows:
            curves.append({"run": folder.name, "task": summary["task"], "label": label, "seed": summary.get("seed"),
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
