"""The meta-learning methods: one package per method, named by its folder (``methods/csn/`` is
``csn``), each exposing one ``Method`` subclass. Adding a folder adds a method.

Methods from outside this repository join the same registry (docs/adding-a-method.md): an
installed distribution declares an entry point in the ``csn_bench.methods`` group, or a folder
of method packages is named by ``--methods-path`` (``$CSN_BENCH_METHODS_PATH``, folders separated
by the platform's path separator). A name that is already taken is an error."""

import os

from bench.interface.method import Method
from bench.registry import PackageRegistry, entry_point_entries, folder_entries

ENTRY_POINT_GROUP = "csn_bench.methods"
PATH_VARIABLE = "CSN_BENCH_METHODS_PATH"


def _folders() -> list[str]:
    return [f for f in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if f]


def add_folders(folders) -> None:
    """Adds folders of method packages (``--methods-path``) before those already named; through
    the environment, so that a sweep's worker processes find them too."""
    if folders:
        os.environ[PATH_VARIABLE] = os.pathsep.join([*folders, *_folders()])


METHODS = PackageRegistry("method", __name__, __path__, Method,
                          outside=lambda: entry_point_entries(ENTRY_POINT_GROUP) + folder_entries(_folders()),
                          outside_key=_folders)

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "Method", "PATH_VARIABLE", "add_folders"]
