"""The dataset dir format, the split, and the near-duplicate filter."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from poseguide import landmarks as lm
from poseguide.datasetdir import SAMPLE_COLUMNS
from poseguide.prepare import (
    REASONS,
    PrepareError,
    PrepareSettings,
    Source,
    assign_splits,
    near_duplicates,
    prepare,
)


@pytest.mark.slow
def test_dataset_dir_format(prepared_dataset):
    d = prepared_dataset
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["format"] == "poseguide-dataset" and manifest["version"] == 1
    assert manifest["image_size"] == 128 and manifest["background"] == [128, 128, 128]
    assert manifest["framing"] == manifest["settings"]["framing"]
    images = np.load(d / "images.npy", mmap_mode="r")
    masks = np.load(d / "masks.npy", mmap_mode="r")
    poses = np.load(d / "landmarks.npy", mmap_mode="r")
    n = manifest["counts"]["samples"]
    assert n >= 20
    assert images.shape == (n, 128, 128, 3) and images.dtype == np.uint8
    assert masks.shape == (n, 128, 128) and masks.dtype == np.uint8
    assert poses.shape == (n, 33, 4) and poses.dtype == np.float32
    with open(d / "samples.csv", newline="") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == SAMPLE_COLUMNS
        rows = list(reader)
    assert [int(r[0]) for r in rows] == list(range(n))
    splits = [r[1] for r in rows]
    assert set(splits) == {"train", "val"}
    assert manifest["counts"]["train"] == splits.count("train") and manifest["counts"]["val"] == splits.count("val")
    # no source contributes to both splits (images are split by file)
    assert not {r[2] for r in rows if r[1] == "val"} & {r[2] for r in rows if r[1] == "train"}
    assert set(manifest["counts"]["skipped"]) == set(REASONS)
    with open(d / "skipped.csv", newline="") as f:
        skipped = list(csv.DictReader(f))
    assert {s["reason"] for s in skipped} <= set(REASONS)
    assert sum(manifest["counts"]["skipped"].values()) == len(skipped)
    # samples: background is the constant colour off the mask; the pose is on the person
    for i in range(n):
        off = np.asarray(masks[i]) == 0
        assert (np.asarray(images[i])[off] == 128).all()
        pose = np.asarray(poses[i])
        assert lm.count_visible_body_joints(pose) >= manifest["settings"]["min_visible"]
        vis = pose[list(lm.BODY_JOINTS)]
        vis = vis[vis[:, 3] >= 0.5]
        assert (vis[:, :2] > 0).all() and (vis[:, :2] < 1).all()
        on = [masks[i][min(127, int(y * 128)), min(127, int(x * 128))] > 0 for x, y in vis[:, :2]]
        assert np.mean(on) >= 0.5


def _video(path: str, frames: int, fps: float = 10.0) -> Source:
    return Source(path=path, kind="video", frame_count=frames, fps=fps)


def test_video_split_has_no_neighbouring_frames_across_train_and_val():
    settings = PrepareSettings(val_fraction=0.2, segment_seconds=10, split_gap_seconds=1)
    sources = {"/v/a.avi": _video("/v/a.avi", 1000), "/v/b.avi": _video("/v/b.avi", 795)}
    entries = [{"source": s, "frame": f} for s in sources for f in range(sources[s].frame_count)]
    split = assign_splits(entries, sources, settings)
    assert split == assign_splits(entries, sources, settings)  # deterministic
    for src, total in (("/v/a.avi", 1000), ("/v/b.avi", 795)):
        lab = {e["frame"]: s for e, s in zip(entries, split) if e["source"] == src}
        val = [f for f in lab if lab[f] == "val"]
        train = [f for f in lab if lab[f] == "train"]
        assert val and train
        assert len(val) / total == pytest.approx(0.2, abs=0.13)
        # every val frame is at least 10 frames (1 s) from every train frame
        gap = min(abs(a - b) for a in val for b in train)
        assert gap > 10
        assert all(len({lab[f] for f in range(s, min(total, s + 100))} - {"gap"}) == 1 for s in range(0, total, 100))


def test_image_split_by_file_is_never_empty():
    settings = PrepareSettings(val_fraction=0.1)
    sources = {f"/p/{i}.jpg": Source(path=f"/p/{i}.jpg", kind="image") for i in range(5)}
    entries = [{"source": s, "frame": 0} for s in sources for _ in range(2)]
    split = assign_splits(entries, sources, settings)
    assert "val" in split and "train" in split
    by_source = {}
    for e, s in zip(entries, split):
        by_source.setdefault(e["source"], set()).add(s)
    assert all(len(v) == 1 for v in by_source.values())
    assert assign_splits(entries, sources, PrepareSettings(val_fraction=0.0)) == ["train"] * len(entries)


@pytest.mark.slow
def test_near_duplicates_are_exact_repeats_not_moving_walkers(prepared_dataset):
    images = np.load(prepared_dataset / "images.npy")
    poses = np.load(prepared_dataset / "landmarks.npy")
    import cv2

    thumbs = np.stack([cv2.resize(im, (12, 12), interpolation=cv2.INTER_AREA).reshape(-1) for im in images])
    settings = PrepareSettings()
    # the real samples: no duplicates among different people/frames
    assert not near_duplicates(thumbs, poses, settings, np.ones(len(thumbs), bool)).any()
    # a re-encoded repeat of sample 0 (a web scrape's copy) is a duplicate; the first copy stays
    noisy = np.clip(thumbs[:1].astype(int) + 1, 0, 255).astype(np.uint8)
    t2 = np.concatenate([thumbs, noisy])
    p2 = np.concatenate([poses, poses[:1] + 0.002])
    dup = near_duplicates(t2, p2, settings, np.ones(len(t2), bool))
    assert dup.tolist() == [False] * len(thumbs) + [True]


def test_settings_are_validated():
    with pytest.raises(PrepareError, match="--size"):
        PrepareSettings(size=4)
    with pytest.raises(PrepareError, match="--every"):
        PrepareSettings(every=0)
    assert PrepareSettings.from_dict(PrepareSettings(size=64).to_dict()) == PrepareSettings(size=64)


@pytest.mark.slow
def test_out_must_be_a_dataset_dir(tmp_path, vtest_frames):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("x")
    with pytest.raises(PrepareError, match="not a poseguide dataset"):
        prepare([vtest_frames[0]], tmp_path / "other")
    with pytest.raises(PrepareError, match="input not found"):
        prepare([tmp_path / "nope.jpg"], tmp_path / "new")
