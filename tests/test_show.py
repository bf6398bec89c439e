"""`poseguide show` on damaged datasets: the validator training uses refuses them in one line,
and nothing is drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from poseguide.cli import main

SAMPLES = 6


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, prepared_dataset) -> Path:
    """The first samples of the real prepared dataset, as a dataset dir of their own."""
    out = tmp_path_factory.mktemp("show") / "small"
    out.mkdir()
    shutil.copy(prepared_dataset / "manifest.json", out)
    for name in ("images", "masks", "landmarks"):
        np.save(out / f"{name}.npy", np.load(prepared_dataset / f"{name}.npy")[:SAMPLES])
    with open(prepared_dataset / "samples.csv", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    (out / "samples.csv").write_text("".join(lines[: SAMPLES + 1]))
    return out


def _show(capsys, data: Path, sheet: Path) -> tuple[int, str]:
    code = main(["show", str(data), "-o", str(sheet), "--num", "4"])
    return code, capsys.readouterr().err


def _damaged(small: Path, where: Path, damage) -> Path:
    copy = where / "data"
    shutil.copytree(small, copy)
    damage(copy)
    return copy


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wild_landmarks(data: Path) -> None:
    poses = np.load(data / "landmarks.npy")
    poses[2, 5, 0] = 1e30
    np.save(data / "landmarks.npy", poses)


DAMAGE = {
    "truncated images": (lambda d: _truncate(d / "images.npy"), "images.npy: unreadable or truncated"),
    "empty images": (lambda d: (d / "images.npy").write_bytes(b""), "images.npy: unreadable or truncated"),
    "short images": (lambda d: np.save(d / "images.npy", np.load(d / "images.npy")[:3]), "masks.npy: expected uint8 (3,"),
    "missing masks": (lambda d: (d / "masks.npy").unlink(), "masks.npy: missing"),
    "missing samples.csv": (lambda d: (d / "samples.csv").unlink(), "samples.csv: missing"),
    "landmarks of 1e30": (_wild_landmarks, "landmarks.npy: sample 2 has landmarks beyond"),
    "samples.csv without source": (
        lambda d: (d / "samples.csv").write_text((d / "samples.csv").read_text().replace("source", "origin", 1)),
        "samples.csv: needs the columns index, split, source, frame",
    ),
    "float images": (lambda d: np.save(d / "images.npy", np.load(d / "images.npy").astype(np.float32)),
                     "images.npy: expected uint8"),
    "flat masks": (lambda d: np.save(d / "masks.npy", np.load(d / "masks.npy").reshape(SAMPLES, -1)),
                   "masks.npy: expected uint8"),
}


def test_show_draws_a_good_dataset(capsys, tmp_path, small_dataset):
    code, err = _show(capsys, small_dataset, tmp_path / "sheet.png")
    assert code == 0, err
    assert (tmp_path / "sheet.png").is_file()


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_show_refuses_a_damaged_dataset_in_one_line(capsys, tmp_path, small_dataset, case):
    damage, message = DAMAGE[case]
    data = _damaged(small_dataset, tmp_path, damage)
    sheet = tmp_path / "sheet.png"
    code, err = _show(capsys, data, sheet)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not sheet.exists()


def test_the_validator_refuses_wild_landmarks_for_training_too(tmp_path, small_dataset):
    from poseguide.dataset import DatasetError, validate_dataset

    data = _damaged(small_dataset, tmp_path, _wild_landmarks)
    with pytest.raises(DatasetError, match="sample 2 has landmarks beyond"):
        validate_dataset(data)
    visibility = _damaged(small_dataset, tmp_path / "v", lambda d: None)
    poses = np.load(visibility / "landmarks.npy")
    poses[1, 0, 3] = 7.0
    np.save(visibility / "landmarks.npy", poses)
    with pytest.raises(DatasetError, match="sample 1 .* visibility outside"):
        validate_dataset(visibility)
