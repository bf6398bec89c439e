"""Editor-style pose edits: limbs swung to the asked angles with their bone lengths kept."""

from __future__ import annotations

import numpy as np
import pytest

from poseguide import landmarks as lm
from poseguide import pose_edits as pe

I = lm.INDEX


def standing() -> np.ndarray:
    """A front-facing person by hand: shoulders at y 0.3, hips at 0.6 (torso 0.3), arms and
    legs hanging straight down; the person's left side at larger x, as a camera sees them."""
    pose = np.zeros((33, 4), np.float32)
    pose[:, 3] = 0.9
    for side, x in (("left", 0.6), ("right", 0.4)):
        pose[I[f"{side}_shoulder"], :2] = (x, 0.3)
        pose[I[f"{side}_elbow"], :2] = (x, 0.45)
        pose[I[f"{side}_wrist"], :2] = (x, 0.58)
        for j, dx in (("pinky", 0.01), ("index", 0.0), ("thumb", -0.01)):
            pose[I[f"{side}_{j}"], :2] = (x + dx, 0.62)
        pose[I[f"{side}_hip"], :2] = (x - 0.05 * (1 if side == "left" else -1), 0.6)
        pose[I[f"{side}_knee"], :2] = (pose[I[f"{side}_hip"], 0], 0.75)
        pose[I[f"{side}_ankle"], :2] = (pose[I[f"{side}_hip"], 0], 0.9)
        pose[I[f"{side}_heel"], :2] = (pose[I[f"{side}_hip"], 0], 0.92)
        pose[I[f"{side}_foot_index"], :2] = (pose[I[f"{side}_hip"], 0], 0.93)
    pose[:11, :2] = (0.5, 0.2)
    return pose


def test_t_pose_puts_the_arms_out_at_shoulder_height_keeping_their_length():
    pose = standing()
    moved = pe.swing_limb(pose, "left_arm", 90, 90)
    # upper arm 0.15 long, forearm 0.13: straight out towards larger x (the left side's outward)
    np.testing.assert_allclose(moved[I["left_elbow"], :2], (0.75, 0.3), atol=1e-6)
    np.testing.assert_allclose(moved[I["left_wrist"], :2], (0.88, 0.3), atol=1e-6)
    # the hand points turned with the forearm: the index finger 0.04 beyond the wrist, now along +x
    np.testing.assert_allclose(moved[I["left_index"], :2], (0.92, 0.3), atol=1e-6)
    moved = pe.swing_limb(pose, "right_arm", 90, 90)
    np.testing.assert_allclose(moved[I["right_wrist"], :2], (0.12, 0.3), atol=1e-6)  # outward is -x there
    assert (moved[I["left_wrist"]] == pose[I["left_wrist"]]).all()  # the other arm stays


def test_arms_up_puts_the_wrists_above_the_head_and_marks_the_arm_visible():
    pose = standing()
    pose[I["left_wrist"], 3] = 0.1  # hidden behind the body before the edit
    moved = pe.swing_limb(pose, "left_arm", 180, 180)
    np.testing.assert_allclose(moved[I["left_wrist"], :2], (0.6, 0.3 - 0.15 - 0.13), atol=1e-6)
    assert moved[I["left_wrist"], 3] == 1.0
    assert moved[I["left_wrist"], 1] < moved[I["nose"], 1]


def test_short_bones_are_lengthened_to_a_fraction_of_the_torso():
    pose = standing()
    pose[I["left_elbow"], :2] = (0.6, 0.32)  # an arm seen end-on: 0.02 long
    moved = pe.swing_limb(pose, "left_arm", 90, 90)
    upper = np.linalg.norm(moved[I["left_elbow"], :2] - moved[I["left_shoulder"], :2])
    assert upper == pytest.approx(pe.MIN_BONE["arm"] * 0.3, abs=1e-6)


def test_knee_up_raises_the_knee_and_leaves_the_shin_hanging():
    moved = pe.swing_limb(standing(), "right_leg", 90, 0)
    hip = moved[I["right_hip"], :2]
    np.testing.assert_allclose(moved[I["right_knee"], :2], (hip[0] - 0.15, hip[1]), atol=1e-6)
    np.testing.assert_allclose(moved[I["right_ankle"], :2], (hip[0] - 0.15, hip[1] + 0.15), atol=1e-6)


def test_edited_set_cycles_the_families_and_is_seeded():
    poses = np.stack([standing()] * 9)
    a, names = pe.edited_set(poses, tuple(pe.FAMILIES), seed=1)
    b, _ = pe.edited_set(poses, tuple(pe.FAMILIES), seed=1)
    c, _ = pe.edited_set(poses, tuple(pe.FAMILIES), seed=2)
    assert names[: len(pe.FAMILIES)] == list(pe.FAMILIES) and names[len(pe.FAMILIES)] == names[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(pe.TUNING_FAMILIES).isdisjoint(pe.UNSEEN_FAMILIES)
    assert set(pe.TUNING_FAMILIES) | set(pe.UNSEEN_FAMILIES) == set(pe.FAMILIES)
    with pytest.raises(ValueError, match="unknown pose family"):
        pe.edit_pose(standing(), "moonwalk", np.random.default_rng(0))
