"""The memory-mapped training data over a real prepared dataset: splits, flips, sampler, checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from poseguide.dataset import (
    DatasetError,
    EpochSampler,
    MixedPoseDataset,
    PoseDataset,
    collate_batch,
    steps_per_epoch,
    to_model_inputs,
    validate_dataset,
)
from poseguide.landmarks import flip_horizontal


@pytest.fixture(scope="module")
def info(prepared_dataset):
    return validate_dataset(prepared_dataset, image_size=128)


@pytest.fixture
def broken(tmp_path, prepared_dataset) -> Path:
    """A private copy of the prepared dataset to damage."""
    out = tmp_path / "data"
    shutil.copytree(prepared_dataset, out)
    return out


def test_validate_reads_the_split_and_manifest(info, prepared_dataset):
    manifest = json.loads((prepared_dataset / "manifest.json").read_text())
    assert info.num_samples == manifest["counts"]["samples"] == len(np.load(prepared_dataset / "images.npy", mmap_mode="r"))
    assert len(info.train_indices) == manifest["counts"]["train"] > 0
    assert len(info.val_indices) == manifest["counts"]["val"]
    assert set(info.train_indices).isdisjoint(info.val_indices)
    assert sorted([*info.train_indices, *info.val_indices]) == list(range(info.num_samples))
    assert info.image_size == 128
    assert info.background == tuple(manifest["background"])
    assert info.framing == manifest["framing"]


def test_items_are_uint8_from_the_memory_maps(info):
    data = PoseDataset(info.root, info.train_indices)
    item = data[3]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (128, 128, 3)
    assert item["mask"].dtype == torch.uint8 and item["mask"].shape == (128, 128)
    assert item["landmarks"].dtype == torch.float32 and item["landmarks"].shape == (33, 4)
    index = int(info.train_indices[3])
    assert item["index"] == index and not item["flipped"]
    images = np.load(info.root / "images.npy", mmap_mode="r")
    assert np.array_equal(item["image"].numpy(), images[index])
    assert isinstance(data.arrays[0], np.memmap)


def test_flipped_item_mirrors_image_mask_and_swaps_landmarks(info):
    data = PoseDataset(info.root, info.train_indices)
    n = len(data)
    for i in (0, n - 1):
        plain, mirrored = data[i], data[i + n]
        assert mirrored["flipped"] and mirrored["index"] == plain["index"]
        assert torch.equal(mirrored["image"], plain["image"].flip(1))
        assert torch.equal(mirrored["mask"], plain["mask"].flip(1))
        assert np.array_equal(mirrored["landmarks"].numpy(), flip_horizontal(plain["landmarks"].numpy()))
    with pytest.raises(IndexError):
        data[2 * n]


def test_batch_read_matches_items(info):
    data = PoseDataset(info.root, info.train_indices)
    n = len(data)
    items = [5, 0, 5 + n, 2]
    batch = data.__getitems__(items)
    for row, i in enumerate(items):
        single = data[i]
        for key in ("image", "mask", "landmarks", "index", "flipped"):
            assert torch.equal(batch[key][row], single[key]), key


def test_mixed_dataset_reads_each_part_and_mirrors_after_all_of_them(info):
    """Items 0..a-1 are the first part's, a..a+b-1 the second's; item i + a + b is item i mirrored."""
    first = PoseDataset(info.root, info.train_indices[:3])
    second = PoseDataset(info.root, info.val_indices[:2])
    mixed = MixedPoseDataset([first, second])
    assert len(mixed) == 5
    items = [4, 0, 3 + 5, 1 + 5, 2]  # second's last, first's first, second's first mirrored, ...
    batch = mixed.__getitems__(items)
    expected = [second[1], first[0], second[0 + 2], first[1 + 3], first[2]]
    for row, single in enumerate(expected):
        for key in ("image", "mask", "landmarks", "index", "flipped"):
            assert torch.equal(batch[key][row], single[key]), (row, key)
    assert batch["part"].tolist() == [1, 0, 1, 0, 0]
    assert batch["flipped"].tolist() == [False, False, True, True, False]
    with pytest.raises(IndexError):
        mixed.__getitems__([10])


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    sampler = EpochSampler(50, seed=3, flip=True)
    first = list(sampler)
    assert sorted(i % 50 for i in first) == list(range(50))
    assert 10 < sum(i >= 50 for i in first) < 40  # about half mirrored
    assert list(EpochSampler(50, seed=3, flip=True)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert list(EpochSampler(50, seed=4)) != first
    assert all(i < 50 for i in EpochSampler(50, flip=False))
    assert list(EpochSampler(5, flip=False, shuffle=False)) == [0, 1, 2, 3, 4]


def test_workers_deliver_the_same_batches(info):
    """The data stream does not depend on worker processes (their seeds play no part)."""
    data = PoseDataset(info.root, info.train_indices)

    def batches(workers: int) -> list[dict]:
        sampler = EpochSampler(len(data), seed=1)
        sampler.set_epoch(2)
        loader = DataLoader(data, batch_size=4, sampler=sampler, collate_fn=collate_batch, drop_last=True, num_workers=workers)
        return list(loader)

    inline, workers = batches(0), batches(2)
    assert len(inline) == len(data) // 4 == len(workers)
    for a, b in zip(inline, workers):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_model_inputs_are_normalised_on_the_device(info):
    data = PoseDataset(info.root, info.train_indices)
    batch = data.__getitems__([0, 1, 2])
    image, mask, landmarks = to_model_inputs(batch, "cpu", channels_last=True)
    assert image.shape == (3, 3, 128, 128) and image.dtype == torch.float32
    assert image.is_contiguous(memory_format=torch.channels_last)
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert torch.allclose(image[0, :, 5, 7], batch["image"][0, 5, 7].float() / 127.5 - 1)
    assert mask.shape == (3, 1, 128, 128) and 0.0 <= mask.min() and mask.max() <= 1.0
    assert landmarks.shape == (3, 33, 4)
    image, _, _ = to_model_inputs(batch, "cpu", channels_last=False)
    assert image.is_contiguous()


def test_steps_per_epoch_counts_the_short_last_step():
    assert steps_per_epoch(10, 1) == 10
    assert steps_per_epoch(10, 3) == 4  # Accelerate syncs on an epoch's last batch too


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "manifest.json").unlink(), r"manifest.json: missing; .* is not a prepared dataset"),
        (lambda d: (d / "manifest.json").write_text("{"), r"manifest.json: not valid JSON"),
        (lambda d: (d / "images.npy").unlink(), r"images.npy: missing"),
        (lambda d: _truncate(d / "images.npy"), r"images.npy: unreadable or truncated .npy file"),
        (lambda d: (d / "masks.npy").write_bytes(b"not numpy"), r"masks.npy: unreadable or truncated .npy file"),
        (
            lambda d: np.save(d / "landmarks.npy", np.load(d / "landmarks.npy")[:-1]),
            r"landmarks.npy: expected float32 \(\d+, 33, 4\), found float32 \(\d+, 33, 4\)",
        ),
        (
            lambda d: np.save(d / "masks.npy", np.load(d / "masks.npy").astype(np.float32)),
            r"masks.npy: expected uint8 .* found float32",
        ),
        (lambda d: _poison_landmarks(d), r"landmarks.npy: sample 1 has non-finite landmarks"),
        (lambda d: _edit_csv(d, drop_last=True), r"samples.csv: has \d+ rows but the arrays hold \d+ samples"),
        (lambda d: _edit_csv(d, split="test"), r"samples.csv: line 2: split should be train or val, got 'test'"),
        (lambda d: (d / "samples.csv").unlink(), r"samples.csv: missing"),
    ],
)
def test_broken_datasets_fail_in_one_line(broken, damage, message):
    damage(broken)
    with pytest.raises(DatasetError, match=message) as err:
        validate_dataset(broken, image_size=128)
    assert "\n" not in str(err.value)


def test_wrong_image_size_for_the_config(prepared_dataset):
    with pytest.raises(DatasetError, match=r"images are 128x128 px but the model config wants 256x256"):
        validate_dataset(prepared_dataset, image_size=256)
    with pytest.raises(DatasetError, match="no such dataset directory"):
        validate_dataset(prepared_dataset.parent / "nope")


def _poison_landmarks(root: Path) -> None:
    landmarks = np.load(root / "landmarks.npy")
    landmarks[1, 4, 0] = np.nan
    np.save(root / "landmarks.npy", landmarks)


def _edit_csv(root: Path, drop_last: bool = False, split: str | None = None) -> None:
    lines = (root / "samples.csv").read_text().splitlines()
    if drop_last:
        lines = lines[:-1]
    if split:
        cells = lines[1].split(",")
        cells[1] = split
        lines[1] = ",".join(cells)
    (root / "samples.csv").write_text("\n".join(lines) + "\n")
