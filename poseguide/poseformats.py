"""Pose files from the rest of the pose world, read into and written from MediaPipe's 33 landmarks.

landmarks.py owns poseguide's own keypoints file; this module owns the foreign ones:

    OpenPose BODY_25 / COCO-18   {"version": 1.3, "people": [{"pose_keypoints_2d": [x, y, c, ...]}]}
                                 as OpenPose writes it, as ControlNet's annotators and pose editors
                                 write it (plus "canvas_width"/"canvas_height"), and ComfyUI's
                                 POSE_KEYPOINT: a *list* of such dicts, one per frame
    COCO-17                      "keypoints" as a flat [x, y, v] * 17 list or nested [[x, y, s], ...]:
                                 a COCO annotation file ("images", "annotations"), COCO results and
                                 AlphaPose (a list of {"keypoints", "score"}), mmpose (instances with
                                 "keypoints" [[x, y]] and "keypoint_scores", alone or in a demo file's
                                 "instance_info"), ultralytics' Results.to_json ({"keypoints":
                                 {"x": [...], "y": [...], "visible": [...]}}), or a bare list of 17 rows
                                 (rtmlib's arrays, saved with .tolist())

The format is found from the JSON's structure and the joint count (17, 18 or 25; 33 is ours).

Coordinates may be pixels or normalised to the image. They are taken as normalised when every
present joint (confidence > 0) lies within [-1, 1], the rule ControlNet's own drawing code uses:
no real pixel pose fits in one pixel. Pixels are divided by the canvas size when the file gives one
(canvas_width/height, a COCO image's width/height, an "image_size" [W, H]); without one the canvas is
taken as the smallest that holds every joint, which is harmless because `generate` frames every pose
around the person. Normalised coordinates without a canvas are taken as a square image.

Joints map by name. From 17/18/25 joints, MediaPipe gets the nose, eyes, ears, shoulders, elbows,
wrists, hips, knees and ankles; BODY_25 also gives heels, and its big toes become MediaPipe's
foot_index. OpenPose's neck and mid-hip are midpoints, not MediaPipe landmarks, and are dropped on
reading and made as midpoints on writing; the rest (inner/outer eyes, mouth, fingers, small toes)
stays invisible (visibility 0). A file with several people gives the largest (the widest or tallest
box around their joints); a ComfyUI list of frames gives its first frame.

Confidences: OpenPose's and the detectors' scores become visibility as they are (clipped to
[0, 1]); COCO's visibility flags (0 unlabelled, 1 labelled but hidden, 2 visible; recognised in a
COCO annotation file, or wherever every third value is 0, 1 or 2 and some are 2) become 0,
OCCLUDED_VISIBILITY and 1. On writing, BODY_25 keeps MediaPipe's visibility as OpenPose's score;
COCO-18 writes 1 or 0, because ControlNet's readers drop every joint whose confidence is below 1;
COCO-17 writes COCO's flags 2 or 0. Joints below the visibility threshold are written as 0, 0, 0,
OpenPose's and COCO's "not found".
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from poseguide import atomicfile
from poseguide import landmarks as lm

# --- layouts ---------------------------------------------------------------------------------------

# Joint names in each layout's order, spelled as MediaPipe's where MediaPipe has the joint.
BODY_25: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "mid_hip",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
COCO_18: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
COCO_17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
LAYOUTS: dict[str, tuple[str, ...]] = {"openpose": BODY_25, "coco18": COCO_18, "coco17": COCO_17}
LAYOUT_BY_COUNT = {len(joints): name for name, joints in LAYOUTS.items()}
FORMAT_TITLES = {
    "mediapipe": "MediaPipe-33 keypoints",
    "openpose": "OpenPose BODY_25 JSON",
    "coco18": "OpenPose COCO-18 JSON",
    "coco17": "COCO-17 keypoint annotations",
    "controlnet-png": "ControlNet openpose skeleton PNG",
}

# A foreign joint that is a MediaPipe landmark under another name.
SAME_AS = {"left_big_toe": "left_foot_index", "right_big_toe": "right_foot_index"}
# A foreign joint that MediaPipe lacks but that lies halfway between two of its landmarks.
MIDPOINT_OF = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}

# COCO's person skeleton (1-based joint numbers), as COCO's categories list it.
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)
OCCLUDED_VISIBILITY = 0.25  # COCO's "labelled but hidden": below the threshold, as MediaPipe scores it
OPENPOSE_VERSION = 1.3

FORMATS = ("mediapipe", "openpose", "coco18", "coco17", "controlnet-png")
ACCEPTED = (
    "accepted: poseguide/MediaPipe-33 keypoints, OpenPose BODY_25 or COCO-18 JSON (\"people\" with "
    "\"pose_keypoints_2d\", also ControlNet's and ComfyUI's POSE_KEYPOINT), COCO-17 \"keypoints\" "
    "(COCO, mmpose, ultralytics, rtmlib)"
)


def mediapipe_index(name: str) -> int | None:
    """The MediaPipe landmark a foreign joint is, or None (a midpoint, or a joint MediaPipe lacks)."""
    return lm.INDEX.get(SAME_AS.get(name, name))


def to_mediapipe(points: np.ndarray, layout: str) -> np.ndarray:
    """(n, 3) x, y, visibility in a layout's order -> a (33, 4) pose; MediaPipe landmarks the layout
    does not have are (0, 0, 0, 0)."""
    pose = np.zeros((lm.NUM_LANDMARKS, 4), dtype=np.float32)
    for name, (x, y, v) in zip(LAYOUTS[layout], points):
        i = mediapipe_index(name)
        if i is not None:
            pose[i] = (x, y, 0.0, v)
    return pose


def from_mediapipe(landmarks: np.ndarray, layout: str) -> np.ndarray:
    """A (33, 4) pose -> (n, 3) x, y, visibility in a layout's order. Midpoint joints take the
    lower visibility of their two ends; joints MediaPipe lacks are (0, 0, 0)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    points = np.zeros((len(LAYOUTS[layout]), 3))
    for k, name in enumerate(LAYOUTS[layout]):
        i = mediapipe_index(name)
        if i is not None:
            points[k] = (landmarks[i, 0], landmarks[i, 1], landmarks[i, 3])
        elif name in MIDPOINT_OF:
            a, b = (landmarks[lm.INDEX[n]] for n in MIDPOINT_OF[name])
            points[k] = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, min(a[3], b[3]))
    return points


# --- reading ---------------------------------------------------------------------------------------


def read_pose(path: str | os.PathLike) -> lm.Keypoints:
    """Any pose file poseguide understands -> (33, 4) landmarks normalised to its image.

    Every problem, including a file in no known format, is a one-line PoseFileError."""
    return parse_pose(lm.read_pose_json(path), source=str(path))[0]


def parse_pose(data: object, source: str = "pose") -> tuple[lm.Keypoints, str]:
    """Decoded JSON of any known pose file -> (its pose as Keypoints, the format's name in FORMATS)."""
    if _is_ours(data):
        return lm.parse_keypoints(data, source), "mediapipe"
    people, canvas, flags = _people(data, source)
    people = [p for p in people if (p[:, 2] > 0).any()]
    if not people:
        raise lm.PoseFileError(f"{source}: no person in the file has a joint with confidence above 0")
    person = max(people, key=_extent)
    layout = LAYOUT_BY_COUNT[len(person)]
    return _normalised(person, canvas, flags, layout, source), layout


def _is_ours(data: object) -> bool:
    if isinstance(data, dict):
        return data.get("format") == lm.KEYPOINTS_FORMAT or ("landmarks" in data and "keypoints" not in data)
    return isinstance(data, list) and len(data) == lm.NUM_LANDMARKS


def _people(data: object, source: str) -> tuple[list[np.ndarray], tuple[float, float] | None, bool]:
    """The candidate people of a foreign file as raw (n, 3) arrays, its canvas (W, H) if it names
    one, and whether the third values are COCO visibility flags rather than scores."""
    unknown = lm.PoseFileError(f"{source}: not a pose file poseguide reads; {ACCEPTED}")
    if isinstance(data, list) and data and isinstance(data[0], dict) and "people" in data[0]:
        data = data[0]  # ComfyUI's POSE_KEYPOINT: one dict per frame
    if isinstance(data, dict) and "people" in data:
        people = data["people"]
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
            raise lm.PoseFileError(f"{source}: 'people' must be a list of objects with 'pose_keypoints_2d'")
        if not people:
            raise lm.PoseFileError(f"{source}: 'people' is empty: nobody was found in this pose file")
        rows = [_flat(p.get("pose_keypoints_2d"), source, "pose_keypoints_2d") for p in people]
        return rows, _canvas(data, source), False
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and isinstance(data.get("images"), list):
        return _coco_dataset(data, source)
    if isinstance(data, dict) and "instance_info" in data:  # mmpose's demo scripts
        info = data["instance_info"]
        if isinstance(info, list) and info and isinstance(info[0], dict) and "instances" in info[0]:
            info = info[0]["instances"]  # a video: the first frame
        data = info
    if isinstance(data, dict) and "keypoints" in data:
        data = [data]
    if isinstance(data, list) and data and all(isinstance(d, dict) and "keypoints" in d for d in data):
        rows = [_instance(d, source) for d in data]
        canvas = _canvas(data[0], source)
        return rows, canvas, _looks_like_flags(rows)
    if isinstance(data, list) and data and all(isinstance(r, (list, tuple)) for r in data):
        rows = [_rows(data, source)]
        return rows, None, _looks_like_flags(rows)
    raise unknown


def _coco_dataset(data: dict, source: str) -> tuple[list[np.ndarray], tuple[float, float] | None, bool]:
    """A COCO keypoint annotation file: the people of the first image that has any."""
    annotations = [a for a in data["annotations"] if isinstance(a, dict) and "keypoints" in a]
    if not annotations:
        raise lm.PoseFileError(f"{source}: a COCO file with no keypoint annotations")
    image_id = annotations[0].get("image_id")
    rows = [_flat(a["keypoints"], source, "keypoints") for a in annotations if a.get("image_id") == image_id]
    image = next((im for im in data["images"] if isinstance(im, dict) and im.get("id") == image_id), None)
    return rows, _canvas(image, source, ("width", "height")) if image else None, True


def _instance(d: dict, source: str) -> np.ndarray:
    """One detected person: COCO/AlphaPose flat triplets, mmpose rows plus keypoint_scores,
    or ultralytics' x/y/visible lists."""
    keypoints = d["keypoints"]
    if isinstance(keypoints, dict):  # ultralytics
        x, y = keypoints.get("x"), keypoints.get("y")
        visible = keypoints.get("visible", [1.0] * len(x) if isinstance(x, list) else None)
        if not all(isinstance(v, list) for v in (x, y, visible)) or not len(x) == len(y) == len(visible):
            raise lm.PoseFileError(f"{source}: 'keypoints' must hold lists 'x', 'y' and 'visible' of one length")
        return _rows([list(r) for r in zip(x, y, visible)], source)
    if isinstance(keypoints, list) and keypoints and isinstance(keypoints[0], (list, tuple)):
        scores = d.get("keypoint_scores")
        if isinstance(scores, list) and len(scores) == len(keypoints):  # mmpose
            keypoints = [list(row[:2]) + [s] for row, s in zip(keypoints, scores) if isinstance(row, (list, tuple))]
        return _rows(keypoints, source)
    return _flat(keypoints, source, "keypoints")


def _flat(values: object, source: str, key: str) -> np.ndarray:
    """[x, y, c, x, y, c, ...] -> (n, 3) for a known joint count n."""
    counts = " or ".join(f"{3 * n}" for n in sorted(LAYOUT_BY_COUNT))
    if not isinstance(values, list) or len(values) % 3 or len(values) // 3 not in LAYOUT_BY_COUNT:
        found = f"{len(values)} values" if isinstance(values, list) else _short(values)
        raise lm.PoseFileError(f"{source}: '{key}' must be a list of {counts} numbers (x, y, confidence per joint), got {found}")
    return _numbers(values, source).reshape(-1, 3)


def _rows(rows: list, source: str) -> np.ndarray:
    """[[x, y], ...] or [[x, y, c], ...] -> (n, 3); two-value rows are taken as present."""
    if len(rows) not in LAYOUT_BY_COUNT:
        counts = ", ".join(str(n) for n in sorted(LAYOUT_BY_COUNT))
        raise lm.PoseFileError(f"{source}: {len(rows)} joints; poseguide reads {counts} (or 33, its own)")
    if not all(isinstance(r, (list, tuple)) and len(r) in (2, 3) for r in rows):
        raise lm.PoseFileError(f"{source}: every joint must be [x, y] or [x, y, confidence]")
    return _numbers([list(r) + [1.0] * (3 - len(r)) for r in rows], source).reshape(-1, 3)


def _numbers(values: list, source: str) -> np.ndarray:
    flat = [v for row in values for v in row] if values and isinstance(values[0], list) else values
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise lm.PoseFileError(f"{source}: a joint has a non-numeric value {_short(value)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            raise lm.PoseFileError(f"{source}: a joint has a value too large to be a coordinate") from None
        if not finite:
            raise lm.PoseFileError(f"{source}: a joint has a NaN or infinite value")
    return np.asarray(flat, dtype=np.float64)


def _canvas(d: object, source: str, keys: tuple[str, str] | None = None) -> tuple[float, float] | None:
    """(W, H) from canvas_width/height, width/height or image_size [W, H], if the object names one."""
    if not isinstance(d, dict):
        return None
    size = None
    for w, h in ((keys,) if keys else (("canvas_width", "canvas_height"), ("width", "height"))):
        if w in d and h in d:
            size = (d[w], d[h])
            break
    if size is None and not keys and isinstance(d.get("image_size"), list) and len(d["image_size"]) == 2:
        size = tuple(d["image_size"])
    if size is None:
        return None
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= lm.MAX_IMAGE_SIDE for s in size):
        raise lm.PoseFileError(f"{source}: the canvas size must be two positive numbers up to {lm.MAX_IMAGE_SIDE}, got {_short(list(size))}")
    return float(size[0]), float(size[1])


def _looks_like_flags(rows: list[np.ndarray]) -> bool:
    """COCO's visibility flags: every third value 0, 1 or 2, and some 2 (no score is above 1)."""
    c = np.concatenate([r[:, 2] for r in rows])
    return bool(np.isin(c, (0, 1, 2)).all() and (c == 2).any())


def _extent(points: np.ndarray) -> float:
    """Longer side of the box around a person's present joints: how big they are in the picture."""
    xy = points[points[:, 2] > 0, :2]
    return float((xy.max(axis=0) - xy.min(axis=0)).max())


def _normalised(points: np.ndarray, canvas, flags: bool, layout: str, source: str) -> lm.Keypoints:
    """Raw foreign joints -> Keypoints normalised to the canvas (see the module docstring)."""
    points = points.copy()
    present = points[:, 2] > 0
    if flags:
        points[:, 2] = np.select([points[:, 2] >= 2, points[:, 2] >= 1], [1.0, OCCLUDED_VISIBILITY], 0.0)
    points[:, 2] = np.clip(points[:, 2], 0.0, 1.0)
    xy = points[present, :2]
    if np.abs(xy).max() <= 1.0:
        image_size = canvas
    else:
        if canvas is None:  # pixels of an image of unknown size: the smallest canvas that holds them
            canvas = (math.floor(xy[:, 0].max()) + 1.0, math.floor(xy[:, 1].max()) + 1.0)
        points[:, :2] /= np.asarray(canvas)
        image_size = canvas
    points[~present] = 0.0
    names = LAYOUTS[layout]
    outside = np.nonzero(present & ((points[:, :2] < lm.COORD_MIN) | (points[:, :2] > lm.COORD_MAX)).any(axis=1))[0]
    if len(outside):
        k = int(outside[0])
        raise lm.PoseFileError(
            f"{source}: joint {k} ({names[k]}) lies far outside the {'canvas' if canvas else 'image'} "
            f"({points[k, 0]:.3g}, {points[k, 1]:.3g} of its size)"
        )
    size = (int(round(image_size[0])), int(round(image_size[1]))) if image_size else None
    return lm.Keypoints(landmarks=to_mediapipe(points, layout), image_size=size)


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- writing ---------------------------------------------------------------------------------------


def pose_dict(landmarks: np.ndarray, image_size: tuple[int, int], fmt: str) -> dict | list:
    """The JSON form of a (33, 4) pose, normalised to an image of (W, H), in a foreign format."""
    if fmt in ("openpose", "coco18"):
        return openpose_dict(landmarks, image_size, fmt)
    if fmt == "coco17":
        return coco_dict(landmarks, image_size)
    if fmt == "mediapipe":
        return lm.keypoints_dict(landmarks, image_size)
    raise ValueError(f"no JSON form for format {fmt!r}; choose from {FORMATS[:-1]}")


def _pixels(landmarks: np.ndarray, image_size: tuple[int, int], layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) pixel x, y, visibility in a layout, and which joints count as found."""
    points = from_mediapipe(landmarks, layout)
    points[:, :2] *= np.asarray(image_size, dtype=np.float64)
    found = points[:, 2] >= lm.DEFAULT_VISIBILITY_THRESHOLD
    points[~found] = 0.0
    return points, found


def openpose_dict(landmarks: np.ndarray, image_size: tuple[int, int], layout: str = "openpose") -> dict:
    """OpenPose's JSON for one person (BODY_25 or COCO-18), with ControlNet's canvas size."""
    points, found = _pixels(landmarks, image_size, layout)
    if layout == "coco18":
        points[found, 2] = 1.0
    values = [round(float(v), 3 if i % 3 < 2 else 6) for i, v in enumerate(points.ravel())]
    person = {
        "person_id": [-1],
        "pose_keypoints_2d": values,
        "face_keypoints_2d": [],
        "hand_left_keypoints_2d": [],
        "hand_right_keypoints_2d": [],
    }
    return {"version": OPENPOSE_VERSION, "people": [person], "canvas_width": int(image_size[0]), "canvas_height": int(image_size[1])}


def coco_dict(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict:
    """A COCO keypoint annotation file holding one image and one person."""
    points, found = _pixels(landmarks, image_size, "coco17")
    points[found, 2] = 2
    xy = points[found, :2]
    box = [0.0, 0.0, 0.0, 0.0]
    if len(xy):
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        box = [round(float(v), 3) for v in (x0, y0, x1 - x0, y1 - y0)]
    keypoints = []
    for x, y, v in points:
        keypoints += [round(float(x), 3), round(float(y), 3), int(v)]
    width, height = int(image_size[0]), int(image_size[1])
    return {
        "images": [{"id": 1, "width": width, "height": height}],
        "annotations": [{
            "id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": keypoints,
            "num_keypoints": int(found.sum()), "bbox": box, "area": round(box[2] * box[3], 3),
        }],
        "categories": [{
            "id": 1, "name": "person", "supercategory": "person",
            "keypoints": list(COCO_17), "skeleton": [list(e) for e in COCO_SKELETON],
        }],
    }


def write_pose(path: str | os.PathLike, landmarks: np.ndarray, image_size: tuple[int, int], fmt: str) -> Path:
    """Write a (33, 4) pose normalised to an image of (W, H) in one of FORMATS, atomically."""
    import json

    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown pose format {fmt!r}; choose from {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mediapipe":
        lm.write_keypoints(path, landmarks, image_size)
    elif fmt == "controlnet-png":
        import cv2

        ok, png = cv2.imencode(".png", np.ascontiguousarray(controlnet_skeleton(landmarks, image_size)[..., ::-1]))
        if not ok:
            raise ValueError(f"{path}: the skeleton could not be encoded as PNG")
        atomicfile.write_bytes(path, png.tobytes())
    else:
        atomicfile.write_text(path, json.dumps(pose_dict(landmarks, image_size, fmt)) + "\n")  # one line, as OpenPose writes
    return path


# --- ControlNet's skeleton picture -----------------------------------------------------------------

# controlnet_aux's open_pose draw_bodypose: limbs as 1-based COCO-18 joint pairs, and one colour per
# limb (RGB). Limbs are filled ellipses STICK_WIDTH wide each side in 0.6 of their colour; joints are
# discs of JOINT_RADIUS in the full colour of the same index.
CONTROLNET_LIMBS = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
    (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
)
CONTROLNET_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
LIMB_SHADE = 0.6
STICK_WIDTH = 4
JOINT_RADIUS = 4


def controlnet_skeleton(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The (H, W, 3) RGB picture ControlNet's openpose model is conditioned on: the pose's COCO-18
    skeleton in OpenPose's colours on black, drawn as controlnet_aux draws it."""
    import cv2

    width, height = int(image_size[0]), int(image_size[1])
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    points, found = _pixels(landmarks, (width, height), "coco18")
    for (a, b), colour in zip(CONTROLNET_LIMBS, CONTROLNET_COLOURS):
        a, b = a - 1, b - 1
        if not (found[a] and found[b]):
            continue
        (xa, ya), (xb, yb) = points[a, :2], points[b, :2]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly(
            (int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), STICK_WIDTH), int(angle), 0, 360, 1
        )
        cv2.fillConvexPoly(canvas, polygon, [int(c * LIMB_SHADE) for c in colour])
    for (x, y, _), ok, colour in zip(points, found, CONTROLNET_COLOURS):
        if ok:
            cv2.circle(canvas, (int(x), int(y)), JOINT_RADIUS, colour, thickness=-1)
    return canvas
