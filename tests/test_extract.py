"""Real MediaPipe and HOG on real vtest frames: proposals, poses, masks, samples."""

from __future__ import annotations

import numpy as np
import pytest

from poseguide import extract, landmarks as lm
from poseguide.decode import decode_image

pytestmark = pytest.mark.slow  # real MediaPipe graphs


@pytest.fixture(scope="module")
def estimator():
    with extract.PoseEstimator() as est:
        yield est


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 20], [1, 1, 11, 21], [30, 0, 40, 20]], float)
    assert extract.nms(boxes, np.array([0.5, 0.9, 0.1]), 0.4) == [1, 2]


def test_finds_several_people_with_agreeing_masks(estimator, vtest_frames):
    image = decode_image(vtest_frames[4])  # frame 240: several walkers
    finder = extract.PersonFinder(estimator)
    people = finder.find(image)
    assert len(people) >= 2
    good = [p for p in people if p.mask_agreement >= 0.8 and lm.count_visible_body_joints(p.landmarks) >= 10]
    assert len(good) >= 2
    for p in good:
        assert p.landmarks.shape == (33, 4) and p.landmarks.dtype == np.float32
        x0, y0, x1, y1 = p.region
        xy = p.landmarks[list(lm.BODY_JOINTS), :2] * np.array([768, 576])
        assert (xy[:, 0] > x0 - 5).all() and (xy[:, 0] < x1 + 5).all()
        assert (xy[:, 1] > y0 - 5).all() and (xy[:, 1] < y1 + 5).all()
    # two different walkers are not "the same person", and each is the same as itself
    assert extract.same_person(good[0], good[0])
    assert not any(extract.same_person(good[0], q) for q in good[1:] if q is not good[0]
                   and np.abs(q.landmarks[:, :2] - good[0].landmarks[:, :2]).max() > 0.05)


def test_person_sample_replaces_background_and_keeps_mask(estimator, vtest_frames):
    image = decode_image(vtest_frames[0])
    people = extract.PersonFinder(estimator).find(image)
    person = max(people, key=lambda p: p.mask_agreement)
    bg = (10, 200, 30)
    sample = extract.person_sample(image, person, 96, background=bg)
    assert sample.image.shape == (96, 96, 3) and sample.mask.shape == (96, 96)
    off = sample.mask == 0
    assert off.mean() > 0.3 and (sample.image[off] == bg).all()
    assert (sample.mask > 127).mean() > 0.05
    # the mask is where the person's landmarks are
    hips = sample.landmarks[[lm.INDEX["left_hip"], lm.INDEX["right_hip"]], :2].mean(0)
    assert sample.mask[int(hips[1] * 96), int(hips[0] * 96)] > 127


def test_moving_the_tracked_person_is_followed(estimator, vtest_frames):
    """A seed from the previous frame is enough to find that person again without HOG."""
    image = decode_image(vtest_frames[0])
    finder = extract.PersonFinder(estimator, extract.DetectorSettings(full_frame_fallback=False))
    first = [p for p in finder.find(image, detect=True) if p.mask_agreement >= 0.8]
    finder.track(first)
    again = finder.find(image, detect=False)
    assert finder.detect_seconds > 0
    assert all(any(extract.same_person(a, b) for b in again) for a in first)


def test_best_person_and_no_person(estimator, vtest_frames):
    image = decode_image(vtest_frames[0])
    person = extract.best_person(image, estimator)
    assert lm.count_visible_body_joints(person.landmarks) >= 4
    with pytest.raises(extract.NoPersonError, match="no person"):
        extract.best_person(np.full((240, 320, 3), 128, np.uint8), estimator)


def test_isolate_person_mask_drops_a_neighbours_fragment():
    from poseguide.extract import isolate_person_mask

    mask = np.zeros((100, 100), np.float32)
    mask[10:90, 20:40] = 1.0  # our person
    mask[30:80, 70:90] = 0.9  # a neighbour MediaPipe also segmented
    points = np.zeros((33, 4), np.float32)
    points[:, :2] = 0.3, 0.5
    for joint, (x, y) in {11: (0.28, 0.25), 12: (0.32, 0.25), 23: (0.28, 0.5), 24: (0.32, 0.5),
                          25: (0.28, 0.7), 26: (0.32, 0.7)}.items():
        points[joint] = x, y, 0.0, 1.0
    cleaned = isolate_person_mask(mask, points)
    assert cleaned[50, 30] == 1.0
    assert cleaned[50, 80] == 0.0
    assert cleaned[:, 60:].sum() == 0
    # A single part keeps its soft edge, but a faint ghost beside it goes.
    only = np.zeros_like(mask)
    only[10:90, 20:40] = 1.0
    only[10:90, 40] = 0.3
    only[30:80, 70:90] = 0.3
    cleaned = isolate_person_mask(only, points)
    assert np.array_equal(cleaned[:, :60], only[:, :60])
    assert cleaned[:, 60:].sum() == 0
