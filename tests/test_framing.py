"""THE crop rule: source -> crop -> source is the identity, and pixels land where landmarks say."""

from __future__ import annotations

import numpy as np
import pytest

from poseguide import framing, landmarks as lm
from poseguide.datasetdir import read_samples


def _pose(rng: np.random.Generator) -> np.ndarray:
    pose = np.zeros((33, 4), np.float32)
    pose[:, 0] = rng.uniform(0.3, 0.6, 33)
    pose[:, 1] = rng.uniform(0.2, 0.9, 33)
    pose[:, 2] = rng.normal(0, 0.1, 33)
    pose[:, 3] = rng.uniform(0.6, 1.0, 33)
    return pose


@pytest.mark.parametrize("size", [(768, 576), (3000, 4000), (128, 128)])
def test_source_crop_source_round_trip(size):
    rng = np.random.default_rng(1)
    for _ in range(20):
        pose = _pose(rng)
        crop, box = framing.pose_to_crop(pose, size)
        back = framing.landmarks_crop_to_source(crop, size, box)
        np.testing.assert_allclose(back, pose, atol=1e-5)
        # the visible landmarks fill `fill` of the crop, centred
        vis = crop[crop[:, 3] >= 0.5, :2]
        extent = (vis.max(0) - vis.min(0)).max()
        assert extent == pytest.approx(framing.FramingSettings().fill, abs=1e-4)
        np.testing.assert_allclose((vis.max(0) + vis.min(0)) / 2, 0.5, atol=1e-4)


@pytest.mark.parametrize("image_size,out_size", [((640, 480), 128), ((4000, 3000), 128), ((200, 300), 256)])
def test_dot_at_a_landmark_lands_on_its_crop_pixel(image_size, out_size):
    """A bright dot drawn at the nose's source position appears at the nose's crop position."""
    width, height = image_size
    rng = np.random.default_rng(2)
    pose = _pose(rng)
    image = np.zeros((height, width, 3), np.uint8)
    # the dot: a disc a few output pixels wide, so area filtering cannot wash it out
    crop_lm, box = framing.pose_to_crop(pose, image_size)
    radius = max(1.5, 1.5 * box.side / out_size)
    cx, cy = pose[0, 0] * width, pose[0, 1] * height
    yy, xx = np.mgrid[0:height, 0:width]
    image[(xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= radius**2] = 255
    crop = framing.crop_image(image, box, out_size)
    grey = crop[..., 0].astype(np.float64)
    assert grey.max() > 50
    ys, xs = np.nonzero(grey >= grey.max() * 0.5)
    w = grey[ys, xs]
    centroid = np.array([(xs + 0.5) @ w, (ys + 0.5) @ w]) / w.sum()
    expected = crop_lm[0, :2] * out_size
    np.testing.assert_allclose(centroid, expected, atol=0.75)


@pytest.mark.slow
def test_prepared_boxes_are_the_framing_of_their_landmarks(prepared_dataset):
    """Stored box = THE framing of the stored pose mapped back to the source (no second crop rule)."""
    rows = read_samples(prepared_dataset)
    poses = np.load(prepared_dataset / "landmarks.npy", mmap_mode="r")
    assert len(rows) == len(poses) > 0
    for row, crop_pose in zip(rows, poses):
        box = framing.CropBox(float(row["box_x0"]), float(row["box_y0"]), float(row["box_side"]))
        size = (int(row["source_width"]), int(row["source_height"]))
        source_pose = framing.landmarks_crop_to_source(np.asarray(crop_pose), size, box)
        again, box2 = framing.pose_to_crop(source_pose, size)
        np.testing.assert_allclose(box2.as_tuple(), box.as_tuple(), atol=2e-3)
        np.testing.assert_allclose(again, crop_pose, atol=1e-4)
        assert lm.count_visible_body_joints(crop_pose) >= 8
