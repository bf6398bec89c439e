"""Pose coverage: the distance of a pose to the nearest training pose, and its warning."""

from __future__ import annotations

import numpy as np
import pytest

from poseguide import coverage, landmarks as lm

I = lm.INDEX


def pose_at(x: float = 0.5) -> np.ndarray:
    pose = np.zeros((33, 4), np.float32)
    pose[:, :2] = (x, 0.5)
    pose[:, 3] = 1.0
    return pose


def test_distance_is_the_largest_gap_over_the_visible_body_joints():
    reference = pose_at()
    moved = reference.copy()
    moved[I["left_wrist"], :2] += (0.3, 0.4)  # one joint 0.5 away
    moved[I["right_knee"], :2] += (0.0, 0.1)
    moved[I["left_pinky"], :2] += 5.0  # not a body joint: ignored
    d = coverage.pose_distance(np.stack([reference, moved]), reference[None])
    np.testing.assert_allclose(d[:, 0], [0.0, 0.5], atol=1e-6)
    moved[I["left_wrist"], 3] = 0.1  # hidden in the requested pose: not counted
    assert coverage.pose_distance(moved[None], reference[None])[0, 0] == pytest.approx(0.1, abs=1e-6)
    moved[:, 3] = 0.0
    assert np.isinf(coverage.pose_distance(moved[None], reference[None])[0, 0])


def test_nearest_reference_and_mirrored_training_poses():
    left, right = pose_at(0.3), pose_at(0.8)
    cov = coverage.PoseCoverage.from_training_poses(np.stack([left, right]), mirrored=False)
    distance, index = cov.nearest(np.stack([pose_at(0.35), pose_at(0.75)]))
    np.testing.assert_allclose(distance, [0.05, 0.05], atol=1e-6)
    assert list(index) == [0, 1]
    # mirrored: x -> 1 - x, so 0.3 also stands for 0.7
    mirrored = coverage.PoseCoverage.from_training_poses(left[None], mirrored=True)
    assert mirrored.nearest(pose_at(0.7)[None])[0][0] < 1e-6
    assert coverage.PoseCoverage.from_training_poses(left[None], mirrored=False).nearest(pose_at(0.7)[None])[0][0] > 0.39


def test_warning_only_beyond_the_threshold():
    cov = coverage.PoseCoverage.from_training_poses(pose_at(0.5)[None], mirrored=False, far=0.1)
    assert cov.warning(pose_at(0.55)) is None
    text = cov.warning(pose_at(0.8), "arms-up.json")
    assert text.startswith("arms-up.json: this pose is unlike any training pose (distance 0.300")
    assert "\n" not in text


def test_spread_map_counts_each_joint_where_it_was_visible():
    poses = np.stack([pose_at(0.25), pose_at(0.25), pose_at(0.75)])
    poses[2, I["nose"], 3] = 0.0
    maps = coverage.spread_map(poses, size=4)
    nose = list(coverage.BODY).index(I["nose"])
    assert maps[nose, 2, 1] == 2 and maps[nose].sum() == 2  # the hidden nose is not counted
    wrist = list(coverage.BODY).index(I["left_wrist"])
    assert maps[wrist, 2, 1] == 2 and maps[wrist, 2, 3] == 1
