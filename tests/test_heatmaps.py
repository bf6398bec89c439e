import numpy as np
import pytest
import torch

from poseguide.heatmaps import (
    NUM_CONDITION_CHANNELS,
    PRESENT_CHANNEL,
    flip_condition,
    keypoint_maps,
    render_condition,
)
from poseguide.landmarks import FLIP_PERMUTATION, NAMES, flip_horizontal


def random_poses(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    poses = torch.rand(batch, 33, 4, generator=g)
    poses[..., :2] = 0.1 + 0.8 * poses[..., :2]
    return poses


def test_shapes_and_channel_layout():
    cond = render_condition(random_poses(3), 32)
    assert cond.shape == (3, NUM_CONDITION_CHANNELS, 32, 32)
    assert cond.dtype == torch.float32
    assert torch.all(cond[:, PRESENT_CHANNEL] == 1)


def test_peak_lands_on_the_keypoint_pixel_and_stays_float():
    pose = torch.zeros(1, 33, 4)
    pose[0, :, :2] = 0.5
    pose[0, 0] = torch.tensor([(10 + 0.5) / 64, (20 + 0.5) / 64, 0.0, 1.0])  # centre of pixel (x=10, y=20)
    pose[0, 1:, 3] = 0.0
    maps = keypoint_maps(pose, 64, sigma=2.0 / 64)
    peak = torch.nonzero(maps[0, 0] == maps[0, 0].max())
    assert peak.tolist() == [[20, 10]]
    assert maps[0, 0].max() == pytest.approx(1.0)
    # A float Gaussian, not a one-pixel spike: the neighbour one sigma away is exp(-1/2).
    assert maps[0, 0, 20, 12].item() == pytest.approx(np.exp(-0.5), rel=1e-4)


def test_visibility_weights_each_map():
    pose = random_poses(1)
    pose[0, 5, 3] = 0.0
    pose[0, 6, 3] = 0.5
    cond = render_condition(pose, 32)
    full = render_condition(torch.cat([pose[..., :3], torch.ones_like(pose[..., :1])], -1), 32)
    assert cond[0, 5].abs().max() == 0
    assert torch.allclose(cond[0, 6], 0.5 * full[0, 6])


def test_sigma_scales_with_image_size():
    pose = random_poses(1)
    small, large = render_condition(pose, 32), render_condition(pose, 128)
    # Same fraction of the image is covered whatever the size.
    assert (small[0, 0] > 0.5).float().mean().item() == pytest.approx((large[0, 0] > 0.5).float().mean().item(), rel=0.35)


def test_null_condition_differs_from_all_hidden():
    pose = random_poses(2)
    pose[..., 3] = 0.0  # every keypoint hidden, but a pose is given
    hidden = render_condition(pose, 16)
    null = render_condition(pose, 16, present=torch.tensor([False, False]))
    assert hidden[:, :PRESENT_CHANNEL].abs().max() == 0
    assert torch.all(hidden[:, PRESENT_CHANNEL] == 1)
    assert null.abs().max() == 0
    assert torch.equal(render_condition(None, 16, batch_size=2), null)


def test_flipped_sample_heatmaps_equal_mirrored_heatmaps():
    """The flip augmentation (mirror + left/right swap) must give exactly the mirrored maps."""
    pose = random_poses(4, seed=3)
    flipped_pose = torch.from_numpy(flip_horizontal(pose.numpy()))
    rendered_from_flipped = render_condition(flipped_pose, 64)
    mirrored = flip_condition(render_condition(pose, 64))
    torch.testing.assert_close(rendered_from_flipped, mirrored, atol=2e-4, rtol=0)
    # And it is not trivially symmetric: the unswapped mirror differs.
    assert (render_condition(pose, 64).flip(-1) - rendered_from_flipped).abs().max() > 0.5


def test_flip_permutation_swaps_left_and_right_names():
    for i, j in enumerate(FLIP_PERMUTATION):
        a, b = NAMES[i], NAMES[j]
        assert a.replace("left", "X").replace("right", "left").replace("X", "right") == b
