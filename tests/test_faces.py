"""Face descriptors on real photos: dlib's models placed by real MediaPipe landmarks.

Photos: tests/data/faces (OpenCV's samples: the same bearded man in two frames, a footballer),
matplotlib's portrait of Grace Hopper, and a vtest walker seen from behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from poseguide import faces, landmarks as lm
from poseguide.decode import decode_image

FACES_DIR = Path(__file__).parent / "data" / "faces"


def frontal_pose(eyes=(100.0, 100.0), eye_span=40.0, eye_mouth=45.0, size=(400, 300)) -> np.ndarray:
    """A (33, 4) pose normalised to `size` with an upright face looking at the camera."""
    width, height = size
    ex, ey = eyes
    xy = np.zeros((33, 2))
    xy[lm.INDEX["left_eye"]] = (ex + eye_span / 2, ey)  # the person's left eye is on the image's right
    xy[lm.INDEX["right_eye"]] = (ex - eye_span / 2, ey)
    xy[lm.INDEX["nose"]] = (ex, ey + eye_mouth * 0.6)
    xy[lm.INDEX["mouth_left"]] = (ex + eye_span / 3, ey + eye_mouth)
    xy[lm.INDEX["mouth_right"]] = (ex - eye_span / 3, ey + eye_mouth)
    xy[lm.INDEX["left_ear"]] = (ex + 0.9 * eye_span, ey + 5)
    xy[lm.INDEX["right_ear"]] = (ex - 0.9 * eye_span, ey + 5)
    pose = np.zeros((33, 4), np.float32)
    pose[:, :2] = xy / (width, height)
    pose[:, 3] = 1.0
    return pose


# --- the face box: pure geometry ---

def test_face_box_sits_between_eyes_and_mouth_and_scales_with_the_face():
    box = faces.locate_face(frontal_pose(eye_mouth=45.0, eye_span=40.0), (400, 300))
    assert (box.cx, box.cy) == pytest.approx((100.0, 122.5))
    assert box.side == pytest.approx(2.3 * 45.0)  # eye to mouth decides: 103.5 px > 1.3 x 72 px ear span
    wide = faces.locate_face(frontal_pose(eye_mouth=30.0, eye_span=40.0), (400, 300))
    assert wide.side == pytest.approx(1.3 * 72.0)  # a face looking down: the ears keep the box wide


def test_too_small_a_face_is_refused_with_its_size():
    pose = frontal_pose(eye_mouth=12.0, eye_span=10.0)
    with pytest.raises(faces.NoFace, match=r"too small \(28 px face, 32 needed\)"):
        faces.locate_face(pose, (400, 300))
    assert faces.locate_face(pose, (800, 600)).side == pytest.approx(2.3 * 24.0)  # the same pose on a 2x photo


def test_a_face_seen_from_behind_or_in_profile_is_turned_away():
    behind = frontal_pose()[list(lm.FLIP_PERMUTATION)]  # left and right swapped: the back of a head
    with pytest.raises(faces.NoFace, match="turned away"):
        faces.locate_face(behind, (400, 300))
    profile = frontal_pose(eye_span=8.0)
    with pytest.raises(faces.NoFace, match="turned away"):
        faces.locate_face(profile, (400, 300))
    assert faces.locate_face(frontal_pose(eye_span=20.0), (400, 300))  # three-quarter view is fine


def test_hidden_missing_or_cut_off_faces_are_refused():
    hidden = frontal_pose()
    hidden[lm.INDEX["nose"], 3] = 0.1
    with pytest.raises(faces.NoFace, match="too few face landmarks visible"):
        faces.locate_face(hidden, (400, 300))
    broken = frontal_pose()
    broken[lm.INDEX["mouth_left"], 0] = np.nan
    with pytest.raises(faces.NoFace, match="too few face landmarks visible"):
        faces.locate_face(broken, (400, 300))
    with pytest.raises(faces.NoFace, match="off the image"):
        faces.locate_face(frontal_pose(eyes=(390.0, 100.0)), (400, 300))
    with pytest.raises(ValueError, match=r"shape \(33, 4\)"):
        faces.locate_face(np.zeros((17, 3)), (400, 300))


def test_face_distance_is_euclidean():
    a, b = np.zeros(128, np.float32), np.zeros(128, np.float32)
    b[:2] = (0.3, 0.4)
    assert faces.face_distance(a, b) == pytest.approx(0.5) == faces.face_distance(b, a)


def test_missing_models_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # import finds nothing
    assert not faces.available()
    with pytest.raises(faces.FaceModelsMissing, match=r"pip install .*dlib-bin.*face_recognition_models") as err:
        faces.FaceEmbedder()
    assert "\n" not in str(err.value)


# --- real models, real photos ---

@pytest.fixture(scope="module")
def embedder():
    if not faces.available():
        pytest.skip("needs the faces extra: pip install -e '.[faces]'")
    return faces.FaceEmbedder()


def test_bad_inputs_raise_one_line_or_give_none(embedder):
    pose = frontal_pose()
    for image in (None, np.zeros((300, 400), np.uint8), np.zeros((300, 400, 3), np.float32)):
        with pytest.raises(ValueError, match=r"RGB uint8 array of shape \(H, W, 3\)"):
            embedder.embed(image, pose)
    image = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(ValueError, match=r"shape \(33, 4\)"):
        embedder.embed(image, None)
    nan_pose = np.full((33, 4), np.nan, np.float32)
    assert embedder.embed(image, nan_pose) is None


@pytest.fixture(scope="module")
def photos():
    """name -> (RGB image, MediaPipe pose of its one person)."""
    from poseguide.extract import PoseEstimator

    paths = {
        "man1": FACES_DIR / "basketball1.png",
        "man2": FACES_DIR / "basketball2.png",
        "footballer": FACES_DIR / "messi5.jpg",
        "hopper": cbook.get_sample_data("grace_hopper.jpg", asfileobj=False),
    }
    out = {}
    with PoseEstimator() as estimator:
        for name, path in paths.items():
            image = decode_image(path)
            out[name] = (image, estimator(image)[0])
    return out


@pytest.mark.slow
def test_same_man_across_frames_crops_and_scales(embedder, photos):
    first = embedder.embed(*photos["man1"])
    second = embedder.embed(*photos["man2"])
    assert first.shape == (128,) and first.dtype == np.float32
    assert faces.face_distance(first, second) < faces.SAME_PERSON_DISTANCE

    image, pose = photos["man1"]
    height, width = image.shape[:2]
    x0, y0, x1, y1 = 17, 31, 263, 335  # a crop that moves the face off the photo's grid
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    crop_pose = pose.copy()
    crop_pose[:, 0] = (pose[:, 0] * width - x0) / (x1 - x0)
    crop_pose[:, 1] = (pose[:, 1] * height - y0) / (y1 - y0)
    assert faces.face_distance(first, embedder.embed(crop, crop_pose)) < 0.05  # the same pixels
    bigger = cv2.resize(image, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    assert faces.face_distance(first, embedder.embed(bigger, pose)) < faces.SAME_PERSON_DISTANCE


@pytest.mark.slow
def test_different_people_are_far_apart(embedder, photos):
    vectors = {name: embedder.embed(*photos[name]) for name in ("man1", "footballer", "hopper")}
    names = list(vectors)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert faces.face_distance(vectors[a], vectors[b]) > faces.SAME_PERSON_DISTANCE, (a, b)


@pytest.mark.slow
def test_a_tiny_face_gives_none(embedder, photos):
    image, pose = photos["hopper"]
    small = cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)  # box ~47 px
    tiny = cv2.resize(image, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)  # box ~22 px
    assert embedder.embed(small, pose) is not None
    assert embedder.embed(tiny, pose) is None
    with pytest.raises(faces.NoFace, match="too small"):
        faces.locate_face(pose, (tiny.shape[1], tiny.shape[0]))


@pytest.mark.slow
def test_a_walker_seen_from_behind_is_turned_away(embedder, vtest_frames):
    """Frame 240 of vtest: a blond man walking away (nose landmark near 246, 163) and a man
    walking towards the camera (near 47, 181). MediaPipe draws a face on both."""
    from poseguide.extract import PersonFinder, PoseEstimator

    image = decode_image(vtest_frames[4])
    with PoseEstimator() as estimator:
        people = PersonFinder(estimator).find(image)
    size = (image.shape[1], image.shape[0])

    def near(x, y):
        return min(people, key=lambda p: np.hypot(*(p.landmarks[0, :2] * size - (x, y))))

    away, towards = near(246, 163), near(47, 181)
    assert faces.locate_face(towards.landmarks, size, min_face_px=0).side > 0
    with pytest.raises(faces.NoFace, match="turned away"):
        faces.locate_face(away.landmarks, size, min_face_px=0)
    big = cv2.resize(image, None, fx=8, fy=8, interpolation=cv2.INTER_CUBIC)  # large enough to be no excuse
    assert embedder.embed(big, away.landmarks) is None
