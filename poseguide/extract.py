"""People in a photo -> poses and masks: HOG person proposals, then MediaPipe Pose per proposal.

MediaPipe Pose finds one person per call, so a frame with several people is first cut
into proposals by OpenCV's HOG people detector (bundled, no download). MediaPipe then
runs on an enlarged crop around each proposal; one pass gives the 33 landmarks and the
person's segmentation mask. Results come back in source-image coordinates, and samples
are re-framed with `poseguide.framing`, THE crop rule, so a sample never depends on
where the proposal happened to be.

HOG is the expensive part (REFERENCES.md: ~305 ms per 768x576 frame at winStride 4,
scale 1.05, over ten times the pose model per person). Measured on vtest
(`benchmarks/bench_prepare.py --detectors`), that reference setting also has poor
recall there: HOG's 64x128 window misses people under ~100 px. The defaults upscale the
frame to 1024 px and search it coarsely (stride 16, scale step 1.1, no grouping, NMS
instead), which finds more people for about a third of the time; in videos, people
found in one frame seed the next, so HOG runs on every 10th frame only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from poseguide import framing, landmarks as lm

# Joints whose position must fall on the person's mask for the pair to agree. Face points
# sit inside the head's mask too, but they are many and close: one (the nose) is enough.
_AGREEMENT_JOINTS = lm.BODY_JOINTS


@dataclass(frozen=True)
class DetectorSettings:
    """Person proposals: HOG on a frame resized so its longer side is `work_side` px.

    HOG's window is 64x128 px, so it sees people taller than ~100 px of the working
    image. `win_stride` and `scale` trade recall for time; `context` enlarges each
    proposal box (by its longer side) before MediaPipe sees it; `track_context` does the
    same for a person followed from the previous video frame (their landmark box), and
    HOG runs on every `detect_every`-th frame of a video only.
    """

    work_side: int = 1024
    win_stride: int = 16
    scale: float = 1.1
    hit_threshold: float = 0.0
    padding: int = 0  # HOG's border around the frame: 16 px costs 17% more HOG time, finds 1 more of 199 people
    group_threshold: int = 0
    nms_iou: float = 0.4
    context: float = 1.6
    track_context: float = 1.8
    detect_every: int = 10
    seed_overlap: float = 0.5
    full_frame_fallback: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DetectorSettings":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Proposal:
    """A box in source pixels, [x0, x1) x [y0, y1), with the detector's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float


@dataclass
class Person:
    """One person MediaPipe found: pose normalised to the source image, and its mask.

    The mask covers `region` (integer source pixels x0, y0, x1, y1), at `mask_scale`
    mask pixels per source pixel; outside the region the person's mask is 0.
    """

    landmarks: np.ndarray  # (33, 4) float32, x, y normalised to the source image
    mask: np.ndarray  # (h, w) float32 in [0, 1]
    region: tuple[int, int, int, int]
    mask_scale: float
    image_size: tuple[int, int]  # source (W, H)
    detector_score: float
    pose_score: float
    mask_agreement: float = 0.0
    proposal: int = -1  # index of the proposal it came from, -1 for the whole frame


def make_hog() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; boxes (N, 4) as x0, y0, x1, y1. Ties break by index."""
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[j]) <= iou_threshold for j in keep):
            keep.append(i)
    return keep


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def detect_people(
    image: np.ndarray, settings: DetectorSettings = DetectorSettings(), hog: cv2.HOGDescriptor | None = None
) -> list[Proposal]:
    """HOG people proposals in source pixels, merged by NMS, best first."""
    hog = hog or make_hog()
    height, width = image.shape[:2]
    scale = settings.work_side / max(width, height)
    work = image
    if abs(scale - 1.0) > 1e-3:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        work = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interp)
    if work.shape[0] < 128 or work.shape[1] < 64:
        return []
    grey = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY) if work.ndim == 3 else work
    rects, weights = hog.detectMultiScale(
        grey,
        hitThreshold=settings.hit_threshold,
        winStride=(settings.win_stride, settings.win_stride),
        padding=(settings.padding, settings.padding),
        scale=settings.scale,
        groupThreshold=settings.group_threshold,
    )
    if len(rects) == 0:
        return []
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / scale
    scores = np.asarray(weights, dtype=np.float64).reshape(-1)
    boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], axis=1)
    keep = nms(boxes, scores, settings.nms_iou)
    return [Proposal(*map(float, boxes[i]), score=float(scores[i])) for i in keep]


def proposal_region(p: Proposal, image_size: tuple[int, int], context: float) -> tuple[int, int, int, int]:
    """The square around a proposal, `context` times its longer side, clipped to the image."""
    width, height = image_size
    cx, cy = (p.x0 + p.x1) / 2, (p.y0 + p.y1) / 2
    half = max(p.x1 - p.x0, p.y1 - p.y0) * context / 2
    x0, y0 = max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half)))
    x1, y1 = min(width, int(np.ceil(cx + half))), min(height, int(np.ceil(cy + half)))
    return x0, y0, x1, y1


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ libraries writing straight to fd 2; Python exceptions still carry their message."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class PoseEstimator:
    """One MediaPipe Pose graph (complexity 1, with segmentation): build once per process.

    Only model_complexity=1 ships inside the mediapipe 0.10.21 wheel; 0 and 2 download.
    """

    def __init__(self, min_detection_confidence: float = 0.5, max_input_side: int = 512):
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _quiet_stderr():  # TFLite/absl print INFO and WARNING lines at start-up
            import mediapipe as mp  # heavy: imported only where a graph is built

            self._pose = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=True,
                min_detection_confidence=min_detection_confidence,
            )
            # the first inference builds the delegates (and prints); do it here, silenced
            self._pose.process(np.zeros((64, 64, 3), np.uint8))
        self.max_input_side = max_input_side
        self.calls = 0

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
        """RGB uint8 -> (landmarks (33, 4) normalised to `image`, mask at the input scale, scale) or None.

        Big inputs are shrunk first (MediaPipe works at 256 px anyway); the mask comes
        back at the shrunk size, and `scale` says how many mask pixels make a source pixel.
        """
        self.calls += 1
        height, width = image.shape[:2]
        scale = min(1.0, self.max_input_side / max(height, width))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        with _quiet_stderr():  # MediaPipe warns once per graph about non-square inputs
            result = self._pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return None
        points = np.array(
            [[p.x, p.y, p.z, p.visibility] for p in result.pose_landmarks.landmark], dtype=np.float32
        )
        mask = result.segmentation_mask
        if mask is None:
            mask = np.zeros(image.shape[:2], dtype=np.float32)
        return points, np.asarray(mask, dtype=np.float32), scale


def estimate_region(
    image: np.ndarray, region: tuple[int, int, int, int], estimator: PoseEstimator
) -> Person | None:
    """Run MediaPipe on image[region] and express the result in source coordinates."""
    x0, y0, x1, y1 = region
    height, width = image.shape[:2]
    out = estimator(image[y0:y1, x0:x1])
    if out is None:
        return None
    points, mask, scale = out
    mask = isolate_person_mask(mask, points)
    rw, rh = x1 - x0, y1 - y0
    src = points.copy()
    src[:, 0] = (points[:, 0] * rw + x0) / width
    src[:, 1] = (points[:, 1] * rh + y0) / height
    src[:, 2] = points[:, 2] * rw / width  # z is on x's scale
    visible = src[list(lm.BODY_JOINTS), 3]
    return Person(
        landmarks=src.astype(np.float32),
        mask=mask,
        region=region,
        mask_scale=scale,
        image_size=(width, height),
        detector_score=0.0,
        pose_score=float(visible.mean()),
    )


def isolate_person_mask(mask: np.ndarray, points: np.ndarray, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> np.ndarray:
    """Keep only the parts of a segmentation mask that touch the person's own skeleton.

    MediaPipe segments every person in its input, so a crop around one walker also holds
    fragments of the neighbours beside them. Connected parts of the mask that no visible
    bone of this pose crosses are removed; soft edges of the kept parts stay as they were.
    points: (33, 4) normalised to the mask's image.
    """
    height, width = mask.shape
    binary = (mask >= 0.5).astype(np.uint8)
    count, labels = cv2.connectedComponents(binary, connectivity=8)
    if count <= 1:  # nothing above 0.5 at all: leave it to the agreement filter
        return mask
    seeds = np.zeros_like(binary)
    xy = np.round(points[:, :2] * np.array([width, height])).astype(np.int32)
    visible = points[:, 3] >= threshold
    thickness = max(1, int(round(0.01 * max(height, width))))
    bones = [xy[[a, b]] for a, b in lm.SKELETON_EDGES if visible[a] and visible[b]]
    if bones:  # one call for every bone: the same pixels as cv2.line per bone
        cv2.polylines(seeds, bones, False, 1, thickness)
    touched = np.zeros(count, dtype=np.uint8)
    touched[labels[(seeds > 0) & (binary > 0)]] = 1  # foreground labels only: never 0
    if not touched.any():
        return mask
    # Soft edges below 0.5 belong to the nearest kept part: grow the kept parts a little.
    kept = touched[labels]  # a lookup table: one pass over the label image
    grow = max(1, int(round(0.02 * max(height, width))))
    kept = cv2.dilate(kept, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask * kept.astype(mask.dtype)


def mask_agreement(person: Person, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> float:
    """How well mask and landmarks describe the same person, in [0, 1].

    The lower of two fractions: visible body joints that land on the mask (within a few
    pixels), and mask mass that lies inside the visible landmarks' box grown by 30%.
    A pose on one person with the mask of another, an empty mask, or limbs that leave
    the region MediaPipe saw all score low.
    """
    width, height = person.image_size
    x0, y0, _, _ = person.region
    s = person.mask_scale
    mask = person.mask
    mh, mw = mask.shape
    pts = person.landmarks
    joints = [j for j in _AGREEMENT_JOINTS if pts[j, 3] >= threshold]
    if not joints or mask.size == 0:
        return 0.0
    # joints on the mask: max over a small neighbourhood, since joints sit on limb edges
    radius = max(1, int(round(0.02 * max(mh, mw))))
    dilated = cv2.dilate(mask, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    hits = 0
    for j in joints:
        u = (pts[j, 0] * width - x0) * s
        v = (pts[j, 1] * height - y0) * s
        iu, iv = int(np.floor(u)), int(np.floor(v))
        if 0 <= iu < mw and 0 <= iv < mh and dilated[iv, iu] >= 0.5:
            hits += 1
    on_mask = hits / len(joints)
    total = float(mask.sum())
    if total <= 0:
        return 0.0
    vis = pts[pts[:, 3] >= threshold]
    if len(vis) == 0:
        vis = pts
    u = (vis[:, 0] * width - x0) * s
    v = (vis[:, 1] * height - y0) * s
    lo_u, hi_u, lo_v, hi_v = u.min(), u.max(), v.min(), v.max()
    gu, gv = 0.3 * (hi_u - lo_u) + 2, 0.3 * (hi_v - lo_v) + 2
    a0, a1 = max(0, int(np.floor(lo_u - gu))), min(mw, int(np.ceil(hi_u + gu)))
    b0, b1 = max(0, int(np.floor(lo_v - gv))), min(mh, int(np.ceil(hi_v + gv)))
    inside = float(mask[b0:b1, a0:a1].sum()) if a1 > a0 and b1 > b0 else 0.0
    return float(min(on_mask, inside / total))


class PersonFinder:
    """Finds people frame after frame, each with one MediaPipe pass per proposal.

    Proposals come from HOG on "detect" frames, and from `track()`: in a video, the
    people kept in one frame seed the next, since they moved only a little. HOG then
    needs to run only every few frames (to pick up newcomers), and a person HOG misses
    in one frame is still followed. A frame where nothing is found is tried whole
    (`full_frame_fallback`): one-person photos that HOG misses (close-ups, sitting).
    """

    def __init__(
        self,
        estimator: PoseEstimator,
        settings: DetectorSettings = DetectorSettings(),
        hog: cv2.HOGDescriptor | None = None,
    ):
        self.estimator = estimator
        self.settings = settings
        self.hog = hog or make_hog()
        self.seeds: list[tuple[Proposal, float]] = []  # (person box, detector score)
        self.detect_seconds = 0.0

    def reset(self) -> None:
        self.seeds = []

    def track(self, people: list[Person]) -> None:
        """Seed the next frame with these people (normally the ones kept in this frame)."""
        self.seeds = []
        for person in people:
            box = person_box(person)
            if box is not None:
                self.seeds.append((box, person.detector_score))

    def find(self, image: np.ndarray, detect: bool = True) -> list[Person]:
        """Everyone MediaPipe finds in the frame (possibly the same person twice), in proposal order."""
        height, width = image.shape[:2]
        regions: list[tuple[tuple[int, int, int, int], float]] = []
        for box, score in self.seeds:
            regions.append((proposal_region(box, (width, height), self.settings.track_context), score))
        if detect or not self.seeds:
            start = time.perf_counter()
            proposals = detect_people(image, self.settings, self.hog)
            self.detect_seconds += time.perf_counter() - start
            followed = [r for r, _ in regions]
            for p in proposals:
                region = proposal_region(p, (width, height), self.settings.context)
                if any(box_iou(region, f) > self.settings.seed_overlap for f in followed):
                    continue  # already followed from the previous frame
                regions.append((region, p.score))
        people: list[Person] = []
        for k, (region, score) in enumerate(regions):
            person = estimate_region(image, region, self.estimator)
            if person is not None:
                person.detector_score = score
                person.proposal = k
                person.mask_agreement = mask_agreement(person)
                people.append(person)
        if self.settings.full_frame_fallback and not people:
            person = estimate_region(image, (0, 0, width, height), self.estimator)
            if person is not None:
                person.proposal = -1
                person.mask_agreement = mask_agreement(person)
                people.append(person)
        return people


LEG_JOINTS = tuple(range(lm.INDEX["left_knee"], lm.NUM_LANDMARKS))  # knees, ankles, heels, toes


def mark_half_body(person: Person, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> bool:
    """Mark the legs invisible where the frame's bottom edge cuts through the body (a half-body
    shot), since MediaPipe draws legs anyway. Returns True for a half-body shot.

    Cut: the person's mask runs along the bottom edge for at least 0.3 torso lengths (feet
    at the edge of a full-body shot span under 0.25). Then leg joints below the edge are
    hidden, and all of them where hip to ankle spans under one torso length: standing legs
    are about 1.5 torsos long, so such legs were squeezed into the picture and are wrong.
    """
    width, height = person.image_size
    pts = person.landmarks
    if not all(pts[j, 3] >= threshold for j in (11, 12, 23, 24)) or person.region[3] < height:
        return False
    xy = pts[:, :2] * np.array([width, height])
    torso = float(np.linalg.norm(xy[[11, 12]].mean(0) - xy[[23, 24]].mean(0)))
    row = min(person.mask.shape[0] - 1, int((height - 1 - person.region[1]) * person.mask_scale))
    span = float((person.mask[row] > 0.5).sum()) / person.mask_scale
    if torso <= 0 or span < 0.3 * torso:
        return False
    legs = list(LEG_JOINTS)
    squeezed = float(np.max(xy[[27, 28], 1]) - np.mean(xy[[23, 24], 1])) < torso
    hidden = legs if squeezed else [j for j in legs if xy[j, 1] >= height]
    pts[hidden, 3] = 0.0
    return True


def person_box(person: Person, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> Proposal | None:
    """The box of a person's visible landmarks, in source pixels."""
    width, height = person.image_size
    pts = person.landmarks
    vis = pts[pts[:, 3] >= threshold]
    if len(vis) < 2:
        return None
    x, y = vis[:, 0] * width, vis[:, 1] * height
    return Proposal(float(x.min()), float(y.min()), float(x.max()), float(y.max()), person.detector_score)


def same_person(a: Person, b: Person, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD, tol: float = 0.1) -> bool:
    """Two results on one frame that are one person (MediaPipe locked onto it from two proposals).

    Compares body joints visible in both, in source pixels, relative to the person's height.
    """
    width, height = a.image_size
    both = [j for j in lm.BODY_JOINTS if a.landmarks[j, 3] >= threshold and b.landmarks[j, 3] >= threshold]
    if len(both) < 3:
        return False
    pa = a.landmarks[both, :2] * np.array([width, height])
    pb = b.landmarks[both, :2] * np.array([width, height])
    extent = max(float(np.ptp(pa[:, 1])), float(np.ptp(pa[:, 0])), 1.0)
    return float(np.median(np.linalg.norm(pa - pb, axis=1))) < tol * extent


@dataclass
class Sample:
    image: np.ndarray  # (S, S, 3) uint8, background replaced
    mask: np.ndarray  # (S, S) uint8
    landmarks: np.ndarray  # (33, 4) float32, crop-normalised
    box: framing.CropBox


def person_sample(
    image: np.ndarray,
    person: Person,
    size: int,
    framing_settings: framing.FramingSettings = framing.FramingSettings(),
    background: tuple[int, int, int] = (0, 0, 0),
) -> Sample:
    """Cut the person out with THE framing rule; pixels off the person's mask become `background`.

    Raises framing.FramingError when too few landmarks are visible to frame.
    """
    crop_landmarks, box = framing.pose_to_crop(person.landmarks, person.image_size, framing_settings)
    bg = tuple(float(c) for c in background)
    rgb = framing.crop_image(image, box, size, border_value=bg)
    # The mask lives on the region MediaPipe saw: the same box, shifted and scaled to it.
    x0, y0, _, _ = person.region
    s = person.mask_scale
    mask_box = framing.CropBox((box.x0 - x0) * s, (box.y0 - y0) * s, box.side * s)
    alpha = framing.crop_image(person.mask, mask_box, size, border_value=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)[..., None]
    out = rgb.astype(np.float32) * alpha + np.asarray(bg, dtype=np.float32) * (1.0 - alpha)
    return Sample(
        image=np.clip(out + 0.5, 0, 255).astype(np.uint8),
        mask=np.clip(alpha[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8),
        landmarks=crop_landmarks.astype(np.float32),
        box=box,
    )


class NoPersonError(ValueError):
    """No usable person in an image; one line."""


def best_person(
    image: np.ndarray, estimator: PoseEstimator, settings: DetectorSettings = DetectorSettings(), min_visible: int = 4
) -> Person:
    """The one person a single photo is 'of': the largest, most confident pose found.

    Candidates are every HOG proposal plus the whole image (a portrait fills the frame,
    which HOG's window often misses); each scores pose confidence x landmark-box size.
    """
    height, width = image.shape[:2]
    finder = PersonFinder(estimator, dataclasses.replace(settings, full_frame_fallback=False))
    people = finder.find(image, detect=True)
    whole = estimate_region(image, (0, 0, width, height), estimator)
    if whole is not None:
        whole.mask_agreement = mask_agreement(whole)
        people.append(whole)
    best, best_score = None, 0.0
    for person in people:
        if lm.count_visible_body_joints(person.landmarks) < min_visible:
            continue
        box = person_box(person)
        if box is None:
            continue
        extent = max(box.x1 - box.x0, box.y1 - box.y0)
        score = person.pose_score * extent * (0.5 + 0.5 * person.mask_agreement)
        if score > best_score:
            best, best_score = person, score
    if best is None:
        raise NoPersonError(
            "no person found" if not people else f"no person with at least {min_visible} of 13 body joints visible"
        )
    return best
