"""A prepared dataset directory (see `poseguide prepare`) as torch data, memory-mapped.

Nothing is decoded or resized here: `prepare` already stored every crop at the model's
size, so reading a batch is one fancy-indexing gather from the .npy memory maps. Samples
stay uint8 (a quarter of the bytes of float32 through the DataLoader) and are converted
and normalised on the training device by `to_model_inputs`.

The flip augmentation is decided by the sampler, not by random calls inside the dataset:
`EpochSampler` yields index `i` for sample `i` and `i + len(dataset)` for its mirror image.
So the whole data stream is a pure function of (seed, epoch, position), which is what makes
a resumed run see exactly the batches an uninterrupted one would, with any number of
workers and processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from poseguide.datasetdir import ARRAY_FILES, IMAGES, LANDMARKS, MANIFEST, MASKS, SAMPLES, read_manifest, read_split
from poseguide.landmarks import NUM_LANDMARKS, flip_horizontal

# Crop-normalised landmarks stay within a crop side or so of the crop (prepare frames the
# person in the middle); values far beyond are a corrupt file, which drawing would overflow.
LANDMARK_LIMIT = 100.0


class DatasetError(ValueError):
    """A missing, corrupt or mismatched dataset directory. The message is one line."""


@dataclass
class DatasetInfo:
    """What `validate_dataset` learnt about a dataset directory (arrays are not kept open)."""

    root: Path
    manifest: dict
    image_size: int
    num_samples: int
    train_indices: np.ndarray
    val_indices: np.ndarray
    background: tuple[int, int, int] = (0, 0, 0)
    framing: dict = field(default_factory=dict)


def validate_dataset(root: str | Path, image_size: int | None = None) -> DatasetInfo:
    """Check a dataset directory before training starts: files present, arrays readable with
    matching shapes and dtypes, landmarks finite and in range, split column valid, and (if given) the
    image size the model expects. Raises DatasetError with one line naming the problem."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory (make one with `poseguide prepare`)")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise DatasetError(f"{manifest_path}: missing; {root} is not a prepared dataset (run `poseguide prepare`)")
    manifest = read_manifest(manifest_path, DatasetError)
    size = manifest.get("image_size")
    if not isinstance(size, int) or size < 1:
        raise DatasetError(f"{manifest_path}: bad image_size {size!r}")
    if image_size is not None and size != image_size:
        raise DatasetError(
            f"{root}: images are {size}x{size} px but the model config wants {image_size}x{image_size} "
            f"(prepare the dataset at --size {image_size}, or set model.image_size={size})"
        )

    arrays = {name: _open_array(root / name) for name in ARRAY_FILES}
    images, masks, landmarks = (arrays[n] for n in ARRAY_FILES)
    n = images.shape[0] if images.ndim else 0
    expected = {
        IMAGES: (np.uint8, (n, size, size, 3)),
        MASKS: (np.uint8, (n, size, size)),
        LANDMARKS: (np.float32, (n, NUM_LANDMARKS, 4)),
    }
    for name, (dtype, shape) in expected.items():
        array = arrays[name]
        if array.dtype != dtype or array.shape != shape:
            raise DatasetError(
                f"{root / name}: expected {np.dtype(dtype).name} {_shape(shape)}, found {array.dtype.name} {_shape(array.shape)}"
            )
    if n == 0:
        raise DatasetError(f"{root}: the dataset holds no samples")
    if not np.isfinite(landmarks).all():
        bad = int(np.flatnonzero(~np.isfinite(landmarks).reshape(n, -1).all(axis=1))[0])
        raise DatasetError(f"{root / LANDMARKS}: sample {bad} has non-finite landmarks")
    coords, visibility = landmarks[..., :3], landmarks[..., 3]
    wild = (np.abs(coords) > LANDMARK_LIMIT).reshape(n, -1).any(axis=1) | ((visibility < 0) | (visibility > 1)).any(axis=1)
    if wild.any():
        bad = int(np.flatnonzero(wild)[0])
        raise DatasetError(
            f"{root / LANDMARKS}: sample {bad} has landmarks beyond +-{LANDMARK_LIMIT:g} crop sides "
            f"or a visibility outside [0, 1]"
        )

    train, val = read_split(root / SAMPLES, n, DatasetError)
    background = tuple(int(c) for c in manifest.get("background", (0, 0, 0)))
    return DatasetInfo(
        root=root,
        manifest=manifest,
        image_size=size,
        num_samples=n,
        train_indices=train,
        val_indices=val,
        background=background,  # type: ignore[arg-type]
        framing=dict(manifest.get("framing") or {}),
    )


def _open_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a prepared dataset holds {', '.join(ARRAY_FILES)})")
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise DatasetError(f"{path}: unreadable or truncated .npy file ({_one_line(err)})") from None


class PoseDataset(Dataset):
    """The samples `indices` of a prepared dataset; item `i + len(self)` is item `i` mirrored.

    Items are dicts of uint8 images (S, S, 3), uint8 masks (S, S), float32 landmarks (33, 4)
    and the sample's dataset index. `__getitems__` reads a whole batch in one gather, which
    the DataLoader uses when present. The memory maps are opened lazily in each process,
    so workers never receive a pickled copy of the arrays.
    """

    def __init__(self, root: str | Path, indices: np.ndarray | list[int]):
        self.root = Path(root)
        self.indices = np.asarray(indices, dtype=np.int64)
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = tuple(np.load(self.root / name, mmap_mode="r") for name in ARRAY_FILES)  # type: ignore[assignment]
        return self._arrays  # type: ignore[return-value]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([item])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        n = len(self)
        items = np.asarray(items, dtype=np.int64)
        if len(items) and (items.min() < 0 or items.max() >= 2 * n):
            raise IndexError(f"item out of range for {n} samples (and their mirrors)")
        flip = items >= n
        index = self.indices[items % n]
        images_mm, masks_mm, landmarks_mm = self.arrays
        images = images_mm[index]  # fancy indexing copies: the batch is writable
        masks = masks_mm[index]
        landmarks = np.array(landmarks_mm[index], dtype=np.float32)
        if flip.any():
            images[flip] = images[flip][:, :, ::-1]
            masks[flip] = masks[flip][:, :, ::-1]
            landmarks[flip] = flip_horizontal(landmarks[flip])
        return {
            "image": torch.from_numpy(images),
            "mask": torch.from_numpy(masks),
            "landmarks": torch.from_numpy(landmarks),
            "index": torch.from_numpy(index),
            "flipped": torch.from_numpy(flip),
        }

    def landmarks(self) -> np.ndarray:
        """The (unflipped) landmarks of every sample in this split, (len, 33, 4) float32."""
        return np.array(self.arrays[2][self.indices], dtype=np.float32)


class MixedPoseDataset(Dataset):
    """Several PoseDatasets as one index space, mirrors after all of them (item `i + len`
    is item `i` mirrored), so EpochSampler shuffles and flips the mixture unchanged. Used to
    add synthetic people in many poses to the user's samples."""

    def __init__(self, parts: list[PoseDataset]):
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([item]).items()}

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        n = len(self)
        items = np.asarray(items, dtype=np.int64)
        if len(items) and (items.min() < 0 or items.max() >= 2 * n):
            raise IndexError(f"item out of range for {n} samples (and their mirrors)")
        flip, base = items >= n, items % n
        part_of = np.searchsorted(self.offsets, base, side="right") - 1
        out: dict[str, torch.Tensor] = {}
        for k, part in enumerate(self.parts):
            rows = np.flatnonzero(part_of == k)
            if not len(rows):
                continue
            local = base[rows] - self.offsets[k] + flip[rows] * len(part)
            batch = part.__getitems__(local.tolist())
            for key, value in batch.items():
                if key not in out:
                    out[key] = value.new_empty((len(items), *value.shape[1:]))
                out[key][torch.from_numpy(rows)] = value
        out["part"] = torch.from_numpy(part_of)
        return out


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DataLoader's collate_fn: `PoseDataset.__getitems__` already returns a batch."""
    return batch


class EpochSampler(Sampler[int]):
    """A shuffled pass over `num_samples` items per epoch, each mirrored with probability 1/2
    (as item `i + num_samples`) when `flip` is on. The order depends only on (seed, epoch), so
    every process draws the same order (Accelerate then shards it) and a resumed run can skip
    straight to its position. Call `set_epoch` before each epoch, as with DistributedSampler."""

    def __init__(self, num_samples: int, seed: int = 0, flip: bool = True, shuffle: bool = True):
        self.num_samples = num_samples
        self.seed = seed
        self.flip = flip
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def order(self, epoch: int | None = None) -> list[int]:
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + (self.epoch if epoch is None else epoch))
        n = self.num_samples
        items = torch.randperm(n, generator=rng) if self.shuffle else torch.arange(n)
        if self.flip:
            items = items + n * torch.randint(0, 2, (n,), generator=rng)
        return items.tolist()

    def __iter__(self):
        return iter(self.order())


def to_model_inputs(
    batch: dict[str, torch.Tensor], device: torch.device | str, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 batch -> (image (B,3,S,S) in [-1, 1], mask (B,1,S,S) in [0, 1], landmarks (B,33,4)),
    converted on `device`. The uint8 (B, S, S, C) layout is already NHWC, so channels_last
    costs nothing: permuting it gives a channels_last tensor without a copy."""
    image = batch["image"].to(device, non_blocking=True).permute(0, 3, 1, 2)
    mask = batch["mask"].to(device, non_blocking=True)[:, None]
    if not channels_last:
        image = image.contiguous()
    image = image.float().mul_(2.0 / 255.0).sub_(1.0)
    mask = mask.float().mul_(1.0 / 255.0)
    if channels_last:
        mask = mask.contiguous(memory_format=torch.channels_last)
    landmarks = batch["landmarks"].to(device, non_blocking=True).float()
    return image, mask, landmarks


def steps_per_epoch(num_batches: int, gradient_accumulation_steps: int) -> int:
    """Optimiser steps in one pass: Accelerate also syncs on an epoch's last batch."""
    return math.ceil(num_batches / gradient_accumulation_steps)


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
