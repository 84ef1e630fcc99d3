"""Reading run folders into tidy pandas frames (one row per run, per test episode, per
validation), and choosing among candidate settings on validation only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.data.tasks import TASKS
from bench.results.runfolder import IncompleteRun, RunResult, config_digest, run_folders
from bench.results.summary import Budget, RunSummary


@dataclass
class Collected:
    runs: pd.DataFrame  # one row per complete run of a reported (selected) setting
    episodes: pd.DataFrame  # one row per test episode of those runs
    curves: pd.DataFrame  # one row per validation of those runs
    candidates: pd.DataFrame  # one row per candidate setting where a group had several
    incomplete: pd.DataFrame  # run folder, why it is not counted
    every: pd.DataFrame  # one row per complete run, reported or not (the runs ledger)


CANDIDATE_COLUMNS = ["task", "method", "profile", "tag", "setting", "runs", "compared_seeds", "validation", "validation_std",
                     "selected"]


def collect(results: Path) -> Collected:
    """Every complete run under ``results``; the others are listed in ``incomplete`` with the reason.

    Runs of one task, method, profile and tag whose settings differ are candidates: only the
    setting with the best mean validation metric over its seeds is reported (``select``).
    """
    runs, episodes, curves, incomplete, seen = [], [], [], [], {}
    for folder in run_folders(results):
        if not folder.path.is_dir():
            continue
        try:
            result = folder.result()
        except IncompleteRun as exc:
            incomplete.append({"run": folder.name, "missing": str(exc)})
            continue
        digest = config_digest(result.config)
        if digest in seen:  # the same resolved config and seed run twice (two sweeps at once): counted once
            incomplete.append({"run": folder.name, "missing": f"duplicate: the same config and seed as {seen[digest]}, "
                                                              "which is the one counted"})
            continue
        seen[digest] = folder.name
        current = TASKS.get(result.summary.task).version if result.summary.task in TASKS else None
        if current is not None and result.summary.task_version != current:
            incomplete.append({"run": folder.name, "missing": f"superseded: made on version {result.summary.task_version} "
                                                              f"of task {result.summary.task}, which is at version {current} now"})
            continue
        runs.append(_run_row(result))
        metric, name = result.metric, folder.name
        for r in result.test_rows:
            episodes.append({"run": name, "episode": r["episode"], "fingerprint": r["fingerprint"], "value": r[metric]})
        for v in result.val_rows:
            cpu = v.get("train_cpu_seconds")  # recorded since the CPU clock existed
            curves.append({"run": name, "iteration": v["iteration"], "train_seconds": v.get("train_seconds", math.nan),
                           "train_cpu_seconds": cpu if isinstance(cpu, (int, float)) else math.nan, "value": v[metric]})
    runs_df = pd.DataFrame(runs)
    incomplete_df = pd.DataFrame(incomplete, columns=["run", "missing"])
    if runs_df.empty:
        return Collected(runs_df, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=CANDIDATE_COLUMNS), incomplete_df,
                         runs_df)
    runs_df[["setting", "setting_rank"]] = setting_labels(runs_df)
    every = runs_df
    runs_df, candidates = select(runs_df)
    keep = runs_df.set_index("run")
    frames = []
    for frame in (pd.DataFrame(episodes), pd.DataFrame(curves)):
        frame = frame[frame["run"].isin(keep.index)].copy()
        for column in ("task", "label", "seed"):
            frame[column] = frame["run"].map(keep[column])
        frames.append(frame)
    return Collected(runs_df, frames[0], frames[1], candidates, incomplete_df, every)


def _run_row(result: RunResult) -> dict:
    summary, config, metric = result.summary, result.config, result.metric
    settings = config.get("method_settings", {}) if isinstance(config.get("method_settings"), dict) else {}
    info, model = summary.method_info, summary.model or {}
    task = TASKS.get(summary.task) if summary.task in TASKS else None
    tag = config.get("tag", "")
    label = f"{summary.method} ({summary.profile}{', ' + tag if tag else ''})"
    return {
        "run": result.folder.name, "task": summary.task, "method": summary.method, "profile": summary.profile,
        "tag": tag, "label": label, "seed": summary.seed, "metric": metric, "value": summary.value,
        "ci95": summary.ci95, "episodes": summary.episodes, "iterations": summary.iterations,
        "best_val": math.nan if summary.best_val is None else summary.best_val,
        "best_at_last_validation": bool(result.val_rows) and summary.best_iteration == result.val_rows[-1]["iteration"],
        "budget": _budget(summary.iterations, summary.budget),
        "protocol": summary.protocol or (task.protocol if task else ""),
        "dataset": task.dataset if task else "", "ways": task.ways if task else 0, "shots": task.shots if task else 0,
        "train_seconds": summary.train_seconds, "seconds_per_iteration": summary.seconds_per_iteration,
        "episodes_per_second": summary.episodes_per_second, "test_ms_per_episode": summary.test_ms_per_episode,
        "peak_mib": summary.peak_memory_bytes / 2**20, "peak_kind": summary.peak_memory_kind,
        "classes": (config.get("train") or {}).get("classes", "train") if isinstance(config.get("train"), dict) else "train",
        "device": summary.device, "commit": _commit(result.environment),
        "threads": result.environment.get("torch_threads") if isinstance(result.environment.get("torch_threads"), int) else None,
        **_loads(result.environment, summary),
        "niceness": result.environment.get("niceness"), "command": result.environment.get("command") or "",
        "train_cpu_seconds": summary.train_cpu_seconds if summary.train_cpu_seconds is not None else math.nan,
        # the wall time of the process that finished the run: a resumed run's last part only
        "process_seconds": summary.wall_seconds, "resumed": summary.resumed,
        "backbone": info.get("backbone") or info.get("architecture") or settings.get("backbone", ""),
        "batch_norm": settings.get("batch_norm", ""),
        "parameters": model.get("parameters", math.nan), "flops_per_query": model.get("flops_per_query", math.nan),
        # measured by runs since it was recorded; before that, the batch-norm setting of an image network
        "transductive": model.get("transductive",
                                  settings.get("batch_norm") == "transductive" and bool(task) and task.kind == "classification"),
        "config": _flatten({k: v for k, v in config.items() if k != "seed"}), "plots": result.folder.plots_dir,
    }


def _loads(environment: dict, summary: RunSummary) -> dict[str, float]:
    """The machine's 1-minute load average as the run started and ended (NaN where not recorded)."""
    start = environment.get("load_average")
    values = {"load_start": start[0] if isinstance(start, list) and start else None, "load_end": summary.load_average_end}
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else math.nan
            for k, v in values.items()}


def _commit(environment: dict) -> str:
    """The short commit the run's code was at (``+dirty`` with uncommitted changes), '' if unknown."""
    commit = environment.get("git_commit")
    if not isinstance(commit, str) or not commit:
        return ""
    return commit[:7] + ("+dirty" if environment.get("git_dirty") is True else "")


def _budget(iterations: int, budget: Budget | None) -> str:
    """What bounded a run of ``iterations`` training steps, in words (``CPU-s``: the process's CPU seconds)."""
    stopped = budget.stopped_by if budget else "iterations"
    if stopped == "budget_seconds":
        return f"{budget.budget_seconds:g} {'CPU-s' if budget.clock == 'cpu' else 's'}"
    if stopped == "patience":
        return f"patience {budget.patience} ({iterations} it)"
    return f"{iterations} it"


def _flatten(config: dict, prefix: str = "") -> dict:
    """Dotted keys as on the command line (``method.inner_lr``, ``train.lr``)."""
    out = {}
    for key, value in config.items():
        key = "method" if key == "method_settings" and not prefix else key
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def setting_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, ``setting``: the settings that tell it from the other runs of its task, method,
    profile and tag (``train.lr=0.01``; '' where they all share one), and ``setting_rank``: that
    setting's place among its group's in the order of their values (meta-batch 8 before 32).

    A setting is the run's config without its seed, compared on the keys every run of the group
    records (runs written before a key existed still match)."""
    out = pd.DataFrame({"setting": "", "setting_rank": 0}, index=runs.index)
    for _, group in runs.groupby(["task", "method", "profile", "tag"], sort=True):
        differing = _differing(group)
        values = group["config"].map(lambda c: tuple(c[k] for k in differing))
        rank = {v: i for i, v in enumerate(sorted(set(values)))}
        out.loc[group.index, "setting"] = group["config"].map(lambda c: ", ".join(f"{k}={_text(c[k])}" for k in differing))
        out.loc[group.index, "setting_rank"] = values.map(lambda v: rank[v])
    return out


def _differing(group: pd.DataFrame) -> list[str]:
    """The config keys that every run of ``group`` records and that differ between them."""
    common = set.intersection(*(set(c) for c in group["config"]))
    return sorted(k for k in common if len({c[k] for c in group["config"]}) > 1)


def select(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per task, method, profile and tag, the setting (``setting_labels``, in the ``setting``
    column; candidates in ``setting_rank`` order) with the best mean validation metric.

    Candidates are compared on the seeds they all ran (all their seeds where they share none), so
    that seeds added to the chosen setting afterwards cannot change the choice. Test results play
    no part. Returns the runs of the chosen settings, and one row per candidate where there were
    several.
    """
    kept, candidates = [], []
    for (task, method, profile, tag), group in runs.groupby(["task", "method", "profile", "tag"], sort=True):
        if group["setting"].nunique() == 1:
            kept.append(group)
            continue
        higher_is_better = group["metric"].iloc[0] == "accuracy"
        by_setting = [(setting, runs_of) for (_, setting), runs_of in group.groupby(["setting_rank", "setting"])]
        shared = set.intersection(*(set(r["seed"]) for _, r in by_setting))
        scored = []
        for setting, runs_of in by_setting:
            compared = runs_of[runs_of["seed"].isin(shared)] if shared else runs_of
            scored.append({
                "task": task, "method": method, "profile": profile, "tag": tag, "setting": setting,
                "runs": len(runs_of), "compared_seeds": ",".join(map(str, sorted(compared["seed"]))),
                "validation": compared["best_val"].mean(),
                "validation_std": compared["best_val"].std(ddof=1) if len(compared) > 1 else math.nan, "rows": runs_of,
            })
        best = max(scored, key=lambda c: _merit(c["validation"], higher_is_better))
        for c in scored:
            c["selected"] = c is best
        kept.append(best["rows"])
        candidates += [{k: v for k, v in c.items() if k != "rows"} for c in scored]
    return pd.concat(kept, ignore_index=True), pd.DataFrame(candidates, columns=CANDIDATE_COLUMNS)


def _merit(validation: float, higher_is_better: bool) -> float:
    """Larger is better; a diverged (NaN) validation metric is the worst."""
    if math.isnan(validation):
        return -math.inf
    return validation if higher_is_better else -validation


def _text(value) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value)
