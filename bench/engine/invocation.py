"""The command line that started a run, handed from the ``cli.py`` process down to the processes
its sweep starts (they inherit the environment; Ray's get it in their runtime environment)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

VARIABLE = "CSN_BENCH_COMMAND"


def record(argv: list[str]) -> None:
    """Keeps ``argv`` (``cli.py run --method csn ...``) for this process and its children."""
    os.environ[VARIABLE] = shlex.join([Path(argv[0]).name, *argv[1:]])


def command() -> str:
    """The recorded command line; '' where the harness was called from Python (tests, notebooks)."""
    return os.environ.get(VARIABLE, "")
