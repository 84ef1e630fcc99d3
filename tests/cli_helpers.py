"""Running the CLI in-process, shared by the test modules that do."""

from pathlib import Path

from click.testing import CliRunner

from cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def the_run(out: Path) -> Path:
    """The one run folder under ``out``."""
    (run_dir,) = (out / "runs").iterdir()
    return run_dir
