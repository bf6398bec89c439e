"""Face embeddings for "is this the same person?": dlib's 128-d face descriptor, placed by MediaPipe.

We already have MediaPipe's 33 pose landmarks for every person, and the first eleven are the
face (nose, eyes, ears, mouth). They give a face box directly, so no face detector runs: dlib's
5-point shape predictor finds the eye corners and nose in that box, and dlib's ResNet turns the
aligned face into a 128-d vector. Two vectors closer than `SAME_PERSON_DISTANCE` (Euclidean)
are the same person; dlib trained its model for exactly that rule.

    embedder = FaceEmbedder()                  # loads both models once
    vector = embedder.embed(image, landmarks)  # None: no usable face
    same = face_distance(a, b) < SAME_PERSON_DISTANCE

`embed` refuses (None) faces that are too small, turned away, hidden or off the image:
`locate_face` says which, for callers that count reasons.

Measured with benchmarks/bench_faces.py (real MediaPipe landmarks on OpenCV's sample photos
and matplotlib's portrait of Grace Hopper; three people, so a check, not a study): the same man
in two frames and in cropped or rescaled copies is 0.00-0.35 apart, different people
0.73-0.80. Shrinking a face moves its vector: with a box of 32 px or more it stays within 0.29
of the full-size one in all three photos, at 24 px up to 0.36, at 20 px up to 0.49. So
`min_face_px` is 32: a smaller face would spend half the 0.6 budget on blur alone. The box
built from MediaPipe's points lands within a few pixels of dlib's own detector's, and the
descriptors differ by 0.02-0.08. `embed` takes about 130 ms on one AVX2 core (the dlib-bin
wheel is built without BLAS); the shape predictor is 1 ms of that.

Licences: dlib (the `dlib-bin` wheel) is Boost-1.0. The models come from the
`face_recognition_models` sdist, whose LICENSE is CC0-1.0 (its setup.py says "MIT"; the
LICENSE file and README say CC0/public domain); their author, Davis King, released them into
the public domain. `shape_predictor_5_face_landmarks.dat` is trained on his own 5-point
dataset (web images he annotated). `dlib_face_recognition_resnet_model_v1.dat` is trained on
about 3 million faces from FaceScrub, VGG-Face and web images; those datasets carry their own
terms, which the model's release does not restate. The package also ships
`shape_predictor_68_face_landmarks.dat`, trained on iBUG 300-W, whose licence excludes
commercial use: it is never loaded here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from poseguide import landmarks as lm

SAME_PERSON_DISTANCE = 0.6  # dlib's: its loss pushes each identity into a ball of radius 0.6
MIN_FACE_PX = 32.0  # face box side in source pixels: the size sweep in the module docstring
MIN_FRONTAL = 0.3  # see locate_face
INSTALL_HINT = "pip install 'dlib-bin==20.0.1.post1' 'face_recognition_models==0.3.0' (or pip install -e '.[faces]')"
SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"

NOSE = lm.INDEX["nose"]
LEFT_EYE, RIGHT_EYE = lm.INDEX["left_eye"], lm.INDEX["right_eye"]
LEFT_EAR, RIGHT_EAR = lm.INDEX["left_ear"], lm.INDEX["right_ear"]
MOUTH = (lm.INDEX["mouth_left"], lm.INDEX["mouth_right"])
REQUIRED = [NOSE, LEFT_EYE, RIGHT_EYE, *MOUTH]  # the points the box is built from

# dlib's own face detector draws a square about 2.3 eye-to-mouth distances (or 1.3 ear-to-ear
# spans) wide, centred between the eyes and the mouth (measured on the test photos); its
# shape predictor was trained on such boxes.
BOX_PER_EYE_MOUTH = 2.3
BOX_PER_EAR_SPAN = 1.3


class FaceModelsMissing(RuntimeError):
    """dlib or its model files are not installed; the message says what to pip install."""


class NoFace(ValueError):
    """No usable face for these landmarks; the message is a short reason."""


@dataclass(frozen=True)
class FaceBox:
    """A square around the face in source pixels: centre (cx, cy) and side."""

    cx: float
    cy: float
    side: float

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer left, top, right, bottom, as dlib.rectangle takes them."""
        half = self.side / 2
        return (int(round(self.cx - half)), int(round(self.cy - half)),
                int(round(self.cx + half)), int(round(self.cy + half)))


def locate_face(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    min_face_px: float = MIN_FACE_PX,
    min_frontal: float = MIN_FRONTAL,
    threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD,
) -> FaceBox:
    """The face box for a (33, 4) pose normalised to an image of `image_size` (W, H); raises NoFace.

    Turned away: MediaPipe keeps drawing a face on the back of a head, but with the person's
    left eye on the image's left. `frontal` is the eye span across the eye-to-mouth axis, over
    the eye-to-mouth distance: about 1 facing the camera, 0 in profile, negative from behind
    (the test photos' three-quarter view is 0.6). `min_frontal` 0.3, about 70 degrees of yaw,
    is geometry, not a measurement: no profile face was at hand to measure on.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (lm.NUM_LANDMARKS, 4):
        raise ValueError(f"landmarks must have shape ({lm.NUM_LANDMARKS}, 4), not {pts.shape}")
    width, height = image_size
    if not np.isfinite(pts[REQUIRED]).all() or (pts[REQUIRED, 3] < threshold).any():
        raise NoFace("too few face landmarks visible")
    xy = pts[:, :2] * (width, height)
    eyes = (xy[LEFT_EYE] + xy[RIGHT_EYE]) / 2
    mouth = xy[list(MOUTH)].mean(axis=0)
    down = mouth - eyes
    eye_mouth = float(np.hypot(*down))
    if eye_mouth <= 0:
        raise NoFace("too few face landmarks visible")
    across = xy[LEFT_EYE] - xy[RIGHT_EYE]  # image y points down: positive cross product = facing us
    frontal = float(across[0] * down[1] - across[1] * down[0]) / eye_mouth**2
    if frontal < min_frontal:
        raise NoFace("turned away")
    side = BOX_PER_EYE_MOUTH * eye_mouth
    ears = pts[[LEFT_EAR, RIGHT_EAR]]
    if np.isfinite(ears).all() and (ears[:, 3] >= threshold).all():
        side = max(side, BOX_PER_EAR_SPAN * float(np.hypot(*(xy[LEFT_EAR] - xy[RIGHT_EAR]))))
    if ((xy[REQUIRED] < 0) | (xy[REQUIRED] >= (width, height))).any():
        raise NoFace("off the image")
    if side < min_face_px:
        raise NoFace(f"too small ({side:.0f} px face, {min_face_px:.0f} needed)")
    centre = (eyes + mouth) / 2
    return FaceBox(float(centre[0]), float(centre[1]), side)


def model_paths() -> tuple[str, str]:
    """The 5-point shape predictor and the ResNet descriptor files; raises FaceModelsMissing.

    Found without importing face_recognition_models: its __init__ imports pkg_resources,
    which setuptools 81 and later no longer ship.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(f"the face models are not installed: {INSTALL_HINT}")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "models")
    paths = (os.path.join(folder, SHAPE_MODEL), os.path.join(folder, DESCRIPTOR_MODEL))
    for path in paths:
        if not os.path.isfile(path):
            raise FaceModelsMissing(f"face model file {path} is missing: {INSTALL_HINT}")
    return paths


def available() -> bool:
    """Whether dlib imports and both model files are installed (loads nothing)."""
    try:
        model_paths()
        import dlib  # noqa: F401
    except (FaceModelsMissing, ImportError):
        return False
    return True


class FaceEmbedder:
    """dlib's 5-point shape predictor and face ResNet, loaded once (0.2 s); then `embed` per face."""

    def __init__(self, min_face_px: float = MIN_FACE_PX, min_frontal: float = MIN_FRONTAL):
        shape_path, descriptor_path = model_paths()
        try:
            import dlib
        except ImportError:
            raise FaceModelsMissing(f"dlib is not installed: {INSTALL_HINT}") from None
        self._dlib = dlib
        self._shapes = dlib.shape_predictor(shape_path)
        self._descriptor = dlib.face_recognition_model_v1(descriptor_path)
        self.min_face_px = min_face_px
        self.min_frontal = min_frontal

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) RGB uint8 image and its (33, 4) pose -> (128,) float32 descriptor, or None.

        None when `locate_face` finds no usable face. Only a window three face boxes wide
        goes to dlib, so a big photo costs no more than a small one.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"image must be an RGB uint8 array of shape (H, W, 3), not {got}")
        height, width = image.shape[:2]
        try:
            box = locate_face(landmarks, (width, height), self.min_face_px, self.min_frontal)
        except NoFace:
            return None
        left, top, right, bottom = box.bounds()
        margin = int(np.ceil(box.side))
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1, y1 = min(width, right + margin), min(height, bottom + margin)
        window = np.ascontiguousarray(image[y0:y1, x0:x1])
        rect = self._dlib.rectangle(left - x0, top - y0, right - x0, bottom - y0)
        shape = self._shapes(window, rect)
        return np.asarray(self._descriptor.compute_face_descriptor(window, shape), dtype=np.float32)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors; under SAME_PERSON_DISTANCE means one person."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
