"""Synthetic mini-ImageNet in both on-disk layouts: for tests, and for timing a method on
84x84 inputs before the real images are at hand. Pixels are noise, classes are made-up ids."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.miniimagenet import PICKLE_NAME, SPLITS
from bench.errors import UserError

RAVI_CLASSES = {"train": 64, "val": 16, "test": 20}


def class_names(split: str, n: int) -> list[str]:
    return [f"n{(list(SPLITS).index(split) + 1) * 10**6 + c:08d}" for c in range(n)]


def split_images(split: str, classes: int, per_class: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Class names and uint8 [classes, per_class, 84, 84, 3] noise images.

    Noise only: any colour cue lets an untrained ProtoNet solve the episodes exactly (loss 0).
    """
    rng = np.random.default_rng([seed, list(SPLITS).index(split)])
    images = 128 + rng.integers(-64, 64, size=(classes, per_class, 84, 84, 3))
    return class_names(split, classes), images.astype(np.uint8)


def write_miniimagenet(
    root: Path, layout: str = "pickle", classes: dict[str, int] | None = None, per_class: int = 20, seed: int = 0
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Writes ``root/miniimagenet/`` in ``layout`` (``pickle`` or ``csv``); returns what it wrote per split.

    The pickles list each class's rows interleaved with the others' (nothing promises
    contiguous rows); the CSV layout stores every class's first image at 100x90, so loading
    exercises the resize.
    """
    folder = root / "miniimagenet"
    if folder.exists():
        raise UserError(f"{folder} already exists: synthetic data is only written to a new folder")
    if layout not in ("pickle", "csv"):
        raise UserError(f"unknown layout '{layout}'; valid: pickle, csv")
    try:
        (folder / "images").mkdir(parents=True) if layout == "csv" else folder.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder}: {exc.strerror}") from None
    written = {}
    for split, n in (classes or RAVI_CLASSES).items():
        names, images = written[split] = split_images(split, n, per_class, seed)
        if layout == "pickle":
            flat = images.transpose(1, 0, 2, 3, 4).reshape(-1, 84, 84, 3)
            class_dict = {name: list(range(c, len(flat), n)) for c, name in enumerate(names)}
            with open(folder / PICKLE_NAME.format(SPLITS[split]), "wb") as f:
                pickle.dump({"image_data": flat, "class_dict": class_dict}, f, protocol=4)
            continue
        lines = ["filename,label"]
        for c, name in enumerate(names):
            for j in range(per_class):
                filename = f"{name}{j:08d}.jpg"
                img = Image.fromarray(images[c, j])
                img = img.resize((100, 90)) if j == 0 else img
                img.save(folder / "images" / filename, quality=98, subsampling=0)
                lines.append(f"{filename},{name}")
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return written
