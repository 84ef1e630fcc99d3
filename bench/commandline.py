"""The command line's shared parts: the group that turns bad input into one line and an exit
code, and the options several commands take. ``cli.py`` declares the commands with them."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from bench.errors import UserError, os_error_line


class Commands(click.Group):
    """Bad input ends with one line on stderr and a non-zero exit, never a traceback (every command)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {' '.join(str(exc).splitlines())}", err=True)  # one line, whatever a library said
            sys.exit(exc.exit_code)
        except OSError as exc:  # a full disk, an unwritable folder, a path too long, outside a run
            click.echo(f"error: {os_error_line(exc)}", err=True)
            sys.exit(3)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)


def stacked(options):
    """One decorator applying ``options`` in order, the first shown first in ``--help``."""
    return lambda fn: functools.reduce(lambda f, option: option(f), reversed(options), fn)


def data_root(ctx, param, value) -> Path:
    from bench.data.storage import resolve_root  # imports torch: only once a command runs

    return resolve_root(value)


data_root_option = click.option("--data-root", type=click.Path(file_okay=False), default=None, callback=data_root,
                                help="Folder holding omniglot/ (default: $CSN_BENCH_DATA, else ./data).")
out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="results", show_default=True,
                          help="Results folder (runs/ and index.jsonl go here).")


def timing_options(what: str):
    """``bench`` and ``floor``: how many steps are timed, after how many untimed ones, in how many rounds."""
    return stacked([
        click.option("--iterations", type=click.IntRange(1), default=5, show_default=True, help=f"Timed {what}."),
        click.option("--warmup", type=click.IntRange(0), default=2, show_default=True, help=f"Untimed {what} first."),
        click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
                     help="Rounds: each times every variant once, in alternating order; the median is reported."),
    ])


def run_options(fn):
    """The options that choose a run's config, given to the command as one ``line`` (a ``CommandLine``)."""

    @functools.wraps(fn)
    def wrapper(*args, seed, profile, config_file, assignments, device, **kwargs):
        from bench.engine.runconfig import CommandLine

        return fn(*args, line=CommandLine(profile, config_file, tuple(assignments), seed, device), **kwargs)

    return stacked([
        click.option("--seed", type=int, default=None, help="Run seed (training episodes and initialisation)."),
        click.option("--profile", default="quick", show_default=True, help="A profile of the method (`list` shows them)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="YAML config file."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. train.lr=0.001."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Default: auto."),
        data_root_option,
        out_option,
    ])(wrapper)
