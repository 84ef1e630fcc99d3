"""Where data lives: the data root, and the cache of preprocessed datasets."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.errors import DataError
from bench.files import atomic_write_bytes, read_file


@dataclass
class Verification:
    """What ``data verify`` found for one dataset.

    Attributes:
        checked: what matched, for the success line ("32460 Omniglot images, ..."); empty when
            the dataset is absent and optional (nothing is wrong until a task of it runs).
        missing, corrupt: paths. notes: anything else worth a line.
    """

    checked: str = ""
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt)


def resolve_root(data_root: str | os.PathLike | None) -> Path:
    """``--data-root``, else ``$CSN_BENCH_DATA``, else ``./data``."""
    return Path(data_root or os.environ.get("CSN_BENCH_DATA") or "data").expanduser()


def cache_dir() -> Path:
    base = os.environ.get("CSN_BENCH_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    ) / "csn-bench"
    return Path(base)


def read_cache(path: Path) -> dict | None:
    """A preprocessed dataset saved by ``write_cache``; None when absent or damaged (then it
    is rebuilt, never trusted)."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=True)
    except Exception:  # torch.load raises many types for a damaged file
        return None
    return blob if isinstance(blob, dict) else None


def write_cache(path: Path, blob: dict) -> None:
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # an unwritable cache only costs time


def fetch_url(url: str) -> bytes:
    """The bytes at ``url``; a DataError naming it when the fetch fails."""
    import requests

    try:
        response = requests.get(url, timeout=60)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise DataError(f"download of {url} failed ({type(exc).__name__})") from None
    return response.content


def read_or_fetch(path: Path, url: str, missing: str, download: bool = True) -> bytes:
    """The bytes of ``path``, downloaded from ``url`` first when the file is absent and
    ``download`` allows. ``missing`` is the error's text when it is absent and cannot be had."""
    if not path.is_file():
        if not download:
            raise DataError(missing)
        try:
            atomic_write_bytes(path, fetch_url(url))
        except DataError as exc:
            raise DataError(f"{missing} ({exc})") from None
        except OSError as exc:
            raise DataError(f"cannot write {path}: {exc.strerror}") from None
    try:
        return read_file(path)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
