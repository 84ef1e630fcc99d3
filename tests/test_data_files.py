"""Omniglot from the official zips, and damaged data: clear errors, exit code 3, never a traceback."""

import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.data.omniglot import load_omniglot, verify
from bench.errors import DataError
from cli import cli


def make_zips(src: Path, dst: Path, damage: str | None = None) -> Path:
    """The two official zips (plus split files) built from the folder layout under ``src``."""
    (dst / "omniglot").mkdir(parents=True)
    for name in ("images_background", "images_evaluation"):
        with zipfile.ZipFile(dst / "omniglot" / f"{name}.zip", "w") as zf:
            for i, path in enumerate(sorted((src / "omniglot" / name).glob("*/*/*.png"))):
                data = path.read_bytes()
                if damage == "png" and name == "images_evaluation" and i == 7:
                    data = data[: len(data) // 3]
                zf.writestr(path.relative_to(src / "omniglot").as_posix(), data)
    shutil.copytree(src / "omniglot" / "splits", dst / "omniglot" / "splits")
    return dst


@pytest.fixture(scope="module")
def zip_root(tmp_path_factory, data_root):
    return make_zips(data_root, tmp_path_factory.mktemp("zips"))


def test_official_zips_load_the_same_images(zip_root, omniglot):
    from_zips = load_omniglot(zip_root, download=False)
    assert from_zips.characters == omniglot.characters
    assert torch.equal(from_zips.images, omniglot.images)
    assert verify(zip_root).ok


def test_truncated_png_is_reported(tmp_path, data_root):
    root = make_zips(data_root, tmp_path / "bad", damage="png")
    with pytest.raises(DataError, match="corrupt image images_evaluation/"):
        load_omniglot(root, download=False)
    result = CliRunner().invoke(cli, ["data", "verify", "--data-root", str(root)])
    assert result.exit_code == 3 and "corrupt:" in result.output


def test_truncated_zip_is_reported(tmp_path, zip_root):
    root = tmp_path / "cut"
    shutil.copytree(zip_root, root)
    archive = root / "omniglot" / "images_background.zip"
    archive.write_bytes(archive.read_bytes()[:5000])
    result = CliRunner().invoke(cli, ["run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke",
                                      "--data-root", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "cannot read" in result.output and "Traceback" not in result.output


def test_split_file_with_wrong_checksum(tmp_path, data_root):
    from bench.data.omniglot import load_split

    target = tmp_path / "omniglot" / "splits" / "vinyals"
    target.mkdir(parents=True)
    (target / "val.txt").write_text((data_root / "omniglot/splits/vinyals/val.txt").read_text() + "Extra/character01/rot000\n")
    with pytest.raises(DataError, match="does not match its checksum"):
        load_split(tmp_path, "val", download=False)


def test_verify_reports_a_manifest_mismatch(tmp_path, data_root):
    """A folder layout with MANIFEST.sha256 is checked file by file."""
    root = tmp_path / "data"
    base = root / "omniglot"
    base.mkdir(parents=True)
    for name in ("images_background", "images_evaluation"):
        (base / name).symlink_to(data_root / "omniglot" / name)
    shutil.copytree(data_root / "omniglot" / "splits", base / "splits")
    lines = (data_root / "omniglot" / "MANIFEST.sha256").read_text().splitlines()
    first_hash, first_path = lines[0].split("  ")
    lines[0] = f"{'0' * 64}  {first_path}"
    (base / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["data", "verify", "--data-root", str(root)])
    assert result.exit_code == 3
    assert f"corrupt: {first_path}" in result.output


def test_a_process_loads_omniglot_once_until_a_file_under_it_changes(tmp_path, zip_root):
    root = tmp_path / "copy"
    shutil.copytree(zip_root, root)
    first = load_omniglot(root, download=False)
    assert load_omniglot(root, download=False) is first  # the 32,460 images were not read again
    archive = root / "omniglot" / "images_background.zip"
    archive.write_bytes(archive.read_bytes()[:5000])  # the next load must see the damage, not the memo
    with pytest.raises(DataError, match="cannot read"):
        load_omniglot(root, download=False)
