"""How far a pose lies from the poses a model was trained on.

A model draws poses like its training poses well and others poorly (a raised arm, learnt
from walkers only, comes out as a smear), so `generate` warns when a requested pose is far
from every training pose, and `poseguide show` draws how the training poses spread.

The distance between two poses is the largest, over the body joints visible in the requested
pose, of how far a joint lies from the same joint of the other pose, in crop units (the
square crop the model draws has side 1; `framing` puts every pose into it the same way). The
largest, not the mean: one raised arm is what the model has not seen, and a mean over 13
joints hides it.
Training poses count mirrored as well when the model was trained with flips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poseguide import landmarks as lm

BODY = np.asarray(lm.BODY_JOINTS)
# A pose whose nearest training pose is further than this is "outside what the model saw".
# On the sample video 99% of held-out poses lie within 0.10 of a training pose (median 0.045),
# while held-out poses edited by poseguide.pose_edits lie, in 95% of cases, beyond 0.15 (both
# arms up), 0.12 (elbows bent up), 0.12 (arms out in a T) and 0.10 (one arm up)
# (benchmarks/bench_coverage.py prints these).
FAR = 0.1
_CHUNK = 64  # requested poses compared at once: keeps the (chunk, N, joints, 2) array small


def pose_distance(poses: np.ndarray, references: np.ndarray, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """(M, 33, 4) poses and (N, 33, 4) references -> (M, N) distances (see the module
    docstring). A pose with no visible body joint is at distance inf from everything."""
    poses = np.asarray(poses, dtype=np.float32)[:, BODY]
    references = np.asarray(references, dtype=np.float32)[:, BODY, :2]
    visible = poses[:, :, 3] >= threshold  # (M, J)
    out = np.empty((len(poses), len(references)), dtype=np.float32)
    for start in range(0, len(poses), _CHUNK):
        chunk, seen = poses[start:start + _CHUNK, :, :2], visible[start:start + _CHUNK]
        gaps = np.linalg.norm(chunk[:, None] - references[None], axis=-1)  # (m, N, J)
        worst = np.where(seen[:, None], gaps, -np.inf).max(axis=-1)
        out[start:start + _CHUNK] = np.where(seen.any(axis=1)[:, None], worst, np.inf)
    return out


@dataclass
class PoseCoverage:
    """The training poses of a model, ready to measure requested poses against."""

    references: np.ndarray  # (N, 33, 4) crop coordinates, mirrored copies included
    far: float = FAR

    @classmethod
    def from_training_poses(cls, train_poses: np.ndarray, mirrored: bool = True, far: float = FAR) -> "PoseCoverage":
        poses = np.asarray(train_poses, dtype=np.float32)
        if mirrored:
            poses = np.concatenate([poses, lm.flip_horizontal(poses)])
        return cls(poses, far)

    def nearest(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, 33, 4) crop-coordinate poses -> (distance to the nearest training pose (M,),
        that pose's index in `references` (M,))."""
        distances = pose_distance(poses, self.references)
        index = distances.argmin(axis=1)
        return distances[np.arange(len(index)), index], index

    def warning(self, pose: np.ndarray, source: str = "pose") -> str | None:
        """One line when `pose` (33, 4) lies outside what the model saw, else None."""
        distance = float(self.nearest(np.asarray(pose)[None])[0][0])
        if distance <= self.far:
            return None
        return (
            f"{source}: this pose is unlike any training pose (distance {distance:.3f} to the nearest, "
            f"beyond {self.far:g}), so the person may be drawn poorly in it"
        )


def spread_map(poses: np.ndarray, size: int = 128, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """(N, 33, 4) crop-coordinate poses -> (len(BODY), size, size) counts of where each body
    joint was visible, for drawing a training set's pose coverage."""
    poses = np.asarray(poses, dtype=np.float32)[:, BODY]
    maps = np.zeros((len(BODY), size, size), dtype=np.float32)
    for j in range(len(BODY)):
        seen = poses[:, j, 3] >= threshold
        xy = np.clip((poses[seen, j, :2] * size).astype(int), 0, size - 1)
        np.add.at(maps[j], (xy[:, 1], xy[:, 0]), 1.0)
    return maps
