"""Metric functions for `poseguide evaluate`: pure, batched, and checked on known answers.

Nothing here runs a model or MediaPipe; `poseguide.evaluate` does that and hands the results
to these functions. Conventions:

- Poses are (N, 33, 4) float arrays (x, y, z, visibility) normalised to a square image, so
  distances in normalised units are the same along x and y.
- A pose MediaPipe did not find is a row of NaN (see `undetected`), never a missing row, so
  predictions and targets stay aligned by index.
- Images are float tensors (N, 3, H, W) in [0, 1] unless a function says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from poseguide import landmarks as lm
from poseguide.losses import elbo_bits_per_dim

PCK_THRESHOLDS: tuple[float, ...] = (0.05, 0.1)
PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; each image's PSNR is capped here
SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_VARIANT = (
    f"torchmetrics structural_similarity_index_measure, Gaussian window {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} "
    f"sigma {SSIM_SIGMA}, K1 0.01, K2 0.03, data range 1.0 (RGB in [0, 1]), mean over channels and pixels, "
    "then over images"
)
PCK_DEFINITION = (
    "A body joint (landmarks.BODY_JOINTS: nose, shoulders, elbows, wrists, hips, knees, ankles) counts when "
    "the target marks it visible (visibility >= {vis}); it is correct when the re-detected joint lies within "
    "alpha x L of the target joint, where L is the longer side of the box around the target's visible body "
    "joints. PCK@alpha = correct joints / counted joints over all samples. A sample in which MediaPipe finds "
    "no person keeps its counted joints, all wrong (it scores 0); the detection rate is reported beside it, "
    "and PCK among detected samples only is given too. Re-detected visibility is ignored."
)


def undetected() -> np.ndarray:
    """The placeholder for 'MediaPipe found no person': a (33, 4) pose of NaN."""
    return np.full((lm.NUM_LANDMARKS, 4), np.nan, dtype=np.float32)


def is_detected(poses: np.ndarray) -> np.ndarray:
    """(N, 33, 4) -> (N,) bool: which rows hold a pose rather than the NaN placeholder."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.isfinite(poses[..., :2]).all(axis=(-1, -2))


def detection_rate(poses: np.ndarray) -> float:
    """Fraction of rows in which a person was found (NaN rows are misses)."""
    found = is_detected(poses)
    return float(found.mean()) if found.size else float("nan")


def person_scale(
    target: np.ndarray,
    joints: tuple[int, ...] = lm.BODY_JOINTS,
    threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD,
) -> np.ndarray:
    """(N, 33, 4) -> (N,): the longer side of the box around each target's visible body joints.

    0 when fewer than two joints are visible (such a sample has no scale and is not scored).
    """
    target = np.asarray(target, dtype=np.float64)
    pts = target[:, list(joints)]
    visible = pts[..., 3] >= threshold
    big, small = np.inf, -np.inf
    x = pts[..., 0]
    y = pts[..., 1]
    width = np.where(visible, x, small).max(1) - np.where(visible, x, big).min(1)
    height = np.where(visible, y, small).max(1) - np.where(visible, y, big).min(1)
    scale = np.maximum(width, height)
    return np.where(visible.sum(1) >= 2, scale, 0.0)


@dataclass
class PCKCounts:
    """Per-sample counts: `correct[i, t]` joints of sample i within threshold t, of `counted[i]`."""

    thresholds: tuple[float, ...]
    correct: np.ndarray  # (N, T) int
    counted: np.ndarray  # (N,) int
    detected: np.ndarray  # (N,) bool

    def pck(self, only_detected: bool = False) -> dict[float, float]:
        """Joint-weighted PCK at each threshold (NaN when nothing is counted)."""
        keep = self.detected if only_detected else np.ones_like(self.detected)
        total = int(self.counted[keep].sum())
        return {
            t: (float(self.correct[keep, k].sum()) / total if total else float("nan"))
            for k, t in enumerate(self.thresholds)
        }

    @property
    def detection_rate(self) -> float:
        scored = self.counted > 0
        return float(self.detected[scored].mean()) if scored.any() else float("nan")


def pck_counts(
    predicted: np.ndarray,
    target: np.ndarray,
    thresholds: tuple[float, ...] = PCK_THRESHOLDS,
    joints: tuple[int, ...] = lm.BODY_JOINTS,
    threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD,
) -> PCKCounts:
    """Score re-detected poses against targets (both (N, 33, 4), same normalised square image).

    Undetected predictions (NaN rows) count all their joints as wrong; see PCK_DEFINITION.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim != 3 or predicted.shape[1:] != (lm.NUM_LANDMARKS, 4):
        raise ValueError(f"expected two (N, 33, 4) arrays, got {predicted.shape} and {target.shape}")
    scale = person_scale(target, joints, threshold)
    idx = list(joints)
    counted_mask = (target[:, idx, 3] >= threshold) & (scale[:, None] > 0)
    detected = is_detected(predicted)
    dist = np.linalg.norm(predicted[:, idx, :2] - target[:, idx, :2], axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    # "within" is inclusive; the 1e-9 keeps a joint exactly on the threshold inside despite rounding
    correct = np.stack(
        [((dist <= t * scale[:, None] * (1 + 1e-9)) & counted_mask).sum(1) for t in thresholds], axis=1
    ).astype(np.int64)
    return PCKCounts(tuple(thresholds), correct, counted_mask.sum(1).astype(np.int64), detected)


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (every sample gets another's pose); n >= 2.

    A uniformly random rotation of a random order: simple and never maps i to i.
    """
    if n < 2:
        raise ValueError("shuffling poses needs at least two samples")
    order = rng.permutation(n)
    shift = int(rng.integers(1, n))
    perm = np.empty(n, dtype=np.int64)
    perm[order] = order[(np.arange(n) + shift) % n]
    return perm


def normalised_score(score: float, floor: float, ceiling: float) -> float:
    """Where a score sits between floor (0) and ceiling (1): (score - floor) / (ceiling - floor).

    NaN when the ceiling does not lie above the floor (the range says nothing then).
    """
    if not all(math.isfinite(v) for v in (score, floor, ceiling)) or ceiling <= floor:
        return float("nan")
    return (score - floor) / (ceiling - floor)


# --- pixels ---------------------------------------------------------------------------------


def psnr(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(N,) PSNR in dB of each image pair, capped at PSNR_CAP_DB (identical images hit the cap)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    values = peak_signal_noise_ratio(
        preds.double(), target.double(), data_range=data_range, reduction="none", dim=(1, 2, 3)
    )
    return values.clamp(max=PSNR_CAP_DB)


def ssim(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, chunk: int = 32) -> torch.Tensor:
    """(N,) SSIM of each image pair; the variant is SSIM_VARIANT (Gaussian 11x11, sigma 1.5).

    float32 in chunks: float64 convolutions run ~10x slower on CPUs and 200 images at once took
    17 GB. float32 costs ~1e-4 of accuracy where an image is flat (variance as a difference of
    near-equal means).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    out = [
        structural_similarity_index_measure(
            p.float(),
            t.float(),
            gaussian_kernel=True,
            sigma=SSIM_SIGMA,
            kernel_size=SSIM_KERNEL_SIZE,
            data_range=data_range,
            reduction="none",
        ).reshape(-1)
        for p, t in zip(preds.split(chunk), target.split(chunk))
    ]
    return torch.cat(out)


def bits_per_dim(image: torch.Tensor, rgb: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(N,) negative ELBO in bits per 8-bit RGB dimension: `poseguide.losses.elbo_bits_per_dim`.

    image and rgb are in the model's [-1, 1] range.
    """
    return elbo_bits_per_dim(image, rgb, mu, logvar)


def pose_region(
    pose: np.ndarray, size: int, margin: float = 0.1, threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD
) -> np.ndarray:
    """(size, size) bool: the box of a pose's visible landmarks grown by `margin` x its longer side.

    The 'person region' where diversity is measured; the whole image if nothing is visible.
    """
    pose = np.asarray(pose, dtype=np.float64)
    vis = pose[pose[:, 3] >= threshold, :2]
    region = np.zeros((size, size), dtype=bool)
    if len(vis) == 0:
        region[:] = True
        return region
    lo, hi = vis.min(0), vis.max(0)
    grow = margin * float((hi - lo).max())
    x0, y0 = np.floor((lo - grow) * size + 1e-6).astype(int)
    x1, y1 = np.ceil((hi + grow) * size - 1e-6).astype(int)
    region[max(0, y0) : max(0, min(size, y1)), max(0, x0) : max(0, min(size, x1))] = True
    if not region.any():
        region[:] = True
    return region


def mean_pairwise_l1(images: torch.Tensor, region: torch.Tensor | np.ndarray | None = None) -> float:
    """Mean absolute difference between every pair of K images (K, C, H, W), inside `region`.

    The spread among samples: 0 for K copies of one image. Values in the images' units
    (for [0, 1] images, 1 is black against white everywhere).
    """
    k = images.shape[0]
    if k < 2:
        raise ValueError("the spread needs at least two images")
    x = images.float()
    if region is None:
        region = torch.ones(x.shape[-2:], dtype=torch.bool)
    region = torch.as_tensor(np.asarray(region), dtype=torch.bool)
    if not region.any():
        raise ValueError("the region holds no pixels")
    pixels = x[:, :, region]  # (K, C, P)
    total, pairs = 0.0, 0
    for i in range(k - 1):
        total += float((pixels[i + 1 :] - pixels[i : i + 1]).abs().mean(dim=(1, 2)).sum())
        pairs += k - 1 - i
    return total / pairs


def summary(values: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and count of per-image values, for the report."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    return {
        "mean": float(v.mean()) if v.size else float("nan"),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "n": int(v.size),
    }


# --- sharpness ------------------------------------------------------------------------------

# The 4-neighbour Laplacian, cv2.Laplacian's ksize=1 kernel.
LAPLACIAN_KERNEL = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as cv2.cvtColor RGB2GRAY
FACE_BOX_GROW = 0.5  # each side grown by this x the face landmarks' longer side: ears to the whole head
HAND_BOX_GROW = 1.0  # wrist to finger landmarks span only part of a hand
MIN_BOX_SIDE = 0.06  # of the image side: a box is at least ~8 px at 128 px
SHARPNESS_DEFINITION = (
    "high-frequency energy: the mean squared 4-neighbour Laplacian (kernel [[0,1,0],[1,-4,1],[0,1,0]]) of "
    "luminance (BT.601, in [0, 1]) over the pixels of a region whose 3x3 neighbourhood lies inside the image; "
    "person: the person mask (real: the stored mask; generated: its alpha >= 0.5); face: the square box around "
    f"the visible face landmarks (0-10), each side grown by {FACE_BOX_GROW:g} x their longer side; hand: the same "
    f"around one hand's visible wrist, pinky, index and thumb (15-22), grown by {HAND_BOX_GROW:g} x; boxes at least "
    f"{MIN_BOX_SIDE:g} of the image side. A flat or linearly shaded patch scores 0, a 1-pixel checkerboard of 0 and "
    "1 scores 16. Per image, then averaged over images; ratio = generated / real (1: as detailed as real photos). "
    "The *_coarse regions measure the same after 2x2 area averaging on the even pixel grid (a coarse pixel is in the "
    "region when at least half of its 4 pixels are): blind to any pattern that repeats every 2 pixels and averages "
    "out over each 2x2 block, such as the checkerboard a 2x sub-pixel upsampler draws, so only detail of 2 pixels "
    "and coarser counts"
)


# Full resolution, then 2x2-averaged (coarse_laplacian_energy): detail without sub-pixel artifacts.
SHARPNESS_REGIONS = ("person", "face", "hand", "person_coarse", "face_coarse", "hand_coarse")


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, H, W) luminance in [0, 1]."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64)
    return torch.einsum("nchw,c->nhw", images.double(), weights)


def laplacian_energy(images: torch.Tensor, regions: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """(N,) mean squared Laplacian of each image's luminance inside its region (N, H, W) bool.

    Images are (N, 3, H, W) RGB or (N, 1, H, W) grey, in [0, 1]. Only pixels whose 3x3
    neighbourhood lies inside the image count (no padding invents edges at the border). An
    image whose region holds none of them gets NaN, so averages can skip it.
    """
    x = images.double()
    grey = luminance(x) if x.shape[1] == 3 else x[:, 0]
    kernel = torch.tensor(LAPLACIAN_KERNEL, dtype=torch.float64)[None, None]
    lap2 = torch.nn.functional.conv2d(grey[:, None], kernel)[:, 0].pow(2)  # (N, H-2, W-2)
    if regions is None:
        return lap2.mean(dim=(1, 2))
    inner = torch.as_tensor(np.asarray(regions), dtype=torch.bool)[:, 1:-1, 1:-1]
    count = inner.sum(dim=(1, 2))
    total = (lap2 * inner).sum(dim=(1, 2))
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def coarse_laplacian_energy(images: torch.Tensor, regions: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """laplacian_energy after 2x2 area averaging on the even grid: detail of 2 pixels and coarser.

    A decoder that upsamples 2x by sub-pixel convolution (PixelShuffle) can draw a pattern that
    repeats every 2 pixels; it is the largest thing the full-resolution Laplacian sees, yet every
    2x2 block of it averages to nothing here. Real detail survives the averaging in part, so
    generated / real at this scale separates detail from that artifact.
    """
    h, w = images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2
    coarse = torch.nn.functional.avg_pool2d(images[..., :h, :w].double(), 2)
    if regions is None:
        return laplacian_energy(coarse)
    inside = torch.as_tensor(np.asarray(regions), dtype=torch.float64)[:, None, :h, :w]
    return laplacian_energy(coarse, (torch.nn.functional.avg_pool2d(inside, 2)[:, 0] >= 0.5).numpy())


def landmark_box(pose: np.ndarray, indices, size: int, grow: float, min_side: float = MIN_BOX_SIDE,
                 threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD) -> tuple[int, int, int, int] | None:
    """The square pixel box (x0, y0, x1, y1) around a pose's visible `indices` landmarks, each
    side grown by `grow` x their longer side, at least `min_side` x size, clipped to the image.

    None when fewer than two of the landmarks are visible or the box lies outside the image.
    """
    pts = np.asarray(pose, dtype=np.float64)[list(indices)]
    pts = pts[(pts[:, 3] >= threshold) & np.isfinite(pts[:, :2]).all(1), :2]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(0), pts.max(0)
    span = float((hi - lo).max())
    half = max(span * (0.5 + grow), 0.5 * min_side) * size
    cx, cy = (lo + hi) / 2 * size
    x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
    x1, y1 = int(np.ceil(cx + half)), int(np.ceil(cy + half))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size, x1), min(size, y1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    return x0, y0, x1, y1


def face_box(pose: np.ndarray, size: int) -> tuple[int, int, int, int] | None:
    """The face box of one (33, 4) pose (see SHARPNESS_DEFINITION), or None."""
    return landmark_box(pose, lm.FACE_LANDMARKS, size, FACE_BOX_GROW)


def hand_boxes(pose: np.ndarray, size: int) -> list[tuple[int, int, int, int]]:
    """The boxes of the hands (left, right) of one pose whose landmarks are visible."""
    boxes = (landmark_box(pose, hand, size, HAND_BOX_GROW) for hand in lm.HAND_LANDMARKS)
    return [box for box in boxes if box is not None]


def box_regions(boxes: list[list[tuple[int, int, int, int]]], size: int) -> np.ndarray:
    """(N, size, size) bool: the union of each image's boxes (an image with none: all False)."""
    regions = np.zeros((len(boxes), size, size), dtype=bool)
    for region, image_boxes in zip(regions, boxes):
        for x0, y0, x1, y1 in image_boxes:
            region[y0:y1, x0:x1] = True
    return regions


def nanmean(values: torch.Tensor | np.ndarray) -> float:
    """The mean of the finite values (NaN when there are none)."""
    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
