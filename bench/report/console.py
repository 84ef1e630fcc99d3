"""What the commands print: a run's result line, and the tables of ``bench`` and ``demo`` (no torch)."""

from __future__ import annotations

from bench.report.speed import short_commit


def summary_line(folder) -> str:
    """One run folder's result: test metric and interval, training and wall seconds, peak memory."""
    summary, path = folder.summary(), folder.path
    if summary is None:
        return f"no valid summary in {path}"
    s = summary
    return (
        f"{s.method} on {s.task}: test {s.metric} {s.value:.4f} +- {s.ci95:.4f} over {s.episodes} episodes; "
        f"{s.train_seconds:.0f} s training, {s.wall_seconds:.0f} s wall, peak memory {s.peak_memory_bytes / 2**20:.0f} MiB -> {path}"
    )


def outcome_line(outcome) -> str:
    """A sweep's line for one config of its grid (``Outcome.what`` says what became of it)."""
    if outcome.folder is None:
        c = outcome.config
        return f"{outcome.what:8s} {c.method} on {c.task} seed {c.settings.seed}" + (f": {outcome.error}" if outcome.error else "")
    return f"{outcome.what:8s} " + summary_line(outcome.folder)


def bench_table(record: dict, method: str, task: str) -> str:
    """``bench``'s record as a table: each variant's seconds per iteration against the first's."""
    rows, repeat = record["rows"], record["repeat"]
    base = rows[0]["seconds_per_iteration"]
    commit = short_commit(record)
    rounds = f", median of {repeat} rounds" if repeat > 1 else ""
    lines = [
        f"{method} on {task} ({rows[0]['device']}, {record['threads']} threads, torch {record['torch']}, commit {commit}; "
        f"{record['iterations']} iterations after {record['warmup']} warm-up{rounds})",
        f"{'variant':44s} {'s/iter':>8s} {'episodes/s':>10s} {'all it/s':>9s} {'peak MiB':>9s} {'training MiB':>12s} "
        f"{'estimate MiB':>12s} {'speed vs first':>14s}" + ("  s/iter per round" if repeat > 1 else ""),
    ]
    for r in rows:
        each = "  " + " ".join(f"{s:.3f}" for s in r["seconds_per_iteration_runs"]) if repeat > 1 else ""
        lines.append(
            f"{r['variant']:44s} {r['seconds_per_iteration']:8.3f} {r['episodes_per_second']:10.1f} "
            f"{r['iterations_per_second']:9.2f} {r['peak_memory_bytes'] / 2**20:9.0f} {r['training_memory_bytes'] / 2**20:12.0f} "
            f"{r['estimated_training_bytes'] / 2**20:12.0f} {base / r['seconds_per_iteration']:13.2f}x{each}"
        )
    lines.append(
        "s/iter: one run's (the median of the copies run at once); all it/s: iterations per second of all "
        "copies together; peak: CUDA peak allocated on a GPU, the process's peak RSS on CPU (summed over "
        "copies); training: the peak minus memory in use before the first step; estimate: the memory "
        "estimate of that growth (docs/memory.md)" + ("; memory: the largest of the rounds" if repeat > 1 else "")
    )
    return "\n".join(lines)


def verification_lines(result) -> list[str]:
    """``data verify``: a line per note, missing and corrupt file of a ``Verification``, then the
    verdict when nothing is missing or corrupt."""
    found = [f"{kind}: {line}" for kind, lines in (("note", result.notes), ("missing", result.missing),
                                                   ("corrupt", result.corrupt)) for line in lines]
    return found + ([f"ok: {result.checked or 'nothing on disk'} match their checksums"] if result.ok else [])


def check_line(check) -> str:
    """``check-method``'s line for one rule (a ``conformance.Check``)."""
    return f"{'pass' if check.ok else 'FAIL'}  {check.rule:20s} {check.detail}"


def demo_table(task: str, summaries: list) -> str:
    """``demo``'s comparison of the runs' summaries (``RunSummary``)."""
    lines = [f"\n{task}, demo profile (short training: not the paper numbers)",
             f"{'method':12s} {'accuracy':>17s} {'train s':>8s} {'s/iter':>8s} {'test ms/ep':>10s} {'peak MiB':>9s}"]
    lines += [f"{s.method:12s} {100 * s.value:7.2f} +- {100 * s.ci95:5.2f} % "
              f"{s.train_seconds:8.1f} {s.seconds_per_iteration:8.3f} {s.test_ms_per_episode:10.2f} "
              f"{s.peak_memory_bytes / 2**20:9.0f}" for s in summaries]
    return "\n".join(lines)


def listing(methods: list[type], tasks: list, backbones: list[str]) -> str:
    """``list``: each method (name, task kinds, first docstring line, profiles), task and backbone."""
    from bench.engine.runconfig import profiles

    lines = ["methods:"]
    for m in methods:
        doc = ((m.__doc__ or "").strip().splitlines() or [""])[0]
        lines += [f"  {m.name:12s} {', '.join(sorted(m.kinds))}  {doc}", f"  {'':12s} profiles: {', '.join(profiles(m))}"]
    lines.append("tasks:")
    for t in tasks:
        shape = f"{t.ways}-way {t.shots}-shot" if t.kind == "classification" else f"{t.shots}-shot regression"
        lines.append(f"  {t.name:16s} {shape}, {t.queries} queries, {t.test_episodes} test episodes (v{t.version})")
    lines.append(f"backbones: {', '.join(backbones)}")
    return "\n".join(lines)
