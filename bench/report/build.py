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
from bench.report.tables import accuracy_table, cost_table, latex, markdown, paired_table


def build_report(results: Path, out: Path) -> Path:
    c = collect(results)
    if c.runs.empty:
        raise UserError(f"no complete runs under {results / 'runs'}" + (f" ({len(c.incomplete)} incomplete)" if len(c.incomplete) else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the report folder {out}: {exc.strerror}") from None
    acc, paired, cost = accuracy_table(c), paired_table(c), cost_table(c)
    figures = plots(c, acc, out) + copy_run_figures(c, out)
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
