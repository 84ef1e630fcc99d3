"""Files written atomically (temporary file, fsync, rename): JSON, JSONL, figures; an
append-only JSONL under a lock; and every file the harness reads, read with a bound."""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes through a temporary file, fsync and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _named(exc, path)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


# Larger than any file the harness writes or reads (mini-ImageNet's pickles are about 2 GiB); what it
# bounds is a file that is not one: a device, a FIFO or an endless stream is refused before it is read.
MAX_READ_BYTES = 16 * 2**30


def read_file(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of a regular file (a link to one is followed) of at most ``limit`` bytes.

    Raises:
        OSError: as for any unreadable file, with ``strerror`` saying what it is instead (a
            device, a FIFO, a folder, or a file larger than ``limit``).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise OSError(errno.EINVAL, f"not a regular file but {kind}", str(path))
    # Read in pieces of the file's size, never ``read(limit)``: Python allocates the bytes it is
    # asked for before reading, and 16 GiB at a time is refused (MemoryError) on a machine whose
    # memory is in use, and costs time even where it is not. A file that grows while it is read
    # is read on, up to the limit.
    chunks, total = [], 0
    with open(path, "rb") as fh:
        while chunk := fh.read(min(max(info.st_size, 1 << 16), limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return b"".join(chunks)


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file read by ``read_file``; None where it cannot be read (checks list it as corrupt)."""
    try:
        return hashlib.sha256(read_file(path)).hexdigest()
    except OSError:
        return None


def read_json(path: Path) -> Any:
    return json.loads(read_file(path).decode())


def read_jsonl(path: Path) -> list[dict]:
    """The rows of ``path``, or of its gzipped twin ``path.gz`` where only that exists."""
    path = Path(path)
    if not path.exists() and gzipped(path).is_file():
        text = gzip.decompress(read_file(gzipped(path))).decode()
    else:
        text = read_file(path).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def gzipped(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def gzip_file(path: Path) -> None:
    """Replaces ``path`` by ``path.gz`` (no time stamp inside, so equal files give equal bytes)."""
    atomic_write_bytes(gzipped(path), gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))
    Path(path).unlink()


def append_jsonl(path: Path, row: dict) -> None:
    """Appends one row under an exclusive lock so that concurrent runs never interleave."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row) + "\n").encode()
    with open(path, "ab") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            raise _named(exc, path)
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _named(exc: BaseException, path: Path) -> BaseException:
    """An ``OSError`` of a write (a full disk says nothing of the file) with the file it was for."""
    if isinstance(exc, OSError) and exc.filename is None:
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def write_figure(fig, path: Path) -> Path:
    """Saves a matplotlib figure as PNG (cropped to its content, legends outside the axes
    included) atomically, and closes it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
