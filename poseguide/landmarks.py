"""MediaPipe's 33 pose landmarks: names, left/right pairs, skeleton, and the keypoints file.

Everything that needs to know *which* landmark is which imports it from here, so the
flip augmentation, the heatmaps, the drawings and the metrics never disagree.

Array convention used across poseguide: a pose is a float32 array of shape (33, 4)
holding ``x, y, z, visibility``, with x and y normalised to the width and height of the
image the pose belongs to (a source photo, or a training crop).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poseguide import atomicfile

KEYPOINTS_FORMAT = "mediapipe-pose-33"
NUM_LANDMARKS = 33

NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
INDEX = {name: i for i, name in enumerate(NAMES)}

# mp.solutions.pose.POSE_CONNECTIONS, copied so that light modules need not import mediapipe.
SKELETON_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (11, 23), (12, 14), (12, 24), (13, 15), (14, 16),
    (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22), (17, 19), (18, 20),
    (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (27, 31),
    (28, 30), (28, 32), (29, 31), (30, 32),
)


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_"):]
    if name.startswith("right_"):
        return "left_" + name[len("right_"):]
    if name == "mouth_left":
        return "mouth_right"
    if name == "mouth_right":
        return "mouth_left"
    return name


# FLIP_PERMUTATION[i] is the landmark that lands on slot i after a horizontal flip.
FLIP_PERMUTATION: tuple[int, ...] = tuple(INDEX[_mirror_name(n)] for n in NAMES)
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i, j in enumerate(FLIP_PERMUTATION) if i < j
)

# Joints used to score pose fidelity (PCK) and to decide whether a pose is usable:
# the face centre and the twelve limb joints, as in COCO-style body keypoints.
BODY_JOINTS: tuple[int, ...] = tuple(
    INDEX[n]
    for n in (
        "nose",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    )
)
FACE_LANDMARKS: tuple[int, ...] = tuple(range(0, 11))

# Limb groups: skeleton edges merged into a few channels, so the condition stays small.
# Every group has a mirror twin (or is its own), so flipping swaps whole channels.
LIMB_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {
    "face": ((0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10)),
    "torso": ((11, 12), (11, 23), (12, 24), (23, 24)),
    "left_arm": ((11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19)),
    "right_arm": ((12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20)),
    "left_leg": ((23, 25), (25, 27), (27, 29), (27, 31), (29, 31)),
    "right_leg": ((24, 26), (26, 28), (28, 30), (28, 32), (30, 32)),
}
LIMB_GROUP_NAMES: tuple[str, ...] = tuple(LIMB_GROUPS)
LIMB_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    LIMB_GROUP_NAMES.index(_mirror_name(n)) for n in LIMB_GROUP_NAMES
)

# Coordinates further than this outside the image are treated as errors, not poses:
# MediaPipe extrapolates limbs that leave the frame, but never by half an image.
COORD_MIN, COORD_MAX = -0.5, 1.5
DEFAULT_VISIBILITY_THRESHOLD = 0.5
DEFAULT_MIN_VISIBLE_BODY_JOINTS = 6
MAX_IMAGE_SIDE = 1_000_000  # pixels; a keypoints file's image_size beyond this is not a photo


def flip_horizontal(landmarks: np.ndarray) -> np.ndarray:
    """Mirror a (..., 33, C) pose left-right: x -> 1 - x, then swap every left/right pair.

    z is kept: MediaPipe's depth does not change sign under a horizontal mirror.
    """
    flipped = np.array(landmarks, copy=True)
    flipped[..., 0] = 1.0 - flipped[..., 0]
    return flipped[..., FLIP_PERMUTATION, :]


class PoseFileError(ValueError):
    """A keypoints file that cannot be used as a pose. The message is one line for users."""


@dataclass
class Keypoints:
    """A pose read from a keypoints file: landmarks (33, 4) normalised to ``image_size``."""

    landmarks: np.ndarray
    image_size: tuple[int, int] | None  # (W, H); None for a bare list, taken as square

    def pixel_aspect_size(self) -> tuple[int, int]:
        """(W, H) to turn normalised coords into pixels; a bare list is taken as square."""
        return self.image_size if self.image_size is not None else (1, 1)


def keypoints_dict(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict:
    """The keypoints-file form of a (33, 4) pose normalised to an image of (W, H)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (NUM_LANDMARKS, 4):
        raise ValueError(f"expected landmarks of shape (33, 4), got {landmarks.shape}")
    return {
        "format": KEYPOINTS_FORMAT,
        "image_size": [int(image_size[0]), int(image_size[1])],
        "landmarks": [
            {
                "name": name,
                "x": round(float(x), 6),
                "y": round(float(y), 6),
                "z": round(float(z), 6),
                "visibility": round(float(v), 6),
            }
            for name, (x, y, z, v) in zip(NAMES, landmarks)
        ],
    }


def write_keypoints(path: str | os.PathLike, landmarks: np.ndarray, image_size: tuple[int, int]) -> None:
    """Write a keypoints file atomically, so a crash never leaves half a file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomicfile.write_text(path, json.dumps(keypoints_dict(landmarks, image_size), indent=1) + "\n")


def parse_keypoints(data: object, source: str = "pose") -> Keypoints:
    """Validate decoded JSON as a pose. Accepts the keypoints format or a bare list of 33 rows.

    Raises PoseFileError with a one-line message naming what is wrong.
    """
    image_size: tuple[int, int] | None = None
    if isinstance(data, dict):
        fmt = data.get("format")
        if fmt != KEYPOINTS_FORMAT:
            raise PoseFileError(f"{source}: format is {fmt!r}, expected {KEYPOINTS_FORMAT!r}")
        size = data.get("image_size")
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= MAX_IMAGE_SIDE for s in size)
        ):
            raise PoseFileError(
                f"{source}: image_size must be [W, H] with positive numbers up to {MAX_IMAGE_SIDE}, got {_short(size)}"
            )
        image_size = (int(size[0]), int(size[1]))
        rows = data.get("landmarks")
        if not isinstance(rows, list):
            raise PoseFileError(f"{source}: 'landmarks' must be a list of 33 entries")
        if len(rows) != NUM_LANDMARKS:
            raise PoseFileError(f"{source}: expected 33 landmarks, got {len(rows)}")
        values = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or "x" not in row or "y" not in row:
                raise PoseFileError(f"{source}: landmark {i} must be an object with 'x' and 'y'")
            values.append([row.get("x"), row.get("y"), row.get("z", 0.0), row.get("visibility", 1.0)])
    elif isinstance(data, list):
        if len(data) != NUM_LANDMARKS:
            raise PoseFileError(f"{source}: expected 33 landmarks, got {len(data)}")
        values = []
        for i, row in enumerate(data):
            if not isinstance(row, (list, tuple)) or len(row) not in (2, 3):
                raise PoseFileError(f"{source}: landmark {i} must be [x, y] or [x, y, visibility]")
            x, y = row[0], row[1]
            v = row[2] if len(row) == 3 else 1.0
            values.append([x, y, 0.0, v])
    else:
        raise PoseFileError(f"{source}: expected a keypoints object or a list of 33 [x, y] rows")

    for i, row in enumerate(values):
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PoseFileError(f"{source}: landmark {i} ({NAMES[i]}) has a non-numeric value {_short(value)}")
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an integer too large for a float
                raise PoseFileError(f"{source}: landmark {i} ({NAMES[i]}) has a value too large to be a coordinate") from None
            if not finite:
                raise PoseFileError(f"{source}: landmark {i} ({NAMES[i]}) has a NaN or infinite value")
    landmarks = np.asarray(values, dtype=np.float32)
    xy = landmarks[:, :2]
    bad = np.nonzero(((xy < COORD_MIN) | (xy > COORD_MAX)).any(axis=1))[0]
    if len(bad):
        i = int(bad[0])
        raise PoseFileError(
            f"{source}: landmark {i} ({NAMES[i]}) is at ({xy[i, 0]:.3g}, {xy[i, 1]:.3g}); "
            f"x and y must be normalised to the image, within [{COORD_MIN}, {COORD_MAX}]"
        )
    vis = landmarks[:, 3]
    if ((vis < 0) | (vis > 1)).any():
        i = int(np.nonzero((vis < 0) | (vis > 1))[0][0])
        raise PoseFileError(f"{source}: landmark {i} ({NAMES[i]}) has visibility {vis[i]:.3g}, outside [0, 1]")
    return Keypoints(landmarks=landmarks, image_size=image_size)


def _short(value: object, limit: int = 60) -> str:
    """repr of a value from a file, cut short: a message stays one readable line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_keypoints(path: str | os.PathLike) -> Keypoints:
    """Read and validate a keypoints file; every problem is a one-line PoseFileError."""
    return parse_keypoints(read_pose_json(path), source=str(path))


def read_pose_json(path: str | os.PathLike) -> object:
    """The decoded JSON of a pose file (ours or a foreign one); a file that cannot be read or
    parsed is a one-line PoseFileError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PoseFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PoseFileError(f"{path}: cannot read ({err.__class__.__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PoseFileError(f"{path}: malformed JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise PoseFileError(f"{path}: malformed JSON (nested too deeply)") from None
    except ValueError:  # an integer of more digits than Python converts
        raise PoseFileError(f"{path}: malformed JSON (a number too long)") from None


def count_visible_body_joints(landmarks: np.ndarray, threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> int:
    return int((np.asarray(landmarks)[list(BODY_JOINTS), 3] >= threshold).sum())


def require_visible(
    landmarks: np.ndarray,
    source: str = "pose",
    min_visible: int = DEFAULT_MIN_VISIBLE_BODY_JOINTS,
    threshold: float = DEFAULT_VISIBILITY_THRESHOLD,
) -> None:
    """Refuse poses with too few visible body joints: they cannot be framed or followed."""
    visible = count_visible_body_joints(landmarks, threshold)
    if visible < min_visible:
        raise PoseFileError(
            f"{source}: only {visible} of {len(BODY_JOINTS)} body joints are visible "
            f"(visibility >= {threshold}); at least {min_visible} are needed"
        )
