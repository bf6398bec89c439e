"""Landmark tables and the keypoints file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from poseguide import landmarks as lm


def test_tables_are_consistent():
    assert len(lm.NAMES) == 33
    perm = np.array(lm.FLIP_PERMUTATION)
    assert (perm[perm] == np.arange(33)).all()
    for i, j in lm.LEFT_RIGHT_PAIRS:
        assert lm.NAMES[i].replace("left", "right") == lm.NAMES[j]
    assert all(0 <= a < 33 and 0 <= b < 33 for a, b in lm.SKELETON_EDGES)


def test_flip_twice_is_identity_and_swaps_sides():
    pose = np.random.default_rng(0).uniform(0, 1, (33, 4)).astype(np.float32)
    once = lm.flip_horizontal(pose)
    np.testing.assert_allclose(lm.flip_horizontal(once), pose, atol=1e-6)
    left, right = lm.INDEX["left_wrist"], lm.INDEX["right_wrist"]
    assert once[left, 0] == pytest.approx(1 - pose[right, 0])


def test_keypoints_round_trip(tmp_path):
    pose = np.random.default_rng(1).uniform(0, 1, (33, 4)).astype(np.float32)
    path = tmp_path / "kp.json"
    lm.write_keypoints(path, pose, (640, 480))
    data = json.loads(path.read_text())
    assert data["format"] == "mediapipe-pose-33" and data["image_size"] == [640, 480]
    assert [row["name"] for row in data["landmarks"]] == list(lm.NAMES)
    kp = lm.read_keypoints(path)
    np.testing.assert_allclose(kp.landmarks, pose, atol=1e-6)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"format": "x"}, "format"),
        ([[0.5, 0.5]] * 32, "expected 33"),
        ([[0.5, 5.0]] * 33, "normalised"),
    ],
)
def test_bad_keypoints_are_one_line_errors(data, message):
    with pytest.raises(lm.PoseFileError, match=message) as info:
        lm.parse_keypoints(data)
    assert "\n" not in str(info.value)


def _file(tmp_path, text: str):
    path = tmp_path / "pose.json"
    path.write_text(text)
    return path


def test_keypoints_files_that_would_crash_the_reader_are_one_line_errors(tmp_path):
    rows = [[0.5, 0.5]] * 33
    huge = json.dumps(rows).replace("0.5", str(10**400), 1)
    sized = json.loads(json.dumps(lm.keypoints_dict(np.full((33, 4), 0.5), (10, 10))))
    sized["image_size"] = [10**400, 10]
    cases = {
        "[" * 100_000 + "]" * 100_000: "malformed JSON (nested too deeply)",
        "[" + "7" * 5000 + "]": "malformed JSON (a number too long)",
        huge: "landmark 0 (nose) has a value too large to be a coordinate",
        json.dumps(sized): "image_size must be [W, H] with positive numbers up to 1000000",
    }
    for text, message in cases.items():
        path = _file(tmp_path, text)
        with pytest.raises(lm.PoseFileError) as info:
            lm.read_keypoints(path)
        assert str(info.value).startswith(f"{path}: {message}") and "\n" not in str(info.value)
        assert len(str(info.value)) - len(str(path)) < 150  # a huge value is cut short
