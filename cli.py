"""Command line of the benchmark: ``python cli.py --help``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from bench.commandline import Commands, data_root_option, out_option, run_options, timing_options
from bench.config import describe, keys_markdown, keys_text, parse_grid, parse_list, parse_names
from bench.engine import invocation
from bench.errors import CheckFailed, DataError, UserError
from bench.report.console import (bench_table, check_line, demo_table, listing, outcome_line, summary_line,
                                  verification_lines)
from bench.results.runfolder import report_dir, write_timing_record


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--methods-path", "methods_path", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="A folder of method packages from outside the repository (repeatable; also $CSN_BENCH_METHODS_PATH).")
def cli(methods_path) -> None:
    """Few-shot meta-learning benchmark: CSN, MAML, Prototypical Networks and Matching Networks on identical episodes."""
    from bench.engine.allocator import keep_freed_memory
    from methods import add_folders

    keep_freed_memory()
    add_folders(methods_path)


@cli.command("list")
@click.option("--keys", "keys_of", metavar="METHOD", default=None,
              help="List every config key of a run of METHOD (type, default, meaning) instead.")
@click.option("--markdown", is_flag=True, help="With --keys: as a Markdown table.")
def list_cmd(keys_of, markdown) -> None:
    """Lists methods (with their profiles), tasks and backbones; or every config key of a run of a method."""
    from bench.data.tasks import TASKS
    from bench.engine.runconfig import RunSettings
    from bench.interface.backbones import BACKBONES
    from methods import METHODS

    if keys_of is not None:
        rows = describe(RunSettings) + describe(METHODS.get(keys_of).Config, "method")
        click.echo((keys_markdown if markdown else keys_text)(rows), nl=False)
    else:
        loaded, broken = METHODS.load_all()
        click.echo(listing(loaded, [TASKS.get(n) for n in TASKS], list(BACKBONES)))
        if broken:
            raise UserError(f"{len(broken)} method{'s' if len(broken) > 1 else ''} cannot be loaded: {'; '.join(broken)}")


warn = functools.partial(click.echo, err=True)


def method_class(name: str):
    """The registered method class called ``name`` (a one-line error with suggestions if none is)."""
    from methods import METHODS

    return METHODS.get(name)


# What a resumed run takes from its own folder, so that giving it is refused, not ignored.
RESUME_IGNORES = ("method", "task", "seed", "profile", "config_file", "assignments", "device", "deterministic", "out")


@cli.command()
@click.option("--method", default=None, help="Method name (see `list`).")
@click.option("--task", default=None, help="Task name (see `list`).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue an interrupted run folder from its last checkpoint (its own config is used).")
@click.option("--deterministic", is_flag=True, default=None, help="Use PyTorch's deterministic algorithms (recorded).")
@click.option("--tensorboard", is_flag=True, help="Also write the curves as TensorBoard events into the run folder.")
@run_options
@click.pass_context
def run(ctx, method, task, resume_dir, deterministic, tensorboard, line, data_root, out) -> None:
    """Meta-trains METHOD on TASK, keeps the best validation checkpoint and tests it."""
    from bench.engine.run import late_signals_ignored
    from bench.engine.run import run as run_one
    from bench.engine.runconfig import open_unfinished

    resume = None
    if resume_dir is not None:
        ignored = [p.opts[0] for p in ctx.command.params
                   if p.name in RESUME_IGNORES and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]
        if ignored:
            raise UserError(f"--resume continues a run with its own config and folder: give no {', '.join(ignored)}")
        resume, config = open_unfinished(resume_dir, method_class)
        out = resume.results_root
    elif not method or not task:
        raise UserError("run needs --method and --task (or --resume RUN_DIR)")
    else:
        config = line.config(method_class(method), task, extra=("deterministic=true",) if deterministic else ())
    with late_signals_ignored(until_exit=bool(ctx.obj and ctx.obj.get("program"))):
        folder = run_one(config, data_root, out, resume=resume, tensorboard=tensorboard)
        click.echo(summary_line(folder))


@cli.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--task", default=None, help="Evaluate on this task instead (same data, at most the trained ways).")
@click.option("--episodes", type=int, default=None, help="Number of test episodes (default: as many as the run was tested on).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@data_root_option
def eval_cmd(run_dir, task, episodes, device, data_root) -> None:
    """Re-evaluates a run's best checkpoint on the test episodes of its task or a compatible one."""
    from bench.data.tasks import get_task
    from bench.engine.reevaluate import reevaluate
    from bench.engine.runconfig import open_run

    folder, config = open_run(run_dir, method_class)
    path = reevaluate(folder, config, get_task(task) if task else None, episodes, device, data_root)
    click.echo(f"evaluation written to {path}")


@cli.command()
@click.option("--method", required=True, help="Method name (see `list`).")
@click.option("--task", required=True, help="Task name (see `list`).")
@click.option("--impl", default=None, help="Comma-separated values of the method's `impl` setting to compare.")
@click.option("--chunks", default=None, help="Comma-separated train.chunk_tasks values to compare (0: whole meta-batch).")
@click.option("--compile", "compile_modes", default=None, help="Comma-separated train.compile values to compare (none, graphs).")
@click.option("--memory-format", "memory_formats", default=None,
              help="Comma-separated memory_format values to compare (contiguous, channels_last).")
@timing_options("iterations")
@click.option("--jobs", "jobs_list", default="1", show_default=True,
              help="Comma-separated numbers of copies run at once on the device (aggregate iterations/s).")
@run_options
def bench(method, task, impl, chunks, compile_modes, memory_formats, iterations, warmup, repeat, jobs_list, line, data_root,
          out) -> None:
    """Times meta-training iterations of each variant on the same episodes (a fresh process each)."""
    from bench.engine.timing import bench_variants, variant_grid

    values = {"method.impl": parse_list(impl), "train.chunk_tasks": parse_list(chunks, int),
              "train.compile": parse_list(compile_modes), "memory_format": parse_list(memory_formats)}
    variants = [(label, line.config(method_class(method), task, extra=tuple(extra)), jobs)
                for label, extra, jobs in variant_grid(values, parse_list(jobs_list, int))]
    record = bench_variants(variants, data_root, iterations, warmup, repeat, warn)
    click.echo(bench_table(record, method, task))
    click.echo(f"written to {write_timing_record(out, 'bench', f'{task}__{method}', record)}")


@cli.command()
@click.option("--methods", "method_names", required=True, help="Comma-separated methods.")
@click.option("--task", required=True, help="Task name (see `list`).")
@timing_options("steps per figure")
@click.option("--test-episodes", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Test episodes timed (reported per 1,000).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="torch threads (default: torch's).")
@run_options
def floor(method_names, task, iterations, warmup, repeat, test_episodes, threads, line, data_root, out) -> None:
    """Each method's standalone training step (NCHW and channels_last), the harness's iteration and the time outside it."""
    from bench.engine.floor import format_tables, measure

    configs = [line.config(method_class(m), task) for m in parse_names("--methods", method_names)]
    result = measure(configs, data_root, iterations, warmup, repeat, test_episodes, threads, echo=warn)
    click.echo(format_tables(result))
    click.echo(f"written to {write_timing_record(out, 'floor', f'{task}__{line.profile}', result)}")


@cli.command()
@click.option("--methods", "method_names", required=True, help="Comma-separated methods.")
@click.option("--tasks", "task_names", required=True, help="Comma-separated tasks.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2",
              help="Candidate values of a config key (repeatable: every combination runs); `report` keeps the "
                   "candidate with the best validation metric.")
@click.option("--jobs", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Runs at once, each in its own process (1: one after another in this process).")
@click.option("--runs-per-gpu", type=click.IntRange(1, 64), default=1, show_default=True, help="Runs sharing one GPU.")
@click.option("--threads-per-run", type=click.IntRange(1, 1024), default=None,
              help="CPU threads of each run (default: the cores shared out among the jobs).")
@click.option("--executor", default="local", show_default=True,
              help="local: this process, or child processes with --jobs; ray: one Ray task per run.")
@click.option("--address", default=None, help="Ray cluster to join (ray start --head prints it); default: a local one.")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Ray: times a failed run is retried (it resumes from its last checkpoint).")
@run_options
def sweep(method_names, task_names, seeds, grid, jobs, runs_per_gpu, threads_per_run, executor, address, retries, line,
          data_root, out) -> None:
    """Runs a grid of methods x tasks x settings x seeds; finished runs are skipped and interrupted
    ones resumed, so a stopped sweep carries on where it was."""
    from bench.engine.sweep import ExecutorOptions, pick
    from bench.engine.sweep import sweep as run_sweep
    from bench.engine.sweep.plan import grid_configs

    if line.seed is not None:
        raise UserError("sweep takes --seeds, not --seed")
    methods = [method_class(m) for m in parse_names("--methods", method_names)]
    configs = grid_configs(methods, parse_names("--tasks", task_names), parse_names("--seeds", seeds, int), parse_grid(grid), line, warn)
    options = ExecutorOptions(data_root.resolve(), jobs, threads_per_run, runs_per_gpu, address, retries, line.device)
    run_sweep(configs, out.resolve(), pick(executor, options), lambda outcome: click.echo(outcome_line(outcome)))


@cli.command("check-method")
@click.argument("name")
def check_method(name) -> None:
    """Puts method NAME through the rules the report relies on, on tiny generated tasks: one
    pass/FAIL line per rule (docs/adding-a-method.md says what each checks)."""
    from bench.engine.conformance import check_method as checks

    failed = 0
    for check in checks(method_class(name)):
        failed += not check.ok
        click.echo(check_line(check))
    if failed:
        raise CheckFailed(f"{name} fails {failed} rule{'s' if failed > 1 else ''}")


@cli.command()
@click.option("--tasks", "task_names", default="ptb-5w1s,ptb-5w2s,ptb-5w3s", show_default=True, help="Comma-separated PTB tasks.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="A setting of the language model, e.g. epochs=6 (bench/engine/oracle.py: OracleSettings).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="torch threads (default: torch's).")
@data_root_option
@out_option
def oracle(task_names, assignments, threads, data_root, out) -> None:
    """The PTB tasks' upper bound: an LSTM language model that sees every word, on the tasks' test episodes."""
    from bench.config import build, parse_assignments
    from bench.engine.oracle import OracleSettings, run_oracle

    settings = build(OracleSettings, parse_assignments(assignments))
    for folder in run_oracle(parse_names("--tasks", task_names), data_root, out, settings, threads, warn):
        click.echo(summary_line(folder))


@cli.command()
@click.option("--results", type=click.Path(file_okay=False), default="results", show_default=True, help="Results folder to read.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default: RESULTS/report).")
def report(results, out) -> None:
    """Tables (Markdown, CSV, LaTeX) and plots of the runs: accuracy beside published numbers, differences, time, memory."""
    from bench.report.build import build_report

    path = build_report(Path(results), Path(out) if out else report_dir(Path(results)))
    click.echo(f"report written to {path}")


@cli.group()
def data() -> None:
    """Data management."""


@data.command("verify")
@data_root_option
def data_verify(data_root) -> None:
    """Checks every dataset on disk (Omniglot and its split files, the Penn Treebank files,
    what mini-ImageNet holds) against its checksums; lists what is missing or corrupt."""
    from bench.data.datasets import verify_all

    result = verify_all(data_root)
    click.echo("\n".join(verification_lines(result)))
    if not result.ok:
        raise DataError(f"data check failed: {len(result.missing)} missing, {len(result.corrupt)} corrupt")


@data.command("synth-miniimagenet")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--layout", type=click.Choice(["pickle", "csv"]), default="pickle", show_default=True)
@click.option("--per-class", type=click.IntRange(2), default=20, show_default=True, help="Images per class.")
def data_synth_miniimagenet(root, layout, per_class) -> None:
    """Writes noise images in mini-ImageNet's layout (64/16/20 classes) under ROOT/miniimagenet,
    to time methods on 84x84 inputs without the real images (--data-root ROOT)."""
    from bench.data.miniimagenet import folder
    from bench.data.synthetic import write_miniimagenet

    written = write_miniimagenet(Path(root), layout, per_class=per_class)
    total = sum(images.shape[0] * images.shape[1] for _, images in written.values())
    click.echo(f"wrote {total} synthetic images ({layout} layout) under {folder(Path(root))}")


@cli.command("plot-shifts")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--task-seed", type=int, default=0, show_default=True, help="Which sinusoid task to draw.")
@data_root_option
def plot_shifts(run_dir, task_seed, data_root) -> None:
    """Draws a CSN sinusoid run's shifts (before/after, single reads, all together) as PNGs
    into the run folder's plots/, where `report` finds them."""
    from bench.engine.reevaluate import draw_pictures
    from bench.engine.runconfig import open_run

    folder, config = open_run(run_dir, method_class)
    for path in draw_pictures(folder, config, data_root, task_seed):
        click.echo(f"wrote {path}")


@cli.command()
@data_root_option
@out_option
def demo(data_root, out) -> None:
    """Every method on omniglot-5w1s with the short `demo` profile, then a comparison table."""
    from bench.engine.run import run as run_one
    from bench.engine.sweep.plan import DEMO_TASK, demo_configs
    from methods import METHODS

    configs = demo_configs([METHODS.get(n) for n in METHODS], warn)
    click.echo(demo_table(DEMO_TASK, [run_one(c, data_root, out).summary() for c in configs]))


def main() -> None:
    """``python cli.py`` and the installed ``csn-bench`` command."""
    invocation.record(sys.argv)  # each run records the command that started it
    cli(obj={"program": True})  # the process ends with the command (see late_signals_ignored)


if __name__ == "__main__":
    main()
