import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CSN_BENCH_CACHE", str(REPO / ".cache" / "tests"))


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
    from bench.data import load_omniglot

    return load_omniglot(data_root, 28, download=False)
