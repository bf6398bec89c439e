r"""The prepared dataset directory on disk: its file names, the manifest's format and
version, the columns of its tables, and reading the manifest and the train/val split.

`prepare` writes it; `dataset`, `visualize`, `evaluate` and `generate` read it, all through
the names here. Nothing heavy is imported (no torch, cv2 or PIL), so any module can use it.

    manifest.json   {"format": FORMAT, "version": VERSION, "image_size", "background", "framing", ...}
    samples.csv     one row per sample, SAMPLE_COLUMNS; `index` in order, `split` train or val;
                    `track` numbers one person's walk through a video (-1 in photos),
                    `identity_distance` is the distance to the --reference photos, in units of
                    how near the people known to be someone else come (identity.lookalike_distance),
                    `identity_by` face (dlib's face descriptor) or body (clothing colours)
    skipped.csv     one row per frame or person left out, SKIP_COLUMNS
    images.npy      uint8 (N, S, S, 3)
    masks.npy       uint8 (N, S, S)
    landmarks.npy   float32 (N, 33, 4): crop-normalised x, y, z and visibility

Source file names are stored as `name_text` writes them, so a name that is not valid UTF-8
(a Latin-1 `caf\xe9.jpg` from an old camera card) reads well and maps back to its file.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from poseguide.jsonfile import read_versioned_json

FORMAT = "poseguide-dataset"
VERSION = 1

MANIFEST = "manifest.json"
SAMPLES = "samples.csv"
SKIPPED = "skipped.csv"
IMAGES = "images.npy"
MASKS = "masks.npy"
LANDMARKS = "landmarks.npy"
ARRAY_FILES = (IMAGES, MASKS, LANDMARKS)

SAMPLE_COLUMNS = (
    "index", "split", "source", "frame", "person", "box_x0", "box_y0", "box_side",
    "source_width", "source_height", "detector_score", "pose_score", "mask_agreement",
    "track", "identity_distance", "identity_by",
)
SKIP_COLUMNS = ("source", "frame", "reason", "detail")


def name_text(path: str) -> str:
    r"""A file name (as os.fsdecode gives it) as the tables and the manifest store it: UTF-8
    text, with a backslash written `\\` and each byte that is not UTF-8 as `\xNN`, as Python
    shows bytes. Unlike the lone surrogates os.fsdecode makes, this any tool can read, and
    `name_path` turns it back into the same file name."""
    return os.fsencode(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def name_path(text: str) -> str:
    """The file name that `name_text` stored as `text`."""
    def unescape(found: re.Match) -> bytes:
        escape = found.group(1)
        return b"\\" if escape == b"\\" else bytes([int(escape[1:], 16)])

    return os.fsdecode(re.sub(rb"\\(\\|x[0-9a-f]{2})", unescape, text.encode("utf-8", "surrogateescape")))


def read_manifest(path: Path, error: type[Exception]) -> dict:
    """The manifest at `path`, checked for this format and version; problems raise `error`
    with one line. The caller checks that the file exists (each says so differently)."""
    return read_versioned_json(path, FORMAT, VERSION, "dataset manifest", error)


def read_samples(data_dir: str | os.PathLike) -> list[dict]:
    """The rows of samples.csv as dicts of strings, unchecked (see `read_split`)."""
    with open(Path(data_dir) / SAMPLES, newline="") as f:
        return list(csv.DictReader(f))


def read_split(path: Path, n: int, error: type[Exception]) -> tuple[np.ndarray, np.ndarray]:
    """The train and val indices of samples.csv at `path` for arrays of `n` samples, after
    checking its rows: one per sample, in index order, each train or val. Raises `error`."""
    if not path.is_file():
        raise error(f"{path}: missing (it holds the train/val split)")
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise error(f"{path}: unreadable ({_one_line(err)})") from None
    needed = ("index", "split", "source", "frame")  # the split, and the captions of contact sheets
    if rows and not set(needed) <= set(rows[0]):
        raise error(f"{path}: needs the columns {', '.join(needed)}")
    if len(rows) != n:
        raise error(f"{path}: has {len(rows)} rows but the arrays hold {n} samples")
    train, val = [], []
    for line, row in enumerate(rows, start=2):
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise error(f"{path}: line {line}: bad index {row['index']!r}") from None
        if index != line - 2:
            raise error(f"{path}: line {line}: index {index} out of order (expected {line - 2})")
        split = row["split"]
        if split == "train":
            train.append(index)
        elif split == "val":
            val.append(index)
        else:
            raise error(f"{path}: line {line}: split should be train or val, got {split!r}")
    return np.asarray(train, dtype=np.int64), np.asarray(val, dtype=np.int64)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
