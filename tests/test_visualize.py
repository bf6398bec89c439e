"""Skeleton drawing, mask overlays, grids and atomic PNG writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poseguide import landmarks as lm, visualize as vis


def _pose() -> np.ndarray:
    pose = np.zeros((33, 4), np.float32)
    pose[:, 0] = np.linspace(0.3, 0.7, 33)
    pose[:, 1] = np.linspace(0.1, 0.9, 33)
    pose[:, 3] = 1.0
    return pose


def test_skeleton_colours_sides_and_skips_invisible_joints():
    image = np.zeros((128, 128, 3), np.uint8)
    pose = _pose()
    drawn = vis.draw_skeleton(image, pose)
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    assert (image == 0).all()  # input untouched
    colours = {tuple(c) for c in drawn.reshape(-1, 3)}
    assert vis.LEFT_COLOUR in colours and vis.RIGHT_COLOUR in colours
    hidden = pose.copy()
    hidden[:, 3] = 0.1
    assert np.array_equal(vis.draw_skeleton(image, hidden), image)
    # a single left limb drawn alone is orange only
    only = pose.copy()
    only[:, 3] = 0
    only[[lm.INDEX["left_hip"], lm.INDEX["left_knee"]], 3] = 1
    limb = {tuple(c) for c in vis.draw_skeleton(image, only, face=False).reshape(-1, 3)} - {(0, 0, 0)}
    assert vis.LEFT_COLOUR in limb and vis.RIGHT_COLOUR not in limb


def test_mask_overlay_tints_only_the_mask():
    image = np.full((32, 32, 3), 100, np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    out = vis.overlay_mask(image, mask, outline=False)
    assert (out[0, 0] == 100).all() and not (out[16, 16] == 100).all()


def test_grid_with_captions_and_atomic_png(tmp_path):
    tiles = [vis.to_rgb_uint8(torch.rand(3, 40, 40) * 2 - 1) for _ in range(5)]
    grid = vis.make_grid(tiles, ncol=3, captions=[f"s{i}" for i in range(5)])
    assert grid.dtype == np.uint8 and grid.shape[1] == 3 * 40 + 4 * 2
    path = vis.save_png(grid, tmp_path / "sub" / "grid.png")
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
    with pytest.raises(ValueError, match="one size"):
        vis.make_grid([tiles[0], np.zeros((10, 10, 3), np.uint8)])


@pytest.mark.parametrize("count, ncol, padding", [(5, 3, 2), (1, None, 2), (7, None, 0), (4, 8, 3)])
def test_grid_matches_torchvision_layout(count, ncol, padding):
    """The numpy grid (no torchvision import on the generate path) lays tiles out exactly as
    torchvision.utils.make_grid does."""
    from torchvision.utils import make_grid as tv_make_grid

    rng = np.random.default_rng(count)
    tiles = [rng.integers(0, 256, (12, 10, 3), dtype=np.uint8) for _ in range(count)]
    ours = vis.make_grid(tiles, ncol=ncol, padding=padding, pad_value=200)
    nrow = ncol or int(np.ceil(np.sqrt(count)))
    ref = tv_make_grid(torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2), nrow=nrow, padding=padding, pad_value=200)
    assert np.array_equal(ours, ref.permute(1, 2, 0).numpy())
