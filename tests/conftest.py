import os
from pathlib import Path

import pytest

from bench.engine import invocation

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CSN_BENCH_CACHE", str(REPO / ".cache" / "tests"))
# Tests call the harness from Python, where a run records no command line; one exported by a shell
# (or left by a cli.py that started pytest) would be recorded instead.
os.environ.pop(invocation.VARIABLE, None)
# pytest-xdist starts one worker per core: with torch's default of one thread per core in each
# worker, cores x cores threads would share the cores and spin against each other (the fast
# subset spent 363 CPU-s so, check-method three times its single-thread CPU time). Children a
# test starts inherit it; the sweep sets its own children's threads.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA_FIXTURES = {"data_root", "omniglot"}
HEAVY_FIXTURES = {"ray_cluster", "compiler", "uninterrupted_short_run", "uninterrupted_sweep", "unrefused_run", "concurrent_runs"}


def pytest_collection_modifyitems(items):
    """Markers derived from the fixtures a test requests, never written by hand (a hand-written
    marker could lie): ``slow`` uses the real Omniglot data, ``heavy`` starts a Ray cluster,
    compiles with torch.compile, signals many short runs in subprocesses, refuses the writes of many
    short runs or starts several runs at once (``concurrent_runs``): each a minute or more on two
    cores without any data."""
    for item in items:
        for marker in ("slow", "heavy"):
            if item.get_closest_marker(marker) is not None:
                raise pytest.UsageError(f"{item.nodeid}: do not mark tests {marker} by hand; request its fixture")
        fixtures = set(getattr(item, "fixturenames", ()))
        if DATA_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
        if HEAVY_FIXTURES & fixtures:
            item.add_marker(pytest.mark.heavy)
            # With pytest-xdist (``-n``, ``--dist loadgroup``), one worker takes the heavy tests one
            # after another: each starts processes of its own and some time what those do.
            item.add_marker(pytest.mark.xdist_group("heavy"))


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("CSN_BENCH_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "omniglot").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _shared_data()
    if root is None:
        pytest.fail("real Omniglot data not found: set CSN_BENCH_DATA or put ../shared/data beside the repo")
    return root


@pytest.fixture(scope="session")
def omniglot(data_root):
    from bench.data.omniglot import load_omniglot

    return load_omniglot(data_root, 28, download=False)


@pytest.fixture
def concurrent_runs(tmp_path) -> Path:
    """The results folder of a test that starts several runs at once, each in a process of its own."""
    return tmp_path


@pytest.fixture(autouse=True)
def torch_threads_unchanged():
    """A test (or the code it drives in this process) that leaves torch's thread count changed
    fails: the count changes CPU float results, so it would make later in-process runs differ
    from the same runs in a subprocess."""
    import sys

    before = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    yield
    if before is not None:
        after = sys.modules["torch"].get_num_threads()
        sys.modules["torch"].set_num_threads(before)
        assert after == before, f"torch's thread count was left at {after} (was {before})"
