"""Who is who: body-appearance descriptors, tracks through a video, and matching to reference photos.

A scrape of one person's photos holds teammates and passers-by; a video holds everyone who
walked past. `prepare` uses this module to keep the one person the user means:

- `appearance` describes a prepared sample by the colours of its body parts (head, torso,
  upper and lower arms, thighs, shins), each a Lab colour histogram of the masked pixels
  around that limb. Clothing changes less with pose than anything else a crop shows, and
  the parts keep a red shirt over blue jeans apart from the reverse.
- `appearance_distance` compares two descriptors part by part (Hellinger distance of the
  histograms, over the parts both show): 0 is the same colours, 1 nothing in common.
- `lookalike_distance` is the unit those distances are judged in: how near the references the
  people known to be someone else come. A black coat is near every black coat, a red jacket
  near nobody's; one limit in this unit serves both.
- `assign_tracks` links the people of consecutive video frames by the overlap of their crop
  boxes, refusing a link between clearly different-looking people or across a sudden jump in
  box size (someone stepping in front), so that a decision made
  for a track (its median distance to the references) holds for every frame of it.
- `main_subject` picks the person a photo is of when no reference is given.

Nothing here reads files: prepare.py owns the dataset format and calls these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from poseguide import landmarks as lm

# Body parts: (name, joint chain, weight in the distance). A chain of two joints is a limb
# drawn as a thick line; the torso is the polygon of shoulders and hips; the head a disc.
PARTS: tuple[tuple[str, tuple[tuple[int, int], ...], float], ...] = (
    ("head", ((0, 0),), 0.5),
    ("torso", ((11, 12), (24, 23)), 2.0),
    ("upper_arms", ((11, 13), (12, 14)), 1.0),
    ("forearms", ((13, 15), (14, 16)), 0.5),
    ("thighs", ((23, 25), (24, 26)), 1.5),
    ("shins", ((25, 27), (26, 28)), 1.0),
)
BINS = (4, 6, 6)  # L, a, b: lightness varies with light, so it gets fewer bins than colour
DESCRIPTOR_SHAPE = (len(PARTS), int(np.prod(BINS)))
MIN_PART_PIXELS = 12  # at the 64 px working size; a part with fewer is "not seen"
WORK_SIDE = 64


def _part_masks(landmarks: np.ndarray, side: int, threshold: float) -> list[np.ndarray]:
    """One uint8 region per part (before intersecting with the person mask), from crop-normalised landmarks."""
    pts = landmarks[:, :2] * side
    vis = landmarks[:, 3] >= threshold
    shoulders = [j for j in (11, 12) if vis[j]]
    hips = [j for j in (23, 24) if vis[j]]
    if shoulders and hips:
        torso_len = float(np.linalg.norm(pts[shoulders].mean(0) - pts[hips].mean(0)))
    else:
        torso_len = 0.3 * side
    width = max(2, int(round(0.22 * torso_len)))
    regions = []
    for name, chain, _ in PARTS:
        region = np.zeros((side, side), np.uint8)
        if name == "head":
            face = [j for j in range(11) if vis[j]]
            if face:
                centre = pts[face].mean(0)
                cv2.circle(region, (int(centre[0]), int(centre[1])), max(2, int(0.22 * torso_len)), 1, -1)
        elif name == "torso":
            if all(vis[j] for j in (11, 12, 23, 24)):
                quad = pts[[11, 12, 24, 23]].astype(np.int32)
                cv2.fillConvexPoly(region, quad, 1)
        else:
            for a, b in chain:
                if vis[a] and vis[b]:
                    cv2.line(region, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1, width)
        regions.append(region)
    return regions


def appearance(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray,
               threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """The (len(PARTS), prod(BINS)) colour histograms of one prepared sample; a part not seen is all zeros.

    `image` (S, S, 3) uint8 RGB, `mask` (S, S) uint8, `landmarks` (33, 4) crop-normalised.
    """
    small = cv2.resize(image, (WORK_SIDE, WORK_SIDE), interpolation=cv2.INTER_AREA)
    on_person = cv2.resize(mask, (WORK_SIDE, WORK_SIDE), interpolation=cv2.INTER_AREA) >= 128
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    # OpenCV's 8-bit Lab: L 0-255, a and b 0-255 centred on 128; clothing rarely leaves a, b in 64-192.
    l_bin = np.minimum(lab[..., 0].astype(np.int32) * BINS[0] // 256, BINS[0] - 1)
    a_bin = np.clip((lab[..., 1].astype(np.int32) - 64) * BINS[1] // 128, 0, BINS[1] - 1)
    b_bin = np.clip((lab[..., 2].astype(np.int32) - 64) * BINS[2] // 128, 0, BINS[2] - 1)
    code = (l_bin * BINS[1] + a_bin) * BINS[2] + b_bin
    out = np.zeros(DESCRIPTOR_SHAPE, np.float32)
    for p, region in enumerate(_part_masks(landmarks, WORK_SIDE, threshold)):
        pixels = code[(region > 0) & on_person]
        if len(pixels) >= MIN_PART_PIXELS:
            hist = np.bincount(pixels, minlength=out.shape[1]).astype(np.float32)
            out[p] = hist / hist.sum()
    return out


def appearances(images: np.ndarray, masks: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """`appearance` of every sample: (N, len(PARTS), prod(BINS)) float32."""
    out = np.zeros((len(images), *DESCRIPTOR_SHAPE), np.float32)
    for i in range(len(images)):
        out[i] = appearance(np.asarray(images[i]), np.asarray(masks[i]), np.asarray(poses[i]))
    return out


_WEIGHTS = np.array([w for _, _, w in PARTS], np.float32)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weighted mean Hellinger distance over the parts both descriptors show, in [0, 1].

    Broadcasts: a (..., P, B) against b (..., P, B). Where no part is shown by both, 1.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    bc = np.sqrt(a * b).sum(-1)  # Bhattacharyya coefficient per part
    both = (a.sum(-1) > 0) & (b.sum(-1) > 0)
    hellinger = np.sqrt(np.clip(1.0 - bc, 0.0, 1.0))
    weight = _WEIGHTS * both
    total = weight.sum(-1)
    return np.where(total > 0, (hellinger * weight).sum(-1) / np.maximum(total, 1e-9), 1.0)


def nearest_reference_distance(descriptors: np.ndarray, references: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each of N descriptors, its distance to the nearest of R reference descriptors: (N,)."""
    out = np.ones(len(descriptors), np.float32)
    if len(references) == 0:
        return out
    for s in range(0, len(descriptors), chunk):
        d = appearance_distance(descriptors[s:s + chunk, None], references[None])
        out[s:s + chunk] = d.min(1)
    return out


# People known to be someone else: in a photo or video frame with several people at most one is
# the person, so all but the one nearest the references are others. Their nearest 1% mark where
# look-alikes begin. The quantile and prepare's default limit (0.8 of it) were chosen on the
# candidates from vtest's first 400 frames (benchmarks/bench_identity.py).
LOOKALIKE_QUANTILE = 0.01
MIN_KNOWN_OTHERS = 20
# Used where fewer are known (a collection of solo photos): 0.8 of it is 0.35, the fixed limit
# before look-alikes were measured; vtest's people measure 0.27-0.69.
DEFAULT_LOOKALIKE_DISTANCE = 0.4375
# A floor, so that a reference photo that is also among the inputs (distance 0 to itself, and
# maybe to a twin beside it) cannot make every other distance huge.
MIN_LOOKALIKE_DISTANCE = 0.05


def lookalike_distance(distances: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """The distance to the references at which people known to be someone else begin.

    `distances` (N,) are each person's distance to the nearest reference, `groups` (N,) ints
    numbering the photo or video frame each was found in. In each group all but the person
    nearest the references are someone else. Returns the LOOKALIKE_QUANTILE of their
    distances (DEFAULT_LOOKALIKE_DISTANCE where fewer than MIN_KNOWN_OTHERS are known) and
    how many they are.
    """
    distances = np.asarray(distances, np.float64)
    groups = np.asarray(groups)
    order = np.lexsort((distances, groups))
    g = groups[order]
    nearest = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, bool)
    others = distances[order[~nearest]]
    if len(others) < MIN_KNOWN_OTHERS:
        return DEFAULT_LOOKALIKE_DISTANCE, len(others)
    return max(float(np.quantile(others, LOOKALIKE_QUANTILE)), MIN_LOOKALIKE_DISTANCE), len(others)


# ----------------------------------------------------------------------------- tracks


@dataclass(frozen=True)
class TrackSettings:
    """Linking people of nearby frames: crop boxes overlapping at least `min_iou`, frames at most
    `max_gap` sampled frames apart (a person the filters dropped for a moment), looks no
    further apart than `max_distance` (two people crossing swap boxes, not colours), and box
    sides within `max_scale_change` of each other: a walker's crop grows or shrinks a few
    percent between samples, while a crop that jumps in size has framed someone stepping in
    front, or two people at once, and continuing the track there would hand it to them."""

    min_iou: float = 0.3
    max_gap: int = 5
    max_distance: float = 0.6
    max_scale_change: float = 1.25


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of square boxes (x0, y0, side): a (N, 3) against b (M, 3) -> (N, M)."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    ix = np.clip(np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 1] + a[..., 2], b[..., 1] + b[..., 2]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = a[..., 2] ** 2 + b[..., 2] ** 2 - inter
    return inter / np.maximum(union, 1e-9)


def assign_tracks(frames: np.ndarray, boxes: np.ndarray, descriptors: np.ndarray, every: int = 1,
                  settings: TrackSettings = TrackSettings()) -> np.ndarray:
    """Track numbers 0, 1, ... for the people of one video, in first-seen order.

    frames (N,) source frame numbers; boxes (N, 3) crop boxes (x0, y0, side) in source pixels;
    descriptors (N, P, B) from `appearance`. Greedy: each frame's people take the best
    overlapping live track in order of overlap; the rest start new tracks.
    """
    frames = np.asarray(frames)
    track = np.full(len(frames), -1, np.int64)
    live: list[int] = []  # per track: the index of its last sample
    for frame in np.unique(frames):
        here = np.flatnonzero(frames == frame)
        alive = [t for t, last in enumerate(live) if 0 < frame - frames[last] <= settings.max_gap * every]
        if alive:
            last = np.array([live[t] for t in alive])
            iou = box_iou(boxes[here], boxes[last])
            looks = appearance_distance(descriptors[here][:, None], descriptors[last][None])
            sides = boxes[here][:, None, 2], boxes[last][None, :, 2]
            scale = np.maximum(*sides) / np.maximum(np.minimum(*sides), 1e-9)
            iou[(iou < settings.min_iou) | (looks > settings.max_distance) | (scale > settings.max_scale_change)] = 0.0
            while iou.size and iou.max() > 0:
                i, j = np.unravel_index(int(iou.argmax()), iou.shape)
                track[here[i]] = alive[j]
                live[alive[j]] = here[i]
                iou[i, :] = 0.0
                iou[:, j] = 0.0
        for i in here:
            if track[i] < 0:
                track[i] = len(live)
                live.append(i)
    return track


def main_subject(boxes: np.ndarray, image_size: tuple[int, int]) -> int:
    """Which of a photo's people it is 'of': the largest crop box, discounted by its distance
    from the image centre (a bystander at the edge loses to the subject unless much larger)."""
    boxes = np.asarray(boxes, np.float64)
    width, height = image_size
    cx = (boxes[:, 0] + boxes[:, 2] / 2) / width - 0.5
    cy = (boxes[:, 1] + boxes[:, 2] / 2) / height - 0.5
    off_centre = np.sqrt(cx ** 2 + cy ** 2) / np.sqrt(0.5)  # 0 at the centre, 1 in a corner
    return int(np.argmax(boxes[:, 2] * (1.0 - 0.5 * off_centre)))
