"""Omniglot on disk: locating, downloading, verifying and preprocessing into a cached tensor.

The data root holds ``omniglot/images_background/`` and ``omniglot/images_evaluation/``
(the official layout) or the two official zips, plus ``omniglot/splits/vinyals/*.txt``.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.classification import ClassificationSource, RandomRotationSource
from bench.data.storage import Verification, cache_dir, fetch_url, read_cache, read_or_fetch, write_cache
from bench.errors import DataError, UserError
from bench.files import atomic_write_bytes, file_sha256, read_file

SETS = ("images_background", "images_evaluation")
N_CHARACTERS = 1623
N_DRAWERS = 20
PREPROCESS_VERSION = 1

OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{name}.zip"
SPLITS_URL = (
    "https://raw.githubusercontent.com/jakesnell/prototypical-networks/"
    "c9bb4d258267c11cb6e23f0a19242d24ca98ad8a/data/omniglot/splits/vinyals/{split}.txt"
)
# sha256 of the sha256sum-style manifest of all 32,460 PNGs (paths relative to omniglot/,
# sorted bytewise): one digest checks every image, whichever form it arrived in.
OMNIGLOT_MANIFEST_SHA256 = "8745d3284205c70953ebeacd9061b7dfdadc5961afab7b71a1553c9aa5bcb1af"
SPLIT_SHA256 = {
    "train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
    "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
    "trainval": "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
    "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
}


@dataclass(frozen=True)
class Omniglot:
    """All 1623 characters, preprocessed.

    Attributes:
        images: uint8 [1623, 20, S, S], strokes high (255), background 0.
        characters: ``"Alphabet/characterNN"`` for each row of ``images``.
        manifest_sha256: sha256 of the files' ``sha256sum``-style manifest: which images these are.
    """

    images: torch.Tensor
    characters: tuple[str, ...]
    manifest_sha256: str

    @property
    def identity(self) -> dict:
        """What a run records about its data: the digest, and whether it is the official set."""
        return {"dataset": "omniglot", "manifest_sha256": self.manifest_sha256,
                "official": self.manifest_sha256 == OMNIGLOT_MANIFEST_SHA256}


class _Source:
    """The PNGs of both sets, from folders or from the official zips."""

    def __init__(self, root: Path):
        self.root = root / "omniglot"
        self.kind = {}
        for name in SETS:
            if (self.root / name).is_dir():
                self.kind[name] = "dir"
            elif (self.root / f"{name}.zip").is_file():
                self.kind[name] = "zip"

    @property
    def complete(self) -> bool:
        return len(self.kind) == len(SETS)

    def signature(self) -> tuple:
        """(path, size, modification time) of every file ``files`` reads: cheap to take, and
        different once a file is added, removed, replaced or rewritten."""
        found = []
        for name in SETS:
            paths = (self.root / name).glob("*/*/*.png") if self.kind[name] == "dir" else [self.root / f"{name}.zip"]
            for path in paths:
                stat = path.stat()
                found.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(sorted(found))

    def files(self) -> list[tuple[str, bytes]]:
        """(path relative to omniglot/, bytes) for every PNG, sorted bytewise by path."""
        out = []
        for name in SETS:
            if self.kind[name] == "dir":
                base = self.root / name
                for path in base.glob("*/*/*.png"):
                    try:
                        out.append((path.relative_to(self.root).as_posix(), read_file(path)))
                    except OSError as exc:
                        raise DataError(f"cannot read {path}: {exc.strerror}") from None
            else:
                try:
                    with zipfile.ZipFile(io.BytesIO(read_file(self.root / f"{name}.zip"))) as zf:
                        for info in zf.infolist():
                            if info.filename.endswith(".png") and "__MACOSX" not in info.filename:
                                out.append((info.filename, zf.read(info)))
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
                    raise DataError(f"cannot read {self.root / f'{name}.zip'}: {exc}") from None
        out.sort(key=lambda item: item[0].encode())
        return out


def manifest(files: list[tuple[str, bytes]]) -> str:
    """The ``sha256sum``-format manifest of ``files``."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in files)


def _missing_message(root: Path) -> str:
    return (
        f"Omniglot not found under {root / 'omniglot'}: put images_background/ and "
        f"images_evaluation/ (or images_background.zip and images_evaluation.zip from "
        f"github.com/brendenlake/omniglot) there, or pass --data-root / set CSN_BENCH_DATA"
    )


def ensure_omniglot(root: Path, download: bool = True) -> _Source:
    source = _Source(root)
    if source.complete:
        return source
    if not download:
        raise DataError(_missing_message(root))
    try:
        for name in SETS:
            if name not in source.kind:
                data = fetch_url(OMNIGLOT_URL.format(name=name))
                atomic_write_bytes(source.root / f"{name}.zip", data)
    except DataError as exc:
        raise DataError(f"{_missing_message(root)} ({exc})") from None
    except OSError as exc:
        raise DataError(f"cannot write Omniglot to {source.root}: {exc.strerror}") from None
    source = _Source(root)
    if hashlib.sha256(manifest(source.files()).encode()).hexdigest() != OMNIGLOT_MANIFEST_SHA256:
        raise DataError(f"downloaded Omniglot under {source.root} does not match its checksum")
    return source


def _decode(path: str, data: bytes, size: int) -> np.ndarray:
    if not data:
        raise DataError(f"corrupt image {path}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("L").resize((size, size), Image.LANCZOS)
    except Exception as exc:  # PIL raises many types for a broken file
        reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "(its bytes)", str(exc)) or type(exc).__name__
        raise DataError(f"corrupt image {path}: {reason}") from None
    return 255 - np.asarray(img, dtype=np.uint8)


def _drawer(path: str) -> int:
    """0-based drawer of ``<alphabet>/<character>/<id>_<drawer>.png`` (drawers 01 to 20)."""
    try:
        drawer = int(Path(path).stem.rsplit("_", 1)[1]) - 1
    except (IndexError, ValueError):
        drawer = -1
    if not 0 <= drawer < N_DRAWERS:
        raise DataError(f"unexpected Omniglot file name {path} (expected <id>_<drawer 01-20>.png)")
    return drawer


# What this process loaded, by folder and size, with the folder's file signature: the runs of a
# sweep in one process (and the tests) read and hash the 32,460 images once, not once a run.
_LOADED: dict[tuple[str, int], tuple[tuple, Omniglot]] = {}


def load_omniglot(root: Path, size: int = 28, download: bool = True) -> Omniglot:
    """Loads all characters resized to ``size`` (LANCZOS, strokes = 1), cached on disk by content
    hash, and in the process while no file under the folder changed."""
    source = ensure_omniglot(root, download)
    key = (str(source.root.resolve()), size)
    try:
        signature = source.signature()
    except OSError:
        signature = None  # unreadable: reading the files says what is wrong
    if signature is not None and key in _LOADED and _LOADED[key][0] == signature:
        return _LOADED[key][1]
    result = _load(source, size)
    if signature is not None:
        _LOADED[key] = (signature, result)
    return result


def _load(source: _Source, size: int) -> Omniglot:
    files = source.files()
    characters = sorted({path.split("/", 1)[1].rsplit("/", 1)[0] for path, _ in files})
    if len(files) != N_CHARACTERS * N_DRAWERS or len(characters) != N_CHARACTERS:
        raise DataError(
            f"Omniglot under {source.root} is incomplete: {len(files)} images of "
            f"{len(characters)} characters, expected {N_CHARACTERS * N_DRAWERS} of {N_CHARACTERS}"
        )
    digest = hashlib.sha256(manifest(files).encode()).hexdigest()
    cache = cache_dir() / f"omniglot-{size}px-v{PREPROCESS_VERSION}-{digest[:20]}.pt"
    blob = read_cache(cache)
    if blob is not None and {"images", "characters"} <= set(blob):
        return Omniglot(blob["images"], tuple(blob["characters"]), digest)
    index = {name: i for i, name in enumerate(characters)}
    images = np.zeros((N_CHARACTERS, N_DRAWERS, size, size), dtype=np.uint8)
    for path, data in files:
        character = path.split("/", 1)[1].rsplit("/", 1)[0]
        images[index[character], _drawer(path)] = _decode(path, data, size)
    result = Omniglot(torch.from_numpy(images), tuple(characters), digest)
    write_cache(cache, {"images": result.images, "characters": list(characters)})
    return result


def load_split(root: Path, split: str, download: bool = True) -> list[str]:
    """The Vinyals split's class names (``Alphabet/characterNN/rotDDD``)."""
    path = root / "omniglot" / "splits" / "vinyals" / f"{split}.txt"
    raw = read_or_fetch(path, SPLITS_URL.format(split=split), f"Vinyals split file missing: {path}", download)
    expected = SPLIT_SHA256.get(split)
    if expected and hashlib.sha256(raw).hexdigest() != expected:
        raise DataError(f"split file {path} does not match its checksum")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise DataError(f"split file {path} is not text") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def verify(root: Path) -> Verification:
    """Checks the Omniglot images and the Vinyals split files against their checksums.

    Per file when the data root has the official ``MANIFEST.sha256``; otherwise the manifest
    of what is there is compared with the known digest of the whole set.
    """
    base = root / "omniglot"
    missing, corrupt, notes = [], [], []
    source = _Source(root)
    if not source.kind:
        return Verification("", [str(base / name) for name in SETS], [], [_missing_message(root)])
    missing += [str(base / name) for name in SETS if name not in source.kind]
    files = dict(source.files()) if source.complete else {}
    listed = base / "MANIFEST.sha256"
    if files and listed.is_file():
        expected = {}
        try:
            lines = read_file(listed).decode().splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
            corrupt.append(f"{listed} (not a readable sha256sum manifest)")
        for line in lines:
            digest, _, path = line.partition("  ")
            expected[path] = digest
        for path, digest in expected.items():
            if path not in files:
                missing.append(path)
            elif hashlib.sha256(files[path]).hexdigest() != digest:
                corrupt.append(path)
        extra = sorted(set(files) - set(expected))
        if extra:
            notes.append(f"{len(extra)} files not in MANIFEST.sha256, e.g. {extra[0]}")
    elif files:
        if hashlib.sha256(manifest(sorted(files.items())).encode()).hexdigest() != OMNIGLOT_MANIFEST_SHA256:
            corrupt.append(f"{base} (the set of images differs from the official one)")
    for split, digest in SPLIT_SHA256.items():
        path = base / "splits" / "vinyals" / f"{split}.txt"
        if not path.is_file():
            missing.append(str(path))
        elif file_sha256(path) != digest:
            corrupt.append(str(path))
    return Verification(f"{len(files)} Omniglot images and the Vinyals split files", missing, corrupt, notes)


def omniglot_split(omniglot, class_lines: list[str]) -> ClassificationSource:
    """One Vinyals split: each ``Alphabet/characterNN/rotDDD`` line is its own class."""
    index = {name: i for i, name in enumerate(omniglot.characters)}
    chars, rots = [], []
    for line in class_lines:
        character, _, rot = line.rpartition("/")
        if character not in index or rot not in ("rot000", "rot090", "rot180", "rot270"):
            raise UserError(f"split names an unknown class '{line}'")
        chars.append(index[character])
        rots.append(int(rot[3:]) // 90)
    base = omniglot.images[torch.tensor(chars)]  # [C, 20, H, W]
    rots_t = torch.tensor(rots)
    images = torch.empty_like(base)
    for k in range(4):
        sel = rots_t == k
        images[sel] = torch.rot90(base[sel], k, dims=(-2, -1))
    return ClassificationSource(images, class_lines, omniglot.identity)


SPLITS = ("train", "val", "test")


def vinyals_sources(root: Path, size: int) -> dict[str, ClassificationSource]:
    """The train/val/test sources of the Vinyals split; each sees only its own classes."""
    omniglot = load_omniglot(root, size)
    return {split: omniglot_split(omniglot, load_split(root, split)) for split in SPLITS}


FINN_SIZES = {"train": 1100, "val": 100, "test": 423}


def finn_split(characters: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """The MAML code's character split (cbfinn/maml, ``data_generator.py``): every character of
    both sets shuffled with ``random.seed(1)``, then 1100 for training, 100 for validation and
    the other 423 for testing.

    The MAML code shuffles the order in which ``os.listdir`` returned the folders, which
    differs between file systems; here the shuffled list is the sorted one, so the split is
    the same everywhere (but not necessarily the characters of the MAML paper's runs).
    """
    order = sorted(characters)
    random.Random(1).shuffle(order)
    train, val = FINN_SIZES["train"], FINN_SIZES["train"] + FINN_SIZES["val"]
    return {"train": order[:train], "val": order[train:val], "test": order[val:]}


def sources(task, root: Path) -> dict[str, ClassificationSource]:
    """The sources of ``task``'s split: the Vinyals split, or the MAML code's (``finn``)."""
    return (finn_sources if task.split == "finn" else vinyals_sources)(root, task.image_size)


def finn_sources(root: Path, size: int) -> dict[str, RandomRotationSource]:
    """The train/val/test sources of the MAML code's protocol: characters as classes, each
    rotated by a random multiple of 90 degrees per task."""
    omniglot = load_omniglot(root, size)
    index = {name: i for i, name in enumerate(omniglot.characters)}
    return {
        split: RandomRotationSource(omniglot.images[torch.tensor([index[c] for c in names])], names, omniglot.identity)
        for split, names in finn_split(omniglot.characters).items()
    }
