"""Command line of the benchmark: ``python cli.py --help``."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from pathlib import Path

import click

from bench.errors import UserError


def one_line_errors(fn):
    """Bad input ends with one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            click.echo(f"error: {' '.join(str(exc).splitlines())}", err=True)  # one line, whatever a library said
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)

    return wrapper


data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False), default=None,
    help="Folder holding omniglot/ (default: $CSN_BENCH_DATA, else ./data).",
)
out_option = click.option(
    "--out", type=click.Path(file_okay=False), default="results", show_default=True,
    help="Results folder (runs/ and index.jsonl go here).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Few-shot meta-learning benchmark: CSN, MAML and Prototypical Networks on identical episodes."""
    from bench.engine.allocator import keep_freed_memory

    keep_freed_memory()


@cli.command("list")
@click.option("--keys", "keys_of", metavar="METHOD", default=None,
              help="List every config key of a run of METHOD (type, default, meaning) instead.")
@click.option("--markdown", is_flag=True, help="With --keys: as a Markdown table.")
@one_line_errors
def list_cmd(keys_of, markdown) -> None:
    """Lists methods (with their profiles), tasks and backbones."""
    if keys_of is not None:
        click.echo(config_keys(keys_of, markdown), nl=False)
        return
    from bench.data.tasks import TASKS
    from bench.engine.runconfig import profiles
    from bench.interface.backbones import BACKBONES
    from methods import METHODS

    click.echo("methods:")
    for name in METHODS:
        cls = METHODS.get(name)
        click.echo(f"  {name:12s} {', '.join(sorted(cls.kinds))}  {(cls.__doc__ or '').strip().splitlines()[0]}")
        click.echo(f"  {'':12s} profiles: {', '.join(profiles(cls))}")
    click.echo("tasks:")
    for name in TASKS:
        t = TASKS.get(name)
        shape = f"{t.ways}-way {t.shots}-shot" if t.kind == "classification" else f"{t.shots}-shot regression"
        click.echo(f"  {name:16s} {shape}, {t.queries} queries, {t.test_episodes} test episodes (v{t.version})")
    click.echo(f"backbones: {', '.join(BACKBONES)}")


def config_keys(method: str, markdown: bool = False) -> str:
    """Every key of a run of ``method``, from the config dataclasses' field docstrings."""
    from bench.config import describe, keys_markdown
    from bench.engine.runconfig import RunSettings
    from methods import METHODS

    rows = describe(RunSettings) + describe(METHODS.get(method).Config, "method")
    if markdown:
        return keys_markdown(rows)
    width = max(len(r.key) for r in rows)
    return "".join(f"{r.key:{width}s}  {r.type} = {r.default}\n{'':{width}s}  {r.doc}\n" for r in rows)


def run_options(fn):
    options = [
        click.option("--seed", type=int, default=None, help="Run seed (training episodes and initialisation)."),
        click.option("--profile", default="quick", show_default=True, help="A profile of the method (`list` shows them)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="YAML config file."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. train.lr=0.001."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Default: auto."),
        data_root_option,
        out_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resolve_config(method, task, seed, profile, config_file, assignments, device, grid_point=None):
    from bench.config import merge, parse_assignments
    from bench.engine.runconfig import resolve
    from methods import METHODS

    overrides = merge(parse_assignments(assignments), grid_point or {})
    command_line = {k: v for k, v in {"seed": seed, "device": device}.items() if v is not None}
    return resolve(METHODS.get(method), task, profile, config_file, merge(overrides, command_line))


def open_run(run_dir):
    """The run folder at ``run_dir`` and the config it was made with."""
    from bench.engine.runconfig import from_record
    from bench.results.runfolder import RunFolder
    from methods import METHODS

    folder = RunFolder(run_dir)
    return folder, from_record(folder.read_config(), METHODS.get, str(folder.path))


@cli.command()
@click.option("--method", default=None, help="Method name (see `list`).")
@click.option("--task", default=None, help="Task name (see `list`).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue an interrupted run folder from its last checkpoint (its own config is used).")
@click.option("--deterministic", is_flag=True, default=None, help="Use PyTorch's deterministic algorithms (recorded).")
@click.option("--tensorboard", is_flag=True, help="Also write the curves as TensorBoard events into the run folder.")
@run_options
@one_line_errors
def run(method, task, resume_dir, deterministic, tensorboard, seed, profile, config_file, assignments, device, data_root, out) -> None:
    """Meta-trains METHOD on TASK, keeps the best validation checkpoint and tests it."""
    from bench.data.storage import resolve_root
    from bench.engine.run import run as run_one

    if resume_dir is not None:
        if method or task or seed is not None or config_file or assignments or deterministic:
            raise UserError("--resume continues a run with its own config: give no --method, --task, --seed, --config, --set or --deterministic")
        folder, config = open_run(resume_dir)
        if folder.is_complete():
            raise UserError(f"{folder.path} already finished; nothing to resume")
        root, out, resume = resolve_root(data_root), folder.results_root, folder
    else:
        if not method or not task:
            raise UserError("run needs --method and --task (or --resume RUN_DIR)")
        extra = ("deterministic=true",) if deterministic else ()
        config = resolve_config(method, task, seed, profile, config_file, (*assignments, *extra), device)
        root, out, resume = resolve_root(data_root), Path(out), None
    with late_signals_ignored():
        folder = run_one(config, root, out, resume=resume, tensorboard=tensorboard)
        click.echo(summary_line(folder))


# Set when cli.py is the program: the process ends with the command, so the signals a command
# ignores at its end stay ignored until it exits (in-process callers, such as tests, get their
# handlers back).
AT_EXIT = {"keep_handlers": False}


@contextlib.contextmanager
def late_signals_ignored():
    """The run handles SIGINT and SIGTERM while it runs; one that comes after its summary is
    written (while the result line is printed, or while the interpreter shuts down) finds the
    run complete: it changes nothing, and the command still exits 0 rather than dying with a
    half-printed line or click's "Aborted!"."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # SIG_IGN, unlike a Python handler, survives the interpreter's shutdown, which puts
            # Python handlers back to the default (a kill) before the process ends.
            signal.signal(sig, signal.SIG_IGN if AT_EXIT["keep_handlers"] else handler)


def summary_line(folder) -> str:
    s = folder.summary()
    if s is None:
        return f"no valid summary in {folder.path}"
    key = s["metric"]
    return (
        f"{s['method']} on {s['task']}: test {key} {s[key]:.4f} +- {s[key + '_ci95']:.4f} over {s['episodes']} "
        f"episodes; {s['train_seconds']:.0f} s training, {s['wall_seconds']:.0f} s wall, "
        f"peak memory {s['peak_memory_bytes'] / 2**20:.0f} MiB -> {folder.path}"
    )


@cli.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--task", default=None, help="Evaluate on this task instead (same data, at most the trained ways).")
@click.option("--episodes", type=int, default=None, help="Number of test episodes (default: the task's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@data_root_option
@one_line_errors
def eval_cmd(run_dir, task, episodes, device, data_root) -> None:
    """Re-evaluates a run's best checkpoint on the test episodes of its task or a compatible one."""
    from bench.data.storage import resolve_root
    from bench.data.tasks import get_task
    from bench.engine.reevaluate import reevaluate

    folder, config = open_run(run_dir)
    path = reevaluate(folder, config, get_task(task) if task else None, episodes, device, resolve_root(data_root))
    click.echo(f"evaluation written to {path}")


def csv_values(text: str | None, convert=str) -> list:
    if text is None:
        return [None]
    try:
        return [convert(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"cannot read the list '{text}'") from None


@cli.command()
@click.option("--method", required=True, help="Method name (see `list`).")
@click.option("--task", required=True, help="Task name (see `list`).")
@click.option("--impl", default=None, help="Comma-separated values of the method's `impl` setting to compare.")
@click.option("--chunks", default=None, help="Comma-separated train.chunk_tasks values to compare (0: whole meta-batch).")
@click.option("--compile", "compile_modes", default=None, help="Comma-separated train.compile values to compare (none, graphs).")
@click.option("--memory-format", "memory_formats", default=None,
              help="Comma-separated memory_format values to compare (contiguous, channels_last).")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True, help="Timed iterations.")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed iterations first.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="Rounds: each times every variant once, in alternating order; the median is reported.")
@click.option("--jobs", "jobs_list", default="1", show_default=True,
              help="Comma-separated numbers of copies run at once on the device (aggregate iterations/s).")
@run_options
@one_line_errors
def bench(method, task, impl, chunks, compile_modes, memory_formats, iterations, warmup, repeat, jobs_list, seed, profile,
          config_file, assignments, device, data_root, out) -> None:
    """Times meta-training iterations of each variant on the same episodes (a fresh process each)."""
    import itertools

    from bench.data.storage import resolve_root
    from bench.engine.timing import summarise, time_in_fresh_process
    from bench.files import write_json
    from bench.results.runfolder import now_stamp

    jobs_levels = csv_values(jobs_list, int)
    if not jobs_levels or any(not 1 <= n <= 64 for n in jobs_levels):
        raise UserError(f"--jobs takes numbers from 1 to 64, got '{jobs_list}'")
    variants = []
    for impl_value, chunk, mode, layout in itertools.product(csv_values(impl), csv_values(chunks, int), csv_values(compile_modes),
                                                             csv_values(memory_formats)):
        extra = [f"method.impl={impl_value}"] if impl_value is not None else []
        extra += [f"train.chunk_tasks={chunk}"] if chunk is not None else []
        extra += [f"train.compile={mode}"] if mode is not None else []
        extra += [f"memory_format={layout}"] if layout is not None else []
        config = resolve_config(method, task, seed, profile, config_file, (*assignments, *extra), device)
        for jobs in jobs_levels:
            label = ", ".join(extra + ([f"jobs={jobs}"] if len(jobs_levels) > 1 or jobs > 1 else [])) or "default"
            variants.append((label, config, jobs))
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in variants}
    load_start = os.getloadavg()[0]
    for round_ in range(repeat):
        # Alternating the order keeps a machine that slows down or speeds up from favouring one variant.
        for label, config, jobs in variants if round_ % 2 == 0 else reversed(variants):
            click.echo(f"timing {label} (round {round_ + 1} of {repeat}) ...", err=True)
            runs[label].append(time_in_fresh_process(config, resolve_root(data_root), iterations, warmup, jobs))
    rows = [{"variant": label, "config": config.to_dict(), **summarise(runs[label])} for label, config, _ in variants]
    base = rows[0]["seconds_per_iteration"]
    rounds = f", median of {repeat} rounds" if repeat > 1 else ""
    import torch

    from bench.engine.provenance import CODE_STATE, commit_label

    provenance = {**CODE_STATE, "torch": torch.__version__, "threads": rows[0]["torch_threads"],
                  "load_average": {"start": load_start, "end": os.getloadavg()[0]}}
    click.echo(f"{method} on {task} ({rows[0]['device']}, {provenance['threads']} threads, torch {torch.__version__}, "
               f"commit {commit_label(CODE_STATE)}; {iterations} iterations after {warmup} warm-up{rounds})")
    click.echo(
        f"{'variant':44s} {'s/iter':>8s} {'episodes/s':>10s} {'all it/s':>9s} {'peak MiB':>9s} {'training MiB':>12s} "
        f"{'estimate MiB':>12s} {'speed vs first':>14s}" + ("  s/iter per round" if repeat > 1 else "")
    )
    for r in rows:
        each = "  " + " ".join(f"{s:.3f}" for s in r["seconds_per_iteration_runs"]) if repeat > 1 else ""
        click.echo(
            f"{r['variant']:44s} {r['seconds_per_iteration']:8.3f} {r['episodes_per_second']:10.1f} "
            f"{r['iterations_per_second']:9.2f} {r['peak_memory_bytes'] / 2**20:9.0f} {r['training_memory_bytes'] / 2**20:12.0f} "
            f"{r['estimated_training_bytes'] / 2**20:12.0f} {base / r['seconds_per_iteration']:13.2f}x{each}"
        )
    click.echo(
        "s/iter: one run's (the median of the copies run at once); all it/s: iterations per second of all "
        "copies together; peak: CUDA peak allocated on a GPU, the process's peak RSS on CPU (summed over "
        "copies); training: the peak minus memory in use before the first step; estimate: the memory "
        "estimate of that growth (see README)"
        + ("; memory: the largest of the rounds" if repeat > 1 else "")
    )
    path = Path(out) / "bench" / f"{task}__{method}__{now_stamp()}.json"
    write_json(path, {"iterations": iterations, "warmup": warmup, "repeat": repeat, **provenance, "rows": rows})
    click.echo(f"written to {path}")


@cli.command()
@click.option("--methods", "method_names", required=True, help="Comma-separated methods.")
@click.option("--task", required=True, help="Task name (see `list`).")
@click.option("--iterations", type=click.IntRange(1), default=5, show_default=True, help="Timed steps per figure.")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed steps first.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="Rounds: each times every figure once, in alternating order; medians are reported.")
@click.option("--test-episodes", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Test episodes timed (reported per 1,000).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="torch threads (default: torch's).")
@run_options
@one_line_errors
def floor(method_names, task, iterations, warmup, repeat, test_episodes, threads, seed, profile, config_file, assignments,
          device, data_root, out) -> None:
    """Each method's standalone training step (NCHW and channels_last), the harness's iteration and the time outside it."""
    from bench.data.storage import resolve_root
    from bench.engine.floor import format_tables, measure
    from bench.files import write_json
    from bench.results.runfolder import now_stamp

    names = csv_values(method_names)
    if not names or None in names:
        raise UserError("--methods needs at least one method name")
    configs = [resolve_config(m, task, seed, profile, config_file, assignments, device) for m in names]
    result = measure(configs, resolve_root(data_root), iterations, warmup, repeat, test_episodes, threads,
                     echo=lambda text: click.echo(text, err=True))
    click.echo(format_tables(result))
    path = Path(out) / "floor" / f"{task}__{profile}__{now_stamp()}.json"
    write_json(path, result)
    click.echo(f"written to {path}")


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
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: child processes on this machine; ray: one Ray task per run.")
@click.option("--address", default=None, help="Ray cluster to join (ray start --head prints it); default: a local one.")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True,
              help="Ray: times a failed run is retried (it resumes from its last checkpoint).")
@run_options
@one_line_errors
def sweep(method_names, task_names, seeds, grid, jobs, runs_per_gpu, threads_per_run, executor, address, retries, seed, profile,
          config_file, assignments, device, data_root, out) -> None:
    """Runs a grid of methods x tasks x settings x seeds; finished runs are skipped and interrupted
    ones resumed, so a stopped sweep carries on where it was."""
    import os

    from bench.config import parse_grid
    from bench.data.storage import resolve_root
    from bench.data.tasks import get_task
    from bench.engine.device import torch_threads
    from bench.engine.run import run as run_one
    from bench.engine.sweep import parallel_sweep, ray_sweep
    from bench.engine.sweep import sweep as run_sweep
    from bench.errors import RunFailed
    from methods import METHODS

    if seed is not None:
        raise UserError("sweep takes --seeds, not --seed")
    for option, text in (("--methods", method_names), ("--tasks", task_names), ("--seeds", seeds)):
        if not csv_values(text):
            raise UserError(f"{option} names nothing: give a comma-separated list")
    configs = []
    for task in csv_values(task_names):
        for method in csv_values(method_names):
            if get_task(task).kind not in METHODS.get(method).kinds:
                click.echo(f"skipping {method} on {task}: it does not support {get_task(task).kind} tasks", err=True)
                continue
            for point in parse_grid(grid):
                for s in csv_values(seeds, int):
                    configs.append(resolve_config(method, task, s, profile, config_file, assignments, device, point))
    root, results = resolve_root(data_root).resolve(), Path(out).resolve()
    threads = threads_per_run or max(1, (os.cpu_count() or 1) // jobs)
    here = None  # the thread count of runs made in this process (the sequential sweep's)
    if executor == "ray":
        outcomes = ray_sweep(configs, results, root, address, threads, runs_per_gpu, retries)
    elif jobs > 1:
        outcomes = parallel_sweep(configs, results, root, jobs, threads, visible_gpus(device), runs_per_gpu)
    else:
        outcomes = run_sweep(configs, lambda c, resume: run_one(c, root, results, resume=resume), results)
        here = threads_per_run
    failed = []
    with torch_threads(here):  # outcomes are produced lazily: the runs happen inside this block
        for outcome in outcomes:
            if outcome.what == "failed":
                failed.append(outcome)
                click.echo(f"failed   {outcome.config.method} on {outcome.config.task} seed {outcome.config.settings.seed}: "
                           f"{outcome.error}")
            else:
                click.echo(f"{outcome.what:9s}" + summary_line(outcome.folder))
    if failed:
        raise RunFailed(f"{len(failed)} of {len(configs)} runs failed (logs under {results / 'sweeps'}); "
                        "sweep again to resume them")


def visible_gpus(device: str | None) -> list[str]:
    """The GPUs a parallel sweep shares out (none when runs are on the CPU)."""
    import os

    if device == "cpu":
        return []
    import torch

    count = torch.cuda.device_count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


@cli.command()
@click.option("--results", type=click.Path(file_okay=False), default="results", show_default=True, help="Results folder to read.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default: RESULTS/report).")
@one_line_errors
def report(results, out) -> None:
    """Tables (Markdown, CSV, LaTeX) and plots from the runs' files: accuracy with CIs next to the
    published numbers, paired differences, runtime and memory."""
    from bench.report.build import build_report

    path = build_report(Path(results), Path(out) if out else Path(results) / "report")
    click.echo(f"report written to {path}")


@cli.group()
def data() -> None:
    """Data management."""


@data.command("verify")
@data_root_option
@one_line_errors
def data_verify(data_root) -> None:
    """Checks every dataset on disk (Omniglot and its split files, the Penn Treebank files,
    what mini-ImageNet holds) against its checksums; lists what is missing or corrupt."""
    from bench.data.datasets import DATASETS
    from bench.data.storage import resolve_root
    from bench.errors import DataError

    root = resolve_root(data_root)
    checked, missing, corrupt = [], [], []
    for name in DATASETS:
        dataset = DATASETS.get(name)
        if not dataset.on_disk:
            continue
        result = dataset.verify(root)
        for note in result.notes:
            click.echo(f"note: {note}")
        checked += [result.checked] if result.checked else []
        missing += result.missing
        corrupt += result.corrupt
    for path in missing:
        click.echo(f"missing: {path}")
    for path in corrupt:
        click.echo(f"corrupt: {path}")
    if missing or corrupt:
        raise DataError(f"data check failed: {len(missing)} missing, {len(corrupt)} corrupt")
    click.echo(f"ok: {'; '.join(checked) or 'nothing on disk'} match their checksums")


@data.command("synth-miniimagenet")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--layout", type=click.Choice(["pickle", "csv"]), default="pickle", show_default=True)
@click.option("--per-class", type=click.IntRange(2), default=20, show_default=True, help="Images per class.")
@one_line_errors
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
@one_line_errors
def plot_shifts(run_dir, task_seed) -> None:
    """Draws a CSN sinusoid run's shifts (before/after, single reads, all together) as PNGs
    into the run folder's plots/, where `report` finds them."""
    from bench.data.storage import resolve_root
    from bench.engine.setup import load_weights, set_up
    from methods.csn.plots import check_run, write_shift_plots

    folder, config = open_run(run_dir)
    check_run(config)
    setup = set_up(config, resolve_root(None), device="cpu")
    load_weights(setup.method, folder.load_best(config.method), folder)
    for path in write_shift_plots(setup.method, config.task_spec.shots, folder.plots_dir, task_seed):
        click.echo(f"wrote {path}")


@cli.command()
@data_root_option
@out_option
@one_line_errors
def demo(data_root, out) -> None:
    """Every method on omniglot-5w1s with the short `demo` profile, then a comparison table."""
    from bench.data.storage import resolve_root
    from bench.data.tasks import get_task
    from bench.engine.run import run as run_one
    from methods import METHODS

    task = "omniglot-5w1s"
    summaries = []
    for name in METHODS:
        if get_task(task).kind not in METHODS.get(name).kinds:
            continue
        config = resolve_config(name, task, 0, "demo", None, (), None)
        summaries.append(run_one(config, resolve_root(data_root), Path(out)).summary())
    click.echo(f"\n{task}, demo profile (short training: not the paper numbers)")
    click.echo(f"{'method':12s} {'accuracy':>17s} {'train s':>8s} {'s/iter':>8s} {'test ms/ep':>10s} {'peak MiB':>9s}")
    for s in summaries:
        click.echo(
            f"{s['method']:12s} {100 * s['accuracy']:7.2f} +- {100 * s['accuracy_ci95']:5.2f} % "
            f"{s['train_seconds']:8.1f} {s['seconds_per_iteration']:8.3f} {s['test_ms_per_episode']:10.2f} "
            f"{s['peak_memory_bytes'] / 2**20:9.0f}"
        )


if __name__ == "__main__":
    AT_EXIT["keep_handlers"] = True
    cli()
