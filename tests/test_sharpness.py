"""The sharpness measure (mean squared Laplacian of luminance) on images whose answer is known
by hand, and the face and hand boxes placed by the landmarks."""

import numpy as np
import pytest
import torch

from poseguide import landmarks as lm
from poseguide import metrics


def grey(image: np.ndarray) -> torch.Tensor:
    """(H, W) values in [0, 1] -> a (1, 3, H, W) RGB image of that grey."""
    return torch.from_numpy(np.asarray(image, dtype=np.float64))[None, None].expand(1, 3, *image.shape).clone()


def checkerboard(size: int) -> np.ndarray:
    return (np.indices((size, size)).sum(0) % 2).astype(np.float64)


def test_flat_and_linear_patches_have_no_high_frequency_energy():
    assert metrics.laplacian_energy(grey(np.full((16, 16), 0.7))).item() == 0.0
    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))  # a linear shade: its second derivative is 0
    assert metrics.laplacian_energy(grey(ramp)).item() == pytest.approx(0.0, abs=1e-20)


def test_checkerboard_scores_sixteen():
    # Every pixel differs by 1 from its 4 neighbours: the Laplacian is +-4 everywhere, squared 16.
    assert metrics.laplacian_energy(grey(checkerboard(10))).item() == pytest.approx(16.0)
    # Half the contrast, a quarter of the energy.
    assert metrics.laplacian_energy(grey(0.5 * checkerboard(10))).item() == pytest.approx(4.0)


def test_one_bright_pixel_by_hand():
    image = np.zeros((5, 5))
    image[2, 2] = 1.0
    # The 3x3 interior: the centre's Laplacian is -4, its 4 neighbours' +1, the corners' 0.
    assert metrics.laplacian_energy(grey(image)).item() == pytest.approx((16 + 4 * 1) / 9)


def test_luminance_weights_colour_channels():
    image = torch.zeros(1, 3, 6, 6)
    image[0, 1] = torch.from_numpy(checkerboard(6))  # a green checkerboard: luma contrast 0.587
    assert metrics.laplacian_energy(image).item() == pytest.approx(16 * 0.587**2)


def test_blur_lowers_the_energy():
    import cv2

    rng = np.random.default_rng(0)
    noise = rng.random((64, 64))
    blurred = cv2.GaussianBlur(noise, (7, 7), 1.5)
    sharp, soft = metrics.laplacian_energy(torch.cat([grey(noise), grey(blurred)])).tolist()
    assert soft < 0.1 * sharp


def test_region_selects_pixels_and_an_empty_region_is_nan():
    image = np.zeros((12, 12))
    image[:, 6:] = checkerboard(12)[:, 6:]  # right half textured, left half flat
    regions = np.zeros((3, 12, 12), dtype=bool)
    regions[0, :, :5] = True  # flat part only (its 3x3 neighbourhoods never reach column 6)
    regions[1, :, 7:] = True  # textured part only
    images = grey(image).expand(3, 3, 12, 12)
    flat, textured, empty = metrics.laplacian_energy(images, regions).tolist()
    assert flat == 0.0 and textured == pytest.approx(16.0) and np.isnan(empty)
    assert metrics.nanmean([flat, textured, empty]) == pytest.approx(8.0)


def test_face_and_hand_boxes_follow_the_landmarks():
    pose = np.zeros((33, 4), dtype=np.float32)
    pose[list(lm.FACE_LANDMARKS), 0] = np.linspace(0.40, 0.50, 11)  # face 0.1 wide at x 0.40-0.50
    pose[list(lm.FACE_LANDMARKS), 1] = 0.20
    pose[list(lm.FACE_LANDMARKS), 3] = 1.0
    left = list(lm.HAND_LANDMARKS[0])
    pose[left, 0], pose[left, 1], pose[left, 3] = 0.70, np.linspace(0.60, 0.64, 4), 1.0
    x0, y0, x1, y1 = metrics.face_box(pose, 100)
    # centre (45, 20); half side = 0.1 x (0.5 + FACE_BOX_GROW) x 100 = 10 px
    assert (x0, y0, x1, y1) == (35, 10, 55, 30)
    boxes = metrics.hand_boxes(pose, 100)  # the right hand is hidden
    assert len(boxes) == 1
    hx0, hy0, hx1, hy1 = boxes[0]
    assert hx0 < 70 < hx1 and hy0 < 62 < hy1 and hx1 - hx0 == hy1 - hy0  # square, round the wrist
    pose[:, 3] = 0.0
    assert metrics.face_box(pose, 100) is None and metrics.hand_boxes(pose, 100) == []
    regions = metrics.box_regions([[(35, 10, 55, 30)], []], 100)
    assert regions[0].sum() == 400 and not regions[1].any()


def test_half_resolution_is_blind_to_a_two_pixel_checkerboard_but_not_to_coarse_detail():
    """The 2x2-averaged measure scores a 1-pixel checkerboard (what a sub-pixel upsampler draws)
    as flat, and a checkerboard of 2x2 blocks as the full-resolution measure scores the 1-pixel one."""
    fine = checkerboard(16)
    coarse = np.kron(checkerboard(8), np.ones((2, 2)))
    assert metrics.laplacian_energy(grey(fine)).item() == pytest.approx(16.0)
    assert metrics.coarse_laplacian_energy(grey(fine)).item() == 0.0
    assert metrics.coarse_laplacian_energy(grey(coarse)).item() == pytest.approx(16.0)
    # A region keeps a coarse pixel when at least half of its 2x2 block is inside.
    regions = np.zeros((2, 16, 16), dtype=bool)
    regions[0, :, :8] = True  # the left half: 4 coarse columns, 2 of them with a full 3x3 neighbourhood
    regions[1, :, :1] = True  # one pixel column: no coarse pixel is half inside
    left, none = metrics.coarse_laplacian_energy(grey(coarse).expand(2, 3, 16, 16), regions).tolist()
    assert left == pytest.approx(16.0) and np.isnan(none)
