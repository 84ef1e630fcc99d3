"""mini-ImageNet on disk (Ravi & Larochelle's split): two layouts, held as uint8 in memory.

Under ``<data root>/miniimagenet/``, either

- learn2learn's pickles ``mini-imagenet-cache-{train,validation,test}.pkl``: a dict with
  ``image_data`` (uint8 N x 84 x 84 x 3) and ``class_dict`` (class -> row indices); or
- the Ravi CSV layout: ``images/`` plus ``train.csv``, ``val.csv``, ``test.csv``
  (``filename,label``), the CSVs beside ``images/`` or in ``splits/ravi/``.

A split is kept as uint8 [classes, images per class, H, W, 3] (about 1.3 GB for all three
splits, where learn2learn's float32 copy costs about 5 GB); batches become float on the device.
"""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.data.classification import ClassificationSource
from bench.data.storage import Verification, cache_dir, read_cache, write_cache
from bench.errors import DataError, first_line
from bench.files import read_file

SPLITS = {"train": "train", "val": "validation", "test": "test"}  # our name -> learn2learn's
PICKLE_NAME = "mini-imagenet-cache-{}.pkl"
IMAGE_SIZE = 84
PREPROCESS_VERSION = 1


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 [C, P, H, W, 3], ``classes`` the C WordNet ids (sorted)."""

    images: torch.Tensor
    classes: tuple[str, ...]


def folder(root: Path) -> Path:
    return root / "miniimagenet"


def split_csv(root: Path, split: str) -> Path | None:
    """The Ravi CSV of ``split``, beside ``images/`` or in ``splits/ravi/``."""
    for path in (folder(root) / f"{split}.csv", folder(root) / "splits" / "ravi" / f"{split}.csv"):
        if path.is_file():
            return path
    return None


def read_csv(path: Path) -> list[tuple[str, str]]:
    """(filename, label) rows of a Ravi split CSV."""
    try:
        rows = list(csv.reader(io.StringIO(read_file(path).decode(), newline="")))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not rows or [c.strip() for c in rows[0]] != ["filename", "label"]:
        raise DataError(f"{path} is not a Ravi split CSV (expected the header 'filename,label')")
    body = [r for r in rows[1:] if r]
    if any(len(r) != 2 for r in body):
        raise DataError(f"{path}: every row must be 'filename,label'")
    return [(r[0].strip(), r[1].strip()) for r in body]


def _missing_message(root: Path, split: str) -> str:
    base = folder(root)
    return (
        f"mini-ImageNet {split} split not found under {base}: put learn2learn's "
        f"{PICKLE_NAME.format(SPLITS[split])} there, or an images/ folder with the Ravi "
        f"{split}.csv (pass --data-root or set CSN_BENCH_DATA to the folder holding miniimagenet/)"
    )


class _NumpyOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else (a pickle can run code)."""

    ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _by_class(labels: list[str], what: str) -> tuple[tuple[str, ...], list[list[int]]]:
    """Sorted classes and each one's row indices (in file order); equal counts required."""
    rows: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        rows.setdefault(label, []).append(i)
    classes = tuple(sorted(rows))
    counts = {len(rows[c]) for c in classes}
    if len(counts) > 1:
        raise DataError(f"{what}: classes have different numbers of images ({min(counts)} to {max(counts)})")
    return classes, [rows[c] for c in classes]


def load_pickle(path: Path) -> Split:
    """One learn2learn pickle, checked for what a failed download leaves behind."""
    try:
        data = read_file(path)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise DataError(
            f"{path} is an HTML page, not a pickle: the download failed (large files on Google "
            "Drive answer with a warning page). Download it again and check that it is about 1 GB"
        )
    try:
        blob = _NumpyOnly(io.BytesIO(data), encoding="latin1").load()
        image_data, class_dict = blob["image_data"], blob["class_dict"]
    except Exception as exc:  # truncated or foreign files raise many types
        raise DataError(f"{path} is not a mini-ImageNet pickle ({type(exc).__name__}: {first_line(exc, 120)})") from None
    if not isinstance(image_data, np.ndarray) or image_data.dtype != np.uint8 or image_data.ndim != 4 or image_data.shape[3] != 3:
        shape = getattr(image_data, "shape", None)
        raise DataError(f"{path}: image_data must be uint8 N x H x W x 3, got {type(image_data).__name__} {shape}")
    labels = [""] * len(image_data)
    for cls, indices in class_dict.items():
        for i in indices:
            if not 0 <= int(i) < len(image_data):
                raise DataError(f"{path}: class_dict points past image_data (index {i})")
            labels[int(i)] = str(cls)
    used = [i for i, label in enumerate(labels) if label]
    classes, rows = _by_class([labels[i] for i in used], str(path))
    order = torch.tensor([[used[i] for i in r] for r in rows])
    return Split(torch.from_numpy(image_data)[order], classes)


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(read_file(path))) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"missing image {path}") from None
    except Exception as exc:  # PIL raises many types for a broken file
        raise DataError(f"corrupt image {path}: {exc}") from None


def load_csv_layout(root: Path, split: str, size: int = IMAGE_SIZE, progress: bool = True) -> Split:
    """One split from ``images/`` and its Ravi CSV, resized to ``size`` (LANCZOS), cached."""
    csv_path = split_csv(root, split)
    images_dir = folder(root) / "images"
    if csv_path is None or not images_dir.is_dir():
        raise DataError(_missing_message(root, split))
    rows = read_csv(csv_path)
    classes, members = _by_class([label for _, label in rows], str(csv_path))
    paths = [[images_dir / rows[i][0] for i in r] for r in members]
    missing = [p for r in paths for p in r if not p.is_file()]
    if missing:
        raise DataError(f"{len(missing)} images listed in {csv_path} are missing, e.g. {missing[0]}")
    # File names, sizes and modification times identify the images without reading them all.
    digest = hashlib.sha256(f"{size}:{PREPROCESS_VERSION}".encode())
    for r in paths:
        for p in r:
            st = p.stat()
            digest.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cache = cache_dir() / f"miniimagenet-{split}-{size}px-{digest.hexdigest()[:20]}.pt"
    blob = read_cache(cache)
    if blob is not None and tuple(blob.get("classes", ())) == classes and "images" in blob:
        return Split(blob["images"], classes)
    images = np.zeros((len(classes), len(paths[0]), size, size, 3), dtype=np.uint8)
    bar = tqdm(total=images.shape[0] * images.shape[1], desc=f"mini-ImageNet {split}", disable=not progress, leave=False)
    with bar:
        for c, r in enumerate(paths):
            for j, p in enumerate(r):
                images[c, j] = _decode(p, size)
                bar.update(1)
    result = Split(torch.from_numpy(images), classes)
    write_cache(cache, {"images": result.images, "classes": list(classes)})
    return result


def load_split(root: Path, split: str, size: int = IMAGE_SIZE, progress: bool = True) -> Split:
    """``split`` (train, val or test) from whichever layout is present, pickles first.

    When a Ravi CSV of the split is present, the pickle's classes must be the CSV's.
    """
    pkl = folder(root) / PICKLE_NAME.format(SPLITS[split])
    if pkl.is_file():
        result = load_pickle(pkl)
        csv_path = split_csv(root, split)
        if csv_path is not None:
            expected = tuple(sorted({label for _, label in read_csv(csv_path)}))
            if result.classes != expected:
                raise DataError(
                    f"{pkl} holds {len(result.classes)} classes that are not the {len(expected)} of the "
                    f"Ravi {split} split in {csv_path}"
                )
    else:
        result = load_csv_layout(root, split, size, progress)
    if tuple(result.images.shape[2:]) != (size, size, 3):
        raise DataError(f"mini-ImageNet {split}: images are {tuple(result.images.shape[2:])}, expected ({size}, {size}, 3)")
    return result


def sources(task, root: Path) -> dict[str, ClassificationSource]:
    return ravi_sources(root, task.image_size)


def verify(root: Path) -> Verification:
    """Notes what is there (no digests of the images are published, so none are checked); the
    data is optional until a mini-ImageNet task runs, which names anything missing."""
    if not folder(root).is_dir():
        return Verification()
    found = [split for split in SPLITS if (folder(root) / PICKLE_NAME.format(SPLITS[split])).is_file()
             or (split_csv(root, split) and (folder(root) / "images").is_dir())]
    if not found:
        return Verification(notes=[f"mini-ImageNet under {folder(root)}: no images"])
    return Verification(notes=[f"mini-ImageNet under {folder(root)}: images of the {', '.join(found)} split"
                               f"{'s' if len(found) > 1 else ''}, not checked (no digests are published)"])


def ravi_sources(root: Path, size: int) -> dict[str, ClassificationSource]:
    """The train/val/test sources of the Ravi split; each sees only its own classes."""
    splits = {split: load_split(root, split, size) for split in SPLITS}
    identity = {"dataset": "miniimagenet", "classes_sha256": hashlib.sha256(
        repr([(split, s.classes, tuple(s.images.shape)) for split, s in splits.items()]).encode()).hexdigest()}
    return {split: ClassificationSource(s.images, list(s.classes), identity) for split, s in splits.items()}
