import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CSN_BENCH_CACHE", str(REPO / ".cache" / "tests"))

DATA_FIXTURES = {"data_root", "omniglot"}


def pytest_collection_modifyitems(items):
    """``slow`` means "uses the real Omniglot data", so it is derived from the fixtures a test
    requests, never written by hand (a hand-written marker could lie)."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            raise pytest.UsageError(f"{item.nodeid}: do not mark tests slow by hand; request the data_root fixture")
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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
