"""Every metric of `poseguide evaluate` on cases whose answer is known in advance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poseguide import landmarks as lm
from poseguide import metrics

BODY = list(lm.BODY_JOINTS)


def standing_pose(x0: float = 0.3, y0: float = 0.1, width: float = 0.4, height: float = 0.8) -> np.ndarray:
    """A (33, 4) pose whose body joints span exactly [x0, x0 + width] x [y0, y0 + height], all visible."""
    pose = np.zeros((33, 4), dtype=np.float64)
    pose[:, 0] = x0 + width / 2
    pose[:, 1] = y0 + height / 4
    pose[:, 3] = 1.0
    rng = np.random.default_rng(len(BODY))
    pose[BODY, 0] = x0 + width * rng.uniform(0.1, 0.9, len(BODY))
    pose[BODY, 1] = y0 + height * rng.uniform(0.1, 0.9, len(BODY))
    # pin the box: one joint at each extreme
    pose[lm.INDEX["nose"], 1] = y0
    pose[lm.INDEX["left_ankle"], 1] = y0 + height
    pose[lm.INDEX["left_wrist"], 0] = x0
    pose[lm.INDEX["right_wrist"], 0] = x0 + width
    return pose


# --- person box --------------------------------------------------------------------------------


def test_person_scale_is_the_longer_side_of_the_visible_body_joints_box():
    pose = standing_pose(width=0.4, height=0.8)
    assert metrics.person_scale(pose[None])[0] == pytest.approx(0.8)
    wide = standing_pose(width=0.6, height=0.5)
    assert metrics.person_scale(wide[None])[0] == pytest.approx(0.6)
    # an invisible joint far away, and face/hand landmarks, do not change the box
    pose[lm.INDEX["left_knee"]] = (5.0, 5.0, 0.0, 0.1)
    pose[lm.INDEX["left_pinky"]] = (-3.0, -3.0, 0.0, 1.0)
    assert metrics.person_scale(pose[None])[0] == pytest.approx(0.8)
    # fewer than two visible joints: no scale
    lone = standing_pose()
    lone[BODY, 3] = 0.0
    lone[BODY[0], 3] = 1.0
    assert metrics.person_scale(lone[None])[0] == 0.0


# --- PCK ---------------------------------------------------------------------------------------


def test_pck_of_exact_poses_is_one_and_detection_rate_one():
    target = np.stack([standing_pose(), standing_pose(0.2, 0.05, 0.5, 0.9)])
    counts = metrics.pck_counts(target.copy(), target)
    assert counts.pck() == {0.05: 1.0, 0.1: 1.0}
    assert counts.detection_rate == 1.0
    assert counts.counted.tolist() == [13, 13]


def test_pck_of_a_known_shift_gives_the_exact_fractions():
    """Joints moved by known fractions of the box's longer side L = 0.8, along a 3-4-5 direction so
    the distance is Euclidean: 0.03 L and 0.05 L (on the threshold) count at both thresholds,
    0.07 L and 0.1 L only at 0.1, and 0.15 L / 0.5 L at neither."""
    target = standing_pose(width=0.4, height=0.8)
    length = 0.8
    fractions = [0.0, 0.03, 0.05, 0.049, 0.07, 0.1, 0.099, 0.15, 0.5, 0.5, 0.12, 0.0, 0.02]
    direction = np.array([0.6, 0.8])
    predicted = target.copy()
    for joint, f in zip(BODY, fractions):
        predicted[joint, :2] += f * length * direction
    predicted[:, 3] = 0.0  # re-detected visibility is ignored
    counts = metrics.pck_counts(predicted[None], target[None], thresholds=(0.05, 0.1))
    at05 = sum(f <= 0.05 for f in fractions)  # 0, .03, .05, .049, 0, .02 -> 6
    at10 = sum(f <= 0.1 for f in fractions)  # + .07, .1, .099 -> 9
    assert (at05, at10) == (6, 9)
    pck = counts.pck()
    assert pck[0.05] == pytest.approx(at05 / 13)
    assert pck[0.1] == pytest.approx(at10 / 13)


def test_pck_counts_only_joints_the_target_marks_visible():
    target = standing_pose()
    predicted = target.copy()
    far = [lm.INDEX["left_knee"], lm.INDEX["right_knee"], lm.INDEX["left_elbow"]]
    predicted[far, :2] += 0.5
    # two of the three wrong joints are hidden in the target: only one wrong joint is counted
    target[far[:2], 3] = 0.2
    counts = metrics.pck_counts(predicted[None], target[None])
    assert counts.counted.tolist() == [11]
    assert counts.pck()[0.1] == pytest.approx(10 / 11)
    # non-body landmarks never count, however wrong
    predicted[lm.INDEX["left_pinky"], :2] = (9.0, 9.0)
    assert metrics.pck_counts(predicted[None], target[None]).pck()[0.1] == pytest.approx(10 / 11)


def test_undetected_samples_count_as_zero_and_lower_the_detection_rate():
    target = np.stack([standing_pose(), standing_pose(0.2, 0.05, 0.5, 0.9), standing_pose(0.25, 0.1, 0.3, 0.7)])
    predicted = target.copy()
    predicted[1] = metrics.undetected()
    counts = metrics.pck_counts(predicted, target)
    assert counts.detected.tolist() == [True, False, True]
    assert counts.detection_rate == pytest.approx(2 / 3)
    assert counts.pck()[0.1] == pytest.approx(26 / 39)  # the missed sample's 13 joints count, all wrong
    assert counts.pck(only_detected=True)[0.1] == 1.0
    assert metrics.detection_rate(predicted) == pytest.approx(2 / 3)
    assert metrics.is_detected(predicted).tolist() == [True, False, True]
    assert metrics.detection_rate(np.stack([metrics.undetected()] * 4)) == 0.0


def test_pck_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        metrics.pck_counts(np.zeros((2, 33, 4)), np.zeros((3, 33, 4)))


# --- shuffled poses (the floor) -------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_derangement_moves_every_sample(n):
    for seed in range(20):
        perm = metrics.derangement(n, np.random.default_rng(seed))
        assert sorted(perm.tolist()) == list(range(n))
        assert (perm != np.arange(n)).all()
    a = metrics.derangement(n, np.random.default_rng(5))
    b = metrics.derangement(n, np.random.default_rng(5))
    assert (a == b).all()
    with pytest.raises(ValueError):
        metrics.derangement(1, np.random.default_rng(0))


def test_shuffled_poses_score_what_the_poses_share():
    """Four poses that agree on the same 9 joints and differ far apart on the other 4: against
    shuffled poses exactly the shared 9 of 13 joints are right, so the floor is 9/13."""
    base = standing_pose()
    moving = [lm.INDEX[n] for n in ("left_wrist", "right_wrist", "left_ankle", "right_ankle")]
    poses = []
    for k in range(4):
        p = base.copy()
        p[moving, 0] = 0.1 + 0.25 * k  # 0.25 apart: far beyond 0.1 x the box
        poses.append(p)
    poses = np.stack(poses)
    # the box of every pose has longer side 0.8 (height), whatever the wrists do
    assert metrics.person_scale(poses) == pytest.approx([0.8] * 4)
    perm = metrics.derangement(4, np.random.default_rng(0))
    floor = metrics.pck_counts(poses, poses[perm]).pck()
    assert floor[0.1] == pytest.approx(9 / 13)
    assert metrics.pck_counts(poses, poses).pck()[0.1] == 1.0


def test_normalised_score():
    assert metrics.normalised_score(0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert metrics.normalised_score(0.8, 0.4, 0.8) == pytest.approx(1.0)
    assert metrics.normalised_score(0.3, 0.4, 0.8) == pytest.approx(-0.25)
    assert math.isnan(metrics.normalised_score(0.5, 0.6, 0.6))
    assert math.isnan(metrics.normalised_score(0.5, 0.7, 0.6))
    assert math.isnan(metrics.normalised_score(float("nan"), 0.1, 0.6))


# --- pixels ------------------------------------------------------------------------------------


def _images(n: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(n, 3, size, size, generator=g)


def test_psnr_identical_images_hit_the_cap_and_known_offsets_give_known_decibels():
    images = _images()
    assert metrics.psnr(images, images.clone()).tolist() == [metrics.PSNR_CAP_DB] * 3
    # a constant offset d on a [0, 1] range: MSE = d^2, PSNR = -20 log10 d
    assert metrics.psnr(images + 0.1, images) == pytest.approx([20.0] * 3, abs=1e-3)
    assert metrics.psnr(images - 0.01, images) == pytest.approx([40.0] * 3, abs=1e-3)
    # per image: one image worse than the others
    worse = images.clone()
    worse[1] += 0.1
    assert metrics.psnr(worse, images).tolist() == pytest.approx([100.0, 20.0, 100.0], abs=1e-3)


def test_ssim_identical_is_one_and_constant_images_match_the_closed_form():
    images = _images()
    assert metrics.ssim(images, images.clone()) == pytest.approx([1.0] * 3, abs=1e-5)
    # flat images a and b: contrast and structure terms are 1, luminance is (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.3, 0.6, 0.01**2
    flat_a = torch.full((1, 3, 32, 32), a)
    flat_b = torch.full((1, 3, 32, 32), b)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    # (float32 leaves ~2e-4 of rounding where an image is flat)
    assert float(metrics.ssim(flat_a, flat_b)[0]) == pytest.approx(expected, abs=1e-3)
    # chunks do not change the values
    assert metrics.ssim(images, images.flip(0), chunk=2) == pytest.approx(metrics.ssim(images, images.flip(0)).tolist())
    noisy = (images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert (metrics.ssim(noisy, images) < 0.99).all()
    assert "sigma 1.5" in metrics.SSIM_VARIANT and "11x11" in metrics.SSIM_VARIANT


def test_bits_per_dim_is_zero_for_a_perfect_reconstruction_at_the_prior_and_grows_with_error_and_kl():
    image = _images(2, 16) * 2 - 1
    zeros = torch.zeros(2, 8)
    # perfect reconstruction: the Laplace scale sits at its floor of half an 8-bit level, which
    # is exactly one level's width on the 0-255 scale -> 0 bits; KL to the prior is 0
    assert metrics.bits_per_dim(image, image, zeros, zeros) == pytest.approx([0.0, 0.0], abs=1e-5)
    errors = [0.01, 0.05, 0.2]
    bpd_err = [float(metrics.bits_per_dim(image, image + e, zeros, zeros)[0]) for e in errors]
    assert bpd_err == sorted(bpd_err) and bpd_err[0] > 0
    mus = [0.0, 1.0, 3.0]
    bpd_kl = [float(metrics.bits_per_dim(image, image + 0.05, torch.full((2, 8), m), zeros)[0]) for m in mus]
    assert bpd_kl[0] < bpd_kl[1] < bpd_kl[2]


def test_mean_pairwise_l1_is_zero_for_copies_and_exact_for_known_values():
    one = _images(1)
    assert metrics.mean_pairwise_l1(one.repeat(4, 1, 1, 1)) == 0.0
    flat = torch.stack([torch.full((3, 8, 8), v) for v in (0.0, 0.5, 1.0)])
    assert metrics.mean_pairwise_l1(flat) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    # differences outside the region do not count
    a = torch.zeros(2, 3, 8, 8)
    a[1, :, :, 4:] = 1.0
    region = np.zeros((8, 8), bool)
    region[:, :4] = True
    assert metrics.mean_pairwise_l1(a, region) == 0.0
    assert metrics.mean_pairwise_l1(a, ~region) == 1.0
    assert metrics.mean_pairwise_l1(a) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.mean_pairwise_l1(a[:1])


def test_pose_region_is_the_grown_box_of_visible_landmarks():
    pose = np.zeros((33, 4))
    pose[:, 3] = 0.0
    pose[0] = (0.25, 0.25, 0, 1)
    pose[1] = (0.75, 0.5, 0, 1)
    region = metrics.pose_region(pose, 100, margin=0.1)  # grow by 0.05 on every side
    ys, xs = np.nonzero(region)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 79, 20, 54)
    assert metrics.pose_region(np.zeros((33, 4)), 16).all()  # nothing visible: the whole image


def test_summary():
    s = metrics.summary(torch.tensor([1.0, 2.0, 3.0]))
    assert s == {"mean": 2.0, "std": pytest.approx(1.0), "n": 3}
