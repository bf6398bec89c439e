"""Synthetic people: random bodies from the `anny` body model, posed in named pose families.

The sample video shows only walkers, so a model trained on it only follows walking poses.
These pictures show other poses (arms overhead, crouching, kneeling, kicking, ...) on people
of every shape, skin tone and clothing, seen from any side. They are plain RGB images that
`poseguide prepare` reads like any photo; `renders.csv` keeps the true 2-D joint positions
(MediaPipe-33 names) of each picture beside it.

anny (Apache-2.0 code, CC0 MakeHuman assets, all inside the pip package) builds its model
data once (about 3 CPU minutes) into a cache folder, `anny_cache_dir()`; nothing is downloaded.

A pose is a dict of named joint angles in degrees (`JOINT_LIMITS` lists them and their
anatomical ranges), in the body frame x = the person's left, y = up, z = forward. Limbs are
set by the direction they point relative to the torso plus a twist about themselves, and
elbows and knees are hinges, so a pose within the limits keeps hands and feet on the natural
side of the body. `pose_parameters` turns such a dict into anny's per-bone rotations.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from poseguide import atomicfile, landmarks as lm
from poseguide.jsonfile import read_versioned_json
from poseguide.landmarks import NAMES as MEDIAPIPE_NAMES
from poseguide.raster import rasterize
from poseguide.visualize import draw_skeleton, make_grid, save_png

MANIFEST = "manifest.json"
RENDERS = "renders.csv"
IMAGES = "images"
SHEET = "contact-sheet.png"
PARTS = ".parts"  # one CSV per finished chunk of images, merged into renders.csv at the end
FORMAT = "poseguide-synth"
VERSION = 1
CHUNK = 32  # images drawn in one batch and recorded in one part file

FAMILIES = (
    "arms_overhead", "arms_out", "arms_forward", "arms_crossed", "one_arm_raised",
    "crouch", "kneel", "sit", "kick", "lunge", "lean", "turn", "walk", "stand",
)

SIDES = ("left", "right")
SIDE_SIGN = {"left": 1.0, "right": -1.0}  # the person's left is +x in the body frame

# Anatomical ranges (degrees) of every angle a pose sets. Arms: elevation 0 = hanging,
# 90 = horizontal, 180 = straight up; azimuth 0 = out to the side, 90 = straight forward,
# above 90 across the body, below 0 behind it; twist > 0 turns the limb inwards. Hips:
# flexion lifts the thigh forward, abduction spreads it out. Elbows and knees bend one way.
JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "spine_flex": (-20.0, 55.0), "spine_side": (-30.0, 30.0), "spine_twist": (-45.0, 45.0),
    "neck_flex": (-30.0, 40.0), "neck_side": (-25.0, 25.0), "neck_twist": (-60.0, 60.0),
}
for _side in SIDES:
    JOINT_LIMITS.update({
        f"{_side}_arm_elevation": (0.0, 180.0), f"{_side}_arm_azimuth": (-90.0, 135.0),
        f"{_side}_arm_twist": (-70.0, 80.0), f"{_side}_elbow": (0.0, 145.0),
        f"{_side}_hip_flex": (-30.0, 125.0), f"{_side}_hip_abduction": (-15.0, 45.0),
        f"{_side}_hip_twist": (-35.0, 35.0), f"{_side}_knee": (0.0, 150.0),
    })
# A raised arm cannot point far behind the body: behind it (azimuth < BACK_AZIMUTH) it rises at most this much.
BACK_AZIMUTH, BACK_MAX_ELEVATION = -20.0, 60.0
# Nor can it cross far in front of the chest when raised high.
ACROSS_AZIMUTH, ACROSS_MAX_ELEVATION = 100.0, 110.0


def within_limits(pose: dict[str, float]) -> bool:
    """Whether every angle of `pose` lies in its anatomical range, including the arm rules above."""
    for name, value in pose.items():
        lo, hi = JOINT_LIMITS[name]
        if not lo - 1e-6 <= value <= hi + 1e-6:
            return False
    for side in SIDES:
        elevation, azimuth = pose[f"{side}_arm_elevation"], pose[f"{side}_arm_azimuth"]
        if azimuth < BACK_AZIMUTH and elevation > BACK_MAX_ELEVATION + 1e-6:
            return False
        if azimuth > ACROSS_AZIMUTH and elevation > ACROSS_MAX_ELEVATION + 1e-6:
            return False
    return True


def clamp_to_limits(pose: dict[str, float]) -> dict[str, float]:
    out = {name: float(np.clip(value, *JOINT_LIMITS[name])) for name, value in pose.items()}
    for side in SIDES:
        e, a = f"{side}_arm_elevation", f"{side}_arm_azimuth"
        if out[a] < BACK_AZIMUTH:
            out[e] = min(out[e], BACK_MAX_ELEVATION)
        if out[a] > ACROSS_AZIMUTH:
            out[e] = min(out[e], ACROSS_MAX_ELEVATION)
    return out


# ----------------------------------------------------------------------------- pose families

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _relaxed(rng: np.random.Generator) -> dict[str, float]:
    """Standing at ease: the base every family changes."""
    pose = {
        "spine_flex": _u(rng, -5, 8), "spine_side": _u(rng, -5, 5), "spine_twist": _u(rng, -8, 8),
        "neck_flex": _u(rng, -10, 15), "neck_side": _u(rng, -8, 8), "neck_twist": _u(rng, -20, 20),
    }
    for side in SIDES:
        pose.update({
            f"{side}_arm_elevation": _u(rng, 5, 25), f"{side}_arm_azimuth": _u(rng, -10, 60),
            f"{side}_arm_twist": _u(rng, -10, 30), f"{side}_elbow": _u(rng, 5, 35),
            f"{side}_hip_flex": _u(rng, -5, 10), f"{side}_hip_abduction": _u(rng, 0, 10),
            f"{side}_hip_twist": _u(rng, -10, 10), f"{side}_knee": _u(rng, 0, 12),
        })
    return pose


def _arm(pose, side, elevation, azimuth, elbow, twist=None):
    pose[f"{side}_arm_elevation"], pose[f"{side}_arm_azimuth"], pose[f"{side}_elbow"] = elevation, azimuth, elbow
    if twist is not None:
        pose[f"{side}_arm_twist"] = twist


def _leg(pose, side, hip_flex, knee, abduction=None):
    pose[f"{side}_hip_flex"], pose[f"{side}_knee"] = hip_flex, knee
    if abduction is not None:
        pose[f"{side}_hip_abduction"] = abduction


def _pair(rng: np.random.Generator) -> tuple[str, str]:
    """(the side that acts, the other side), at random."""
    return ("left", "right") if rng.random() < 0.5 else ("right", "left")


def _arms_overhead(rng, pose):
    for side in SIDES:
        _arm(pose, side, _u(rng, 145, 180), _u(rng, -10, 60), _u(rng, 0, 45))


def _arms_out(rng, pose):
    for side in SIDES:
        _arm(pose, side, _u(rng, 78, 102), _u(rng, -15, 25), _u(rng, 0, 25), _u(rng, -20, 20))


def _arms_forward(rng, pose):
    for side in SIDES:
        _arm(pose, side, _u(rng, 65, 105), _u(rng, 70, 100), _u(rng, 0, 25))


def _arms_crossed(rng, pose):
    for side in SIDES:
        _arm(pose, side, _u(rng, 20, 35), _u(rng, 60, 80), _u(rng, 115, 135), _u(rng, 55, 75))


def _one_arm_raised(rng, pose):
    up, _ = _pair(rng)
    _arm(pose, up, _u(rng, 130, 180), _u(rng, -10, 70), _u(rng, 0, 60))


def _crouch(rng, pose):
    pose["spine_flex"] = _u(rng, 20, 45)
    pose["neck_flex"] = _u(rng, -25, 0)
    for side in SIDES:
        _leg(pose, side, _u(rng, 95, 120), _u(rng, 115, 145), _u(rng, 8, 25))
        _arm(pose, side, _u(rng, 20, 70), _u(rng, 60, 95), _u(rng, 20, 80))


def _kneel(rng, pose):
    if rng.random() < 0.5:  # on both knees, upright
        for side in SIDES:
            _leg(pose, side, _u(rng, -5, 15), _u(rng, 80, 100), _u(rng, 3, 12))
    else:  # on one knee, the other foot forward
        front, back = _pair(rng)
        _leg(pose, front, _u(rng, 75, 100), _u(rng, 80, 100), _u(rng, 0, 12))
        _leg(pose, back, _u(rng, -10, 10), _u(rng, 85, 100), _u(rng, 0, 10))


def _sit(rng, pose):
    pose["spine_flex"] = _u(rng, -5, 15)
    for side in SIDES:
        _leg(pose, side, _u(rng, 75, 100), _u(rng, 70, 100), _u(rng, 3, 20))
        _arm(pose, side, _u(rng, 10, 35), _u(rng, 50, 90), _u(rng, 30, 80))


def _kick(rng, pose):
    kick, stand = _pair(rng)
    _leg(pose, kick, _u(rng, 55, 110), _u(rng, 0, 50), _u(rng, 0, 25))
    _leg(pose, stand, _u(rng, -5, 10), _u(rng, 0, 15))
    pose["spine_flex"] = _u(rng, -15, 5)
    for side in SIDES:
        _arm(pose, side, _u(rng, 30, 90), _u(rng, -10, 60), _u(rng, 10, 70))


def _lunge(rng, pose):
    front, back = _pair(rng)
    _leg(pose, front, _u(rng, 60, 95), _u(rng, 60, 100), _u(rng, 0, 10))
    _leg(pose, back, _u(rng, -30, -10), _u(rng, 0, 30), _u(rng, 0, 10))
    if rng.random() < 0.5:
        for side in SIDES:
            _arm(pose, side, _u(rng, 60, 100), _u(rng, 60, 95), _u(rng, 0, 30))


def _lean(rng, pose):
    if rng.random() < 0.5:
        pose["spine_flex"] = _u(rng, 25, 55)
    else:
        pose["spine_side"] = _u(rng, 15, 30) * (1 if rng.random() < 0.5 else -1)


def _turn(rng, pose):
    sign = 1 if rng.random() < 0.5 else -1
    pose["spine_twist"] = sign * _u(rng, 25, 45)
    pose["neck_twist"] = sign * _u(rng, 20, 55)


def _walk(rng, pose):
    phase = _u(rng, 0, 2 * math.pi)
    swing = _u(rng, 15, 30)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        s = sign * math.sin(phase)
        _leg(pose, side, swing * s, 5 + 45 * max(0.0, -sign * math.cos(phase)), _u(rng, 0, 6))
        arm = -swing * s  # arms swing against the legs
        _arm(pose, side, abs(arm) * 0.9 + 5, 90.0 if arm > 0 else -90.0, _u(rng, 10, 40), _u(rng, -10, 20))


def _stand(rng, pose):
    pass


FAMILY_POSES: dict[str, Callable[[np.random.Generator, dict], None]] = {
    "arms_overhead": _arms_overhead, "arms_out": _arms_out, "arms_forward": _arms_forward,
    "arms_crossed": _arms_crossed, "one_arm_raised": _one_arm_raised, "crouch": _crouch,
    "kneel": _kneel, "sit": _sit, "kick": _kick, "lunge": _lunge, "lean": _lean,
    "turn": _turn, "walk": _walk, "stand": _stand,
}


def sample_pose(family: str, rng: np.random.Generator) -> dict[str, float]:
    """A random pose of `family`, within `JOINT_LIMITS`."""
    pose = _relaxed(rng)
    FAMILY_POSES[family](rng, pose)
    return clamp_to_limits(pose)


# ----------------------------------------------------------------------------- rotations

def _rot(axis, degrees: float) -> np.ndarray:
    """Rotation matrix about `axis` (right-hand rule)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-8:
        if c > 0:
            return np.eye(3)
        other = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 0, 1.0])
        return _rot(np.cross(a, other), 180.0)
    return _rot(axis, math.degrees(math.atan2(s, c)))


def arm_direction(side: str, elevation: float, azimuth: float) -> np.ndarray:
    e, a = math.radians(elevation), math.radians(azimuth)
    return np.array([SIDE_SIGN[side] * math.sin(e) * math.cos(a), -math.cos(e), math.sin(e) * math.sin(a)])


def thigh_direction(side: str, flex: float, abduction: float) -> np.ndarray:
    f, b = math.radians(flex), math.radians(abduction)
    return np.array([SIDE_SIGN[side] * math.sin(b), -math.cos(b) * math.cos(f), math.cos(b) * math.sin(f)])


# ----------------------------------------------------------------------------- the body model

SPINE_BONES = ("spine01", "spine02", "spine03", "spine04", "spine05")
NECK_BONES = ("neck01", "neck02", "neck03", "head")
BONE_OF = {  # (limb bone, the hinge bone at its end, the bone at the hinged segment's end) per side
    "arm": ("upperarm01.{s}", "lowerarm01.{s}", "wrist.{s}"),
    "leg": ("upperleg01.{s}", "lowerleg01.{s}", "foot.{s}"),
}
ANNY_SIDE = {"left": "L", "right": "R"}  # MakeHuman's .L is the character's own left

# Body parts by the bone that moves a vertex most, for clothing colours.
PART_PREFIXES = (
    ("eye", ("eye.",)),
    ("head", ("head", "jaw", "neck", "special", "levator", "oculi", "orbicularis", "oris", "risorius", "temporalis", "tongue")),
    ("hand", ("wrist", "finger", "metacarpal")),
    ("forearm", ("lowerarm",)),
    ("upperarm", ("upperarm", "shoulder", "clavicle")),
    ("foot", ("foot", "toe")),
    ("shin", ("lowerleg",)),
    ("thigh", ("upperleg", "pelvis", "root")),
    ("torso", ("spine", "breast")),
)
PARTS_ORDER = tuple(name for name, _ in PART_PREFIXES) + ("hair", "skin_other")


def _part_of(label: str) -> str:
    for part, prefixes in PART_PREFIXES:
        if label.startswith(prefixes):
            return part
    return "skin_other"


def anny_cache_dir() -> Path:
    """Where anny's built model data is kept: $ANNY_CACHE_DIR if set, else poseguide's own folder
    (so that the build's large intermediate files can be removed, see `BodyModel`)."""
    if os.environ.get("ANNY_CACHE_DIR"):
        return Path(os.environ["ANNY_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "poseguide" / "anny"


class BodyModel:
    """anny's full-body model plus what drawing it needs: faces, parts, the body frame, joints.

    Building it the first time fills anny's cache (a minute or more); later it loads in seconds.
    """

    def __init__(self):
        import anny
        import anny.paths

        cache = anny_cache_dir()
        anny.paths.set_anny_cache_path(cache)
        if not any(cache.glob("v*/*")):
            print(f"building the anny body model once (about 3 CPU minutes; cached in {cache})", file=sys.stderr, flush=True)
        self.version = anny.__version__
        # Plain torch skinning: anny's default on a CPU compiles a Warp kernel first (seconds, and a cache).
        self.model = anny.Anny(pose_parameterization="local-ref", skinning_method="lbs").float()
        if not os.environ.get("ANNY_CACHE_DIR"):
            # Building leaves ~800 MB of intermediate data beside the 50 MB that loading needs.
            for stale in [*cache.glob("v*/load_data_*.safetensors"), *cache.glob("v*/build_model_data_*.safetensors")]:
                stale.unlink(missing_ok=True)
        self.bone_index = {label: i for i, label in enumerate(self.model.bone_labels)}
        with torch.no_grad():
            rest = self.model(phenotype_kwargs=None)
        verts = rest["vertices"][0].double().numpy()
        heads = rest["bone_poses"][0, :, :3, 3].double().numpy()
        self.faces = self._triangles(verts)

        # The body frame (x = the person's left, y = up, z = forward) in anny's coordinates.
        left = heads[self.bone_index["upperarm01.L"]] - heads[self.bone_index["upperarm01.R"]]
        up = heads[self.bone_index["head"]] - heads[self.bone_index["root"]]
        left /= np.linalg.norm(left)
        up -= left * np.dot(up, left)
        up /= np.linalg.norm(up)
        forward = np.cross(left, up)
        self.frame = np.stack([left, up, forward], axis=1)  # columns: body axes in anny coordinates
        body_heads = heads @ self.frame

        # Rest directions of the limbs, the hinge axis of each elbow and knee (flexion turns the
        # forearm forwards, the shin backwards) and how far anny's rest pose already bends them.
        self.rest_dir, self.hinge, self.rest_bend = {}, {}, {}
        for limb, (bone, child, grandchild) in BONE_OF.items():
            for side in SIDES:
                s = ANNY_SIDE[side]
                at = lambda name: body_heads[self.bone_index[name.format(s=s)]]  # noqa: E731
                upper, lower = at(child) - at(bone), at(grandchild) - at(child)
                upper, lower = upper / np.linalg.norm(upper), lower / np.linalg.norm(lower)
                hinge = np.array([-1.0 if limb == "arm" else 1.0, 0, 0])
                hinge -= upper * np.dot(hinge, upper)
                hinge /= np.linalg.norm(hinge)
                self.rest_dir[limb, side] = upper
                self.hinge[limb, side] = hinge
                self.rest_bend[limb, side] = math.degrees(math.atan2(np.dot(np.cross(upper, lower), hinge), np.dot(upper, lower)))

        weights = self.model.vertex_bone_weights
        dominant = self.model.vertex_bone_indices.gather(1, weights.argmax(1, keepdim=True))[:, 0].numpy()
        parts = np.array([PARTS_ORDER.index(_part_of(self.model.bone_labels[b])) for b in dominant])
        body_verts = verts @ self.frame
        head_bone = body_heads[self.bone_index["head"]]
        eye_height = np.mean([body_heads[self.bone_index[f"eye.{s}"]][1] for s in "LR"]) if "eye.L" in self.bone_index else head_bone[1] + 0.08
        is_head = parts == PARTS_ORDER.index("head")
        # Hair: the top and back of the skull (the face stays skin).
        hairy = is_head & ((body_verts[:, 1] > eye_height + 0.03) | ((body_verts[:, 2] < head_bone[2] + 0.02) & (body_verts[:, 1] > eye_height - 0.07)))
        parts[hairy] = PARTS_ORDER.index("hair")
        self.parts = torch.from_numpy(parts)
        self.keypoints = self._keypoint_regressor(verts @ self.frame, parts)

    def _triangles(self, verts: np.ndarray) -> torch.Tensor:
        """anny's faces as triangles wound counter-clockwise seen from outside."""
        faces = torch.as_tensor(self.model.faces).long()
        if faces.shape[1] == 4:
            faces = torch.cat([faces[:, [0, 1, 2]], faces[:, [0, 2, 3]]])
        v = verts[faces.numpy()]
        normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        outward = np.einsum("fd,fd->f", normals, v.mean(1) - verts.mean(0))
        return faces[:, [0, 2, 1]] if np.median(np.sign(outward)) < 0 else faces

    def _keypoint_regressor(self, body_verts: np.ndarray, parts: np.ndarray) -> dict[str, np.ndarray]:
        """For each MediaPipe landmark name we can place, weights over vertices (sum 1)."""
        import anny

        coco = anny.KeypointsRegressor.coco(self.model)
        weights = {label: coco.regression_weights[i].double().numpy() for i, label in enumerate(coco.labels)}
        out = {}
        for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                     "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                     "left_knee", "right_knee", "left_ankle", "right_ankle"):
            if name in weights:
                out[name] = weights[name]
        n = len(body_verts)

        def at(point: np.ndarray, mask: np.ndarray) -> np.ndarray:
            idx = np.flatnonzero(mask)
            best = idx[np.argmin(np.linalg.norm(body_verts[idx] - point, axis=1))]
            w = np.zeros(n)
            w[best] = 1.0
            return w

        def point(name: str) -> np.ndarray:
            return out[name] @ body_verts

        face = (parts == PARTS_ORDER.index("head")) & (body_verts[:, 2] > point("nose")[2] - 0.06)
        left_eye, right_eye, nose = point("left_eye"), point("right_eye"), point("nose")
        across = left_eye - right_eye
        for side, eye, sign in (("left", left_eye, 1), ("right", right_eye, -1)):
            out[f"{side}_eye_inner"] = at(eye - sign * 0.2 * across, face)
            out[f"{side}_eye_outer"] = at(eye + sign * 0.2 * across, face)
        mouth = nose + (nose - (left_eye + right_eye) / 2) * 0.9
        out["mouth_left"] = at(mouth + 0.3 * across, face)
        out["mouth_right"] = at(mouth - 0.3 * across, face)
        foot = parts == PARTS_ORDER.index("foot")
        for side in SIDES:
            ankle = point(f"{side}_ankle")
            own = foot & (np.sign(body_verts[:, 0]) == SIDE_SIGN[side])
            low = own & (body_verts[:, 1] < ankle[1] - 0.03)
            out[f"{side}_heel"] = at(ankle + np.array([0, -0.06, -0.06]), low)
            toes = np.flatnonzero(own)
            out[f"{side}_foot_index"] = at(body_verts[toes[np.argmax(body_verts[toes, 2])]], own)
            for finger, bone in (("index", "finger2-1"), ("pinky", "finger5-1"), ("thumb", "finger1-2")):
                label = f"{bone}.{ANNY_SIDE[side]}"
                if label in self.bone_index:
                    out[f"{side}_{finger}"] = ("bone", self.bone_index[label])
        missing = [n for n in MEDIAPIPE_NAMES if n not in out]
        if missing:
            raise RuntimeError(f"this anny model has no place for the landmarks {missing}")
        names = list(MEDIAPIPE_NAMES)
        self.joint_names = tuple(names)
        dense = [out[n] for n in names if not isinstance(out[n], tuple)]
        self._joint_weights = torch.from_numpy(np.stack(dense)).float()
        self._joint_bones = {n: out[n][1] for n in names if isinstance(out[n], tuple)}
        return out

    def joints(self, output: dict) -> torch.Tensor:
        """(B, J, 3) positions of `joint_names` in anny coordinates."""
        dense = torch.einsum("kv,bvd->bkd", self._joint_weights.to(output["vertices"].dtype), output["vertices"])
        cols, k = [], 0
        for name in self.joint_names:
            if name in self._joint_bones:
                cols.append(output["bone_poses"][:, self._joint_bones[name], :3, 3])
            else:
                cols.append(dense[:, k])
                k += 1
        return torch.stack(cols, 1)

    def pose_parameters(self, pose: dict[str, float]) -> torch.Tensor:
        """anny's local-ref rotations (J, 4, 4) for a pose dict (see the module docstring)."""
        rotations: dict[str, np.ndarray] = {}
        spine = [b for b in SPINE_BONES if b in self.bone_index]
        neck = [b for b in NECK_BONES if b in self.bone_index]
        for bones, prefix in ((spine, "spine"), (neck, "neck")):
            n = len(bones)
            r = _rot([0, 1, 0], pose[f"{prefix}_twist"] / n) @ _rot([1, 0, 0], pose[f"{prefix}_flex"] / n) \
                @ _rot([0, 0, 1], -pose[f"{prefix}_side"] / n)
            for b in bones:
                rotations[b] = r
        for side in SIDES:
            s, sign = ANNY_SIDE[side], SIDE_SIGN[side]
            target = arm_direction(side, pose[f"{side}_arm_elevation"], pose[f"{side}_arm_azimuth"])
            rotations[f"upperarm01.{s}"] = _rot(target, sign * pose[f"{side}_arm_twist"]) @ _swing(self.rest_dir["arm", side], target)
            rotations[f"lowerarm01.{s}"] = _rot(self.hinge["arm", side], pose[f"{side}_elbow"] - self.rest_bend["arm", side])
            target = thigh_direction(side, pose[f"{side}_hip_flex"], pose[f"{side}_hip_abduction"])
            rotations[f"upperleg01.{s}"] = _rot(target, sign * pose[f"{side}_hip_twist"]) @ _swing(self.rest_dir["leg", side], target)
            rotations[f"lowerleg01.{s}"] = _rot(self.hinge["leg", side], pose[f"{side}_knee"] - self.rest_bend["leg", side])
        params = torch.eye(4).repeat(len(self.bone_index), 1, 1)
        frame = self.frame
        for bone, r in rotations.items():
            params[self.bone_index[bone], :3, :3] = torch.from_numpy(frame @ r @ frame.T).float()
        return params

    def posed(self, params: torch.Tensor, phenotypes: torch.Tensor) -> dict:
        """anny's forward pass: vertices and bone poses, for a batch of (J, 4, 4) rotations and phenotype rows."""
        with torch.no_grad():
            return self.model(pose_parameters=params, phenotype_kwargs=phenotypes)


# ----------------------------------------------------------------------------- appearance and camera

# Skin tones from light to dark (sRGB 0-1), garment and hair palettes.
SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.92, 0.74, 0.60], [0.87, 0.67, 0.53], [0.80, 0.59, 0.44],
    [0.70, 0.50, 0.36], [0.58, 0.40, 0.28], [0.45, 0.30, 0.21], [0.33, 0.22, 0.16],
])
HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.10], [0.45, 0.30, 0.16], [0.80, 0.66, 0.40], [0.62, 0.60, 0.58]])


def _garment(rng: np.random.Generator) -> np.ndarray:
    """A clothing colour: muted most of the time, sometimes bright."""
    hue = rng.random()
    saturation = rng.uniform(0.05, 0.45) if rng.random() < 0.7 else rng.uniform(0.5, 0.9)
    value = rng.uniform(0.15, 0.9)
    import colorsys

    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


@dataclass
class Scene:
    """Everything random about one picture besides the pose."""

    phenotype: np.ndarray  # anny's phenotype parameters, in the model's label order
    part_colours: np.ndarray  # (len(PARTS_ORDER), 3)
    yaw: float  # degrees, 0 = facing the camera
    pitch: float  # camera above (+) or below the chest
    distance: float  # camera distance in metres (perspective strength)
    height_fraction: float  # the person's bounding box height / image height
    offset: np.ndarray  # centre offset as a fraction of the image
    light: np.ndarray  # unit vector towards the light, camera coordinates
    ambient: float
    background: np.ndarray  # (2, 3): top and bottom colours of a vertical gradient


def sample_scene(rng: np.random.Generator, phenotype_labels: list[str]) -> Scene:
    ranges = {"gender": (0, 1), "age": (0.4, 0.85), "muscle": (0.2, 0.8), "weight": (0.15, 0.85),
              "height": (0.2, 0.9), "proportions": (0.3, 0.8), "cupsize": (0.3, 0.7), "firmness": (0.3, 0.7)}
    ancestry = rng.dirichlet([0.6, 0.6, 0.6])
    values = []
    for label in phenotype_labels:
        if label in ranges:
            values.append(rng.uniform(*ranges[label]))
        elif label in ("african", "asian", "caucasian"):
            values.append(ancestry[("african", "asian", "caucasian").index(label)])
        else:
            values.append(0.5)
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.05)
    shirt, trousers = _garment(rng), _garment(rng)
    if rng.random() < 0.4:
        trousers = np.array([0.12, 0.16, 0.28]) * rng.uniform(0.7, 1.6)  # denim
    shoes = _garment(rng) * rng.uniform(0.3, 0.8)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.8, 1.2)
    colours = {
        "eye": np.array([0.12, 0.09, 0.07]), "head": skin, "hand": skin, "skin_other": skin,
        "forearm": shirt if rng.random() < 0.5 else skin, "upperarm": shirt if rng.random() < 0.85 else skin,
        "torso": shirt, "thigh": trousers, "shin": trousers if rng.random() < 0.75 else skin,
        "foot": shoes, "hair": hair if rng.random() < 0.9 else skin,
    }
    part_colours = np.clip(np.stack([colours[p] for p in PARTS_ORDER]), 0, 1)
    yaw = float(rng.normal(0, 35)) if rng.random() < 0.65 else float(rng.uniform(-180, 180))
    azimuth, elevation = rng.uniform(-1.2, 1.2), rng.uniform(0.0, 1.0)
    light = np.array([math.sin(azimuth) * math.cos(elevation), math.sin(elevation), math.cos(azimuth) * math.cos(elevation)])
    base = np.array(colorsys_hsv(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.35, 0.9)))
    shade = rng.uniform(-0.12, 0.12)
    return Scene(
        phenotype=np.array(values, dtype=np.float32),
        part_colours=part_colours,
        yaw=(yaw + 180) % 360 - 180,
        pitch=float(rng.uniform(-12, 15)),
        distance=float(rng.uniform(2.5, 7.0)),
        height_fraction=float(rng.uniform(0.6, 0.88)),
        offset=rng.uniform(-0.06, 0.06, size=2),
        light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.55)),
        background=np.clip(np.stack([base + shade, base - shade]), 0, 1),
    )


def colorsys_hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, s, v)


@dataclass
class Render:
    images: np.ndarray  # (B, size, size, 3) uint8 RGB
    masks: np.ndarray  # (B, size, size) bool: person pixels
    joints: np.ndarray  # (B, J, 2) pixel coordinates of BodyModel.joint_names


def _vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    tri = verts[:, faces]
    n = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    normals = torch.zeros_like(verts)
    for k in range(3):
        normals.index_add_(1, faces[:, k], n)
    return torch.nn.functional.normalize(normals, dim=-1)


@torch.no_grad()
def render(body: BodyModel, poses: list[dict[str, float]], scenes: list[Scene], size: int) -> Render:
    """Draw one picture per (pose, scene)."""
    params = torch.stack([body.pose_parameters(p) for p in poses])
    phen = torch.from_numpy(np.stack([s.phenotype for s in scenes]))
    output = body.posed(params, phen)
    frame = torch.from_numpy(body.frame).float()
    verts = output["vertices"].float() @ frame  # body frame
    joints = body.joints(output).float() @ frame
    cams = []
    for s in scenes:  # camera rotation: turn the person by yaw, then tilt the camera by pitch
        yaw, pitch = math.radians(s.yaw), math.radians(s.pitch)
        ry = torch.tensor([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
        rx = torch.tensor([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
        cams.append((rx @ ry).float())
    cam = torch.stack(cams)
    centre = verts.mean(1, keepdim=True)
    v = (verts - centre) @ cam.transpose(1, 2)
    j = (joints - centre) @ cam.transpose(1, 2)
    distance = torch.tensor([s.distance for s in scenes])[:, None]
    depth_v, depth_j = distance - v[..., 2], distance - j[..., 2]
    uv, uvj = v[..., :2] / depth_v[..., None], j[..., :2] / depth_j[..., None]
    uv[..., 1], uvj[..., 1] = -uv[..., 1], -uvj[..., 1]  # y down in pixels
    lo, hi = uv.amin(1), uv.amax(1)
    height = torch.tensor([s.height_fraction for s in scenes]) * size
    scale = height / (hi - lo).amax(1).clamp(min=1e-6)  # the larger side fills height_fraction
    offset = torch.from_numpy(np.stack([s.offset for s in scenes])).float() * size
    shift = size / 2 + offset - (lo + hi) / 2 * scale[:, None]
    pix = uv * scale[:, None, None] + shift[:, None]
    pix_j = uvj * scale[:, None, None] + shift[:, None]

    normals = _vertex_normals(v, body.faces)  # camera coordinates, z towards the camera
    light = torch.from_numpy(np.stack([s.light for s in scenes])).float()
    ambient = torch.tensor([s.ambient for s in scenes])[:, None]
    lambert = (normals * light[:, None]).sum(-1).clamp(min=0)
    shading = ambient + (1 - ambient) * lambert
    albedo = torch.from_numpy(np.stack([s.part_colours for s in scenes])).float()[:, body.parts]
    colours = albedo * shading[..., None]
    t = torch.linspace(0, 1, size)[None, :, None, None]
    bg = torch.from_numpy(np.stack([s.background for s in scenes])).float()
    background = (bg[:, None, None, 0] * (1 - t) + bg[:, None, None, 1] * t).expand(-1, size, size, 3)
    screen = torch.cat([pix, depth_v[..., None]], -1)
    image, mask = rasterize(screen, body.faces, colours, size, background.contiguous())
    images = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return Render(images=images, masks=mask.numpy(), joints=pix_j.numpy())


# ----------------------------------------------------------------------------- the output folder

class SynthError(Exception):
    """A problem with the user's request or output folder; the message is one line."""


@dataclass(frozen=True)
class SynthSettings:
    num: int
    size: int = 256
    seed: int = 0
    families: tuple[str, ...] = FAMILIES

    def __post_init__(self) -> None:
        if self.num < 1:
            raise SynthError(f"--num must be at least 1, got {self.num}")
        if not 64 <= self.size <= 2048:
            raise SynthError(f"--size must be from 64 to 2048 pixels, got {self.size}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise SynthError(f"unknown pose family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
        if not self.families:
            raise SynthError("--families needs at least one family")

    def key(self) -> dict:
        """What must match for a rerun to continue the same folder (--num may grow or shrink)."""
        return {"size": self.size, "seed": self.seed, "families": list(self.families)}


def image_name(index: int) -> str:
    return f"{index:06d}.png"


def image_seed(seed: int, index: int) -> int:
    """The seed of one picture: independent of how the work was split into chunks or reruns."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def family_of(settings: SynthSettings, index: int) -> str:
    return settings.families[index % len(settings.families)]  # equal numbers of each


def describe(settings: SynthSettings, index: int, phenotype_labels: list[str]) -> tuple[dict, Scene]:
    """The pose and scene of picture `index`, from its own seed."""
    rng = np.random.default_rng(image_seed(settings.seed, index))
    pose = sample_pose(family_of(settings, index), rng)
    return pose, sample_scene(rng, phenotype_labels)


def _columns() -> list[str]:
    return ["file", "family", "seed", "yaw"] + [f"{n}_{c}" for n in MEDIAPIPE_NAMES for c in ("x", "y")]


def _done_indices(out: Path) -> dict[int, list[str]]:
    """Rows already recorded in part files, by picture index."""
    rows: dict[int, list[str]] = {}
    parts = out / PARTS
    if not parts.is_dir():
        return rows
    for path in sorted(parts.glob("*.csv")):
        with open(path, newline="") as f:
            reader = csv.reader(f)
            next(reader, None)
            for row in reader:
                if row and (out / IMAGES / row[0]).is_file():
                    rows[int(Path(row[0]).stem)] = row
    return rows


def _write_manifest(out: Path, settings: SynthSettings, anny_version: str, rendered: int, complete: bool, seconds: float) -> None:
    data = {
        "format": FORMAT, "version": VERSION, **settings.key(), "num": settings.num,
        "anny_version": anny_version, "rendered": rendered,
        "complete": complete, "render_seconds": round(seconds, 1),
        "counts": {f: sum(1 for i in range(settings.num) if family_of(settings, i) == f) for f in settings.families},
    }
    atomicfile.write_text(out / MANIFEST, json.dumps(data, indent=2) + "\n")


def check_output(out: Path, settings: SynthSettings) -> None:
    """Refuse an OUT that cannot be written, or that holds renders made with other settings."""
    problem = atomicfile.folder_problem(out)
    if problem:
        raise SynthError(f"{out}: {problem}")
    manifest = out / MANIFEST
    if manifest.is_file():
        old = read_versioned_json(manifest, FORMAT, VERSION, "synth manifest", SynthError)
        mismatch = [k for k, v in settings.key().items() if old.get(k) != v]
        if mismatch:
            k = mismatch[0]
            raise SynthError(f"{out} holds renders made with {k} {old.get(k)!r}, not {settings.key()[k]!r}; "
                             "give the same settings to continue it, or a new folder")
    elif out.is_dir() and any(out.iterdir()):
        raise SynthError(f"{out} is not empty and holds no {MANIFEST}; give a new or empty folder")


def synthesize(out: str | os.PathLike, settings: SynthSettings, progress: bool | None = None,
               body: BodyModel | None = None, workers: int = 1) -> dict:
    """Render pictures 0..num-1 into `out` that are not there yet, then write renders.csv and
    the manifest. Rerunning continues where it stopped. With several `workers`, each process
    loads its own body model and renders whole chunks (one torch thread each: the many small
    tensor operations of a chunk gain little from threads, whole chunks in parallel do)."""
    import importlib.metadata

    from tqdm import tqdm

    out = Path(out)
    check_output(out, settings)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    (out / PARTS).mkdir(exist_ok=True)
    version = importlib.metadata.version("anny")
    done = _done_indices(out)
    todo = [i for i in range(settings.num) if i not in done]
    _write_manifest(out, settings, version, len(done), False, 0.0)
    chunks = [(str(out), settings, todo[c:c + CHUNK]) for c in range(0, len(todo), CHUNK)]
    start = time.perf_counter()
    bar = tqdm(total=settings.num, initial=settings.num - len(todo), unit="img", desc="synth",
               disable=(not progress) if progress is not None else None)
    try:
        if not chunks:
            pass
        elif workers <= 1 or len(chunks) <= 1:
            _WORKER["body"] = body or BodyModel()
            results = map(_render_chunk, chunks)
            _finish(results, done, bar)
        else:
            import multiprocessing as mp

            pool = mp.get_context("spawn").Pool(min(workers, len(chunks)), initializer=_init_worker)
            try:
                _finish(pool.imap_unordered(_render_chunk, chunks), done, bar)
            finally:
                pool.terminate()  # each chunk is on disk before its result arrives
                pool.join()
    finally:
        bar.close()
        _WORKER.clear()
    seconds = time.perf_counter() - start
    _write_csv(out / RENDERS, _columns(), [done[i] for i in range(settings.num)])
    _write_manifest(out, settings, version, settings.num, True, seconds)
    contact_sheet(out, out / SHEET)
    return {"rendered": len(todo), "kept": settings.num - len(todo), "seconds": seconds}


_WORKER: dict = {}


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool on Ctrl-C
    torch.set_num_threads(1)
    _WORKER["body"] = BodyModel()


def _render_chunk(args: tuple[str, SynthSettings, list[int]]) -> list[list[str]]:
    """Draw one chunk of pictures and write them and their part file; returns the rows."""
    out, settings, chunk = Path(args[0]), args[1], args[2]
    body = _WORKER["body"]
    described = [describe(settings, i, body.model.phenotype_labels) for i in chunk]
    result = render(body, [p for p, _ in described], [s for _, s in described], settings.size)
    rows = []
    for k, i in enumerate(chunk):
        _write_png(out / IMAGES / image_name(i), result.images[k])
        xy = [f"{v:.2f}" for v in result.joints[k].reshape(-1)]
        rows.append([image_name(i), family_of(settings, i), str(image_seed(settings.seed, i)), f"{described[k][1].yaw:.1f}", *xy])
    _write_csv(out / PARTS / f"{chunk[0]:06d}-{chunk[-1]:06d}.csv", _columns(), rows)
    return rows


def _finish(results, done: dict[int, list[str]], bar) -> None:
    for rows in results:
        for row in rows:
            done[int(Path(row[0]).stem)] = row
        bar.update(len(rows))


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(".png", rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    atomicfile.write_bytes(path, data.tobytes())


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomicfile.write_text(path, buf.getvalue())


def contact_sheet(out: str | os.PathLike, path: str | os.PathLike, num: int = 28, skeleton: bool = True, ncol: int = 7) -> Path:
    """The first `num` pictures of a synth folder, captioned with their pose family and, with
    `skeleton`, overlaid with their true joints from renders.csv (to check both at a glance)."""
    import cv2

    out = Path(out)
    with open(out / RENDERS, newline="") as f:
        rows = list(csv.DictReader(f))[:num]
    tiles = []
    for row in rows:
        image = cv2.imread(str(out / IMAGES / row["file"]))[..., ::-1]
        if skeleton:
            size = image.shape[1], image.shape[0]
            pose = np.zeros((lm.NUM_LANDMARKS, 4), np.float32)
            for i, name in enumerate(lm.NAMES):
                if f"{name}_x" in row:
                    pose[i] = float(row[f"{name}_x"]) / size[0], float(row[f"{name}_y"]) / size[1], 0, 1
            image = draw_skeleton(image, pose)
        tiles.append(image)
    return save_png(make_grid(tiles, ncol=min(ncol, len(tiles)), captions=[r["family"] for r in rows]), path)
