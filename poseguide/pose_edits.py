"""Poses moved the way a user moves them in a pose editor: an arm raised, both arms up,
arms out in a T, a wide stance, a knee lifted.

They turn real held-out poses into poses unlike a training set of walkers, for judging how
well a model follows poses it never saw (`poseguide evaluate`). Each edit swings a limb
about its root joint in the image plane and keeps the limb's bone lengths (never shorter
than a fraction of the torso, since a walker's arm seen end-on is short), carrying the hand
or foot points along rigidly. Poses are (33, 4) arrays normalised to a square image.
"""

from __future__ import annotations

import numpy as np

from poseguide import landmarks as lm

I = lm.INDEX
# (root, middle, end, the points carried with the end, the other side's root) for each limb.
LIMBS = {
    f"{side}_arm": (I[f"{side}_shoulder"], I[f"{side}_elbow"], I[f"{side}_wrist"],
                    (I[f"{side}_pinky"], I[f"{side}_index"], I[f"{side}_thumb"]), I[f"{other}_shoulder"])
    for side, other in (("left", "right"), ("right", "left"))
} | {
    f"{side}_leg": (I[f"{side}_hip"], I[f"{side}_knee"], I[f"{side}_ankle"],
                    (I[f"{side}_heel"], I[f"{side}_foot_index"]), I[f"{other}_hip"])
    for side, other in (("left", "right"), ("right", "left"))
}
MIN_BONE = {"arm": 0.33, "leg": 0.45}  # bone length at least this fraction of the torso

# Each family: limb -> (upper bone angle, lower bone angle) in degrees from straight down,
# positive away from the body's midline; ranges are sampled uniformly.
FAMILIES: dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "arms_up": {"left_arm": ((150, 175), (155, 180)), "right_arm": ((150, 175), (155, 180))},
    "t_pose": {"left_arm": ((80, 100), (80, 100)), "right_arm": ((80, 100), (80, 100))},
    "wide_stance": {"left_leg": ((18, 30), (10, 25)), "right_leg": ((18, 30), (10, 25))},
    "one_arm_up": {"left_arm": ((140, 175), (150, 180))},
    "arms_out_low": {"left_arm": ((35, 55), (40, 60)), "right_arm": ((35, 55), (40, 60))},
    "knee_up": {"right_leg": ((70, 95), (-10, 10))},
    "elbows_bent_up": {"left_arm": ((80, 100), (170, 180)), "right_arm": ((80, 100), (170, 180))},
}
# Families used while tuning the model; the others are kept unseen, so their scores are the
# honest ones.
TUNING_FAMILIES = ("arms_up", "t_pose", "wide_stance")
UNSEEN_FAMILIES = tuple(f for f in FAMILIES if f not in TUNING_FAMILIES)


def _direction(angle_deg: float, outward: float) -> np.ndarray:
    """A unit vector `angle_deg` from straight down (image y grows downwards), turned towards
    `outward` (+1: towards larger x)."""
    a = np.deg2rad(angle_deg)
    return np.array([outward * np.sin(a), np.cos(a)])


def swing_limb(pose: np.ndarray, limb: str, upper_deg: float, lower_deg: float) -> np.ndarray:
    """A copy of `pose` with `limb`'s two bones pointing at the given angles (see FAMILIES),
    its joints marked visible."""
    out = np.array(pose, dtype=np.float32, copy=True)
    root, middle, end, carried, other_root = LIMBS[limb]
    outward = 1.0 if out[root, 0] >= out[other_root, 0] else -1.0
    shoulders = (out[I["left_shoulder"], :2] + out[I["right_shoulder"], :2]) / 2
    hips = (out[I["left_hip"], :2] + out[I["right_hip"], :2]) / 2
    torso = max(float(np.linalg.norm(shoulders - hips)), 1e-3)
    floor = MIN_BONE["arm" if limb.endswith("arm") else "leg"] * torso
    upper = max(float(np.linalg.norm(out[middle, :2] - out[root, :2])), floor)
    lower = max(float(np.linalg.norm(out[end, :2] - out[middle, :2])), floor)
    old_end = out[end, :2].copy()
    old_dir = out[end, :2] - out[middle, :2]
    out[middle, :2] = out[root, :2] + upper * _direction(upper_deg, outward)
    new_dir = _direction(lower_deg, outward)
    out[end, :2] = out[middle, :2] + lower * new_dir
    # Hand or foot points: rotated with the lower bone about the end joint.
    turn = np.arctan2(new_dir[1], new_dir[0]) - np.arctan2(old_dir[1], old_dir[0])
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    for j in carried:
        out[j, :2] = out[end, :2] + rotation @ (out[j, :2] - old_end)
    for j in (root, middle, end, *carried):
        out[j, 3] = max(float(out[j, 3]), 1.0)
    return out


def edit_pose(pose: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    """`pose` moved into `family` (a key of FAMILIES), angles drawn from its ranges."""
    if family not in FAMILIES:
        raise ValueError(f"unknown pose family {family!r}; choose one of {', '.join(FAMILIES)}")
    out = np.asarray(pose, dtype=np.float32)
    for limb, ((u0, u1), (l0, l1)) in FAMILIES[family].items():
        out = swing_limb(out, limb, rng.uniform(u0, u1), rng.uniform(l0, l1))
    return out


def edited_set(poses: np.ndarray, families: tuple[str, ...], seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """One edit of each pose, the families taken in turn: (edited poses (N, 33, 4), family of each)."""
    rng = np.random.default_rng([int(seed), 7])
    names = [families[i % len(families)] for i in range(len(poses))]
    edited = [edit_pose(p, f, rng) for p, f in zip(poses, names)]
    return (np.stack(edited) if edited else np.zeros((0, lm.NUM_LANDMARKS, 4), np.float32)), names
