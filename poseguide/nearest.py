"""Nearest training image: does a model trained on few photos copy its training set?

Each image is reduced to a small thumbnail (area-averaged RGB, THUMB_SIDE x THUMB_SIDE, in
[0, 1]); the distance between two images is the RMS difference of their thumbnails. The
thumbnail keeps what makes two pictures "the same picture" (the silhouette, the pose, the
colours of clothes, skin and hair, on the dataset's constant background) and drops the fine
detail a VAE blurs away, so a blurred copy of a training image still lands next to it. It needs
no pretrained weights, and a few thousand training images cost well under a second on a CPU.

The distances mean something only beside a scale: real held-out images of the same dataset
against the same training set. Generated samples much nearer to the training set than held-out
real images are (a ratio well below 1) are copies, not new people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

THUMB_SIDE = 16  # divides every image size poseguide trains at (multiples of 32), so pooling is exact
CHUNK = 256  # training images read and compared at a time: memory stays a few MB at 128 px
DEFINITION = (
    f"RMS difference (RGB in [0, 1]) between {THUMB_SIDE}x{THUMB_SIDE} area-averaged thumbnails of the image "
    "(composited on the dataset background) and of its nearest training image"
)


@dataclass
class Nearest:
    """For each query image: its distance to the nearest reference, that reference's row, and
    whether the reference matched as its mirror image."""

    distance: np.ndarray  # (N,) float64
    index: np.ndarray  # (N,) int64, a row of `references` (or of `rows` when given)
    mirrored: np.ndarray  # (N,) bool


def thumbnails(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 (N, S, S, 3) -> (N, 3 * THUMB_SIDE**2) float64 thumbnails in [0, 1] (float64 so
    that distances between near copies are not lost in rounding)."""
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).permute(0, 3, 1, 2).float()
    return F.adaptive_avg_pool2d(x, THUMB_SIDE).flatten(1).double() / 255.0


def nearest_images(queries: np.ndarray, references, rows: np.ndarray | None = None, mirror: bool = False,
                   chunk: int = CHUNK) -> Nearest:
    """Each query's nearest reference image by thumbnail RMS distance.

    `references` is any (M, S, S, 3) uint8 array, e.g. a dataset's memory-mapped images.npy, read
    `chunk` rows at a time; `rows` limits the search to those rows (the training split). With
    `mirror`, each reference also counts as its left-right mirror image, as a model trained with
    flip augmentation has seen it.
    """
    q = thumbnails(queries)
    rows = np.arange(len(references)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        raise ValueError("no reference images to compare with")
    best = torch.full((len(q),), float("inf"), dtype=torch.float64)
    index = np.zeros(len(q), dtype=np.int64)
    mirrored = np.zeros(len(q), dtype=bool)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        refs = thumbnails(np.asarray(references[part]))
        candidates = [(refs, False)]
        if mirror:
            flipped = refs.view(len(part), 3, THUMB_SIDE, THUMB_SIDE).flip(-1).flatten(1)
            candidates.append((flipped, True))
        for r, is_mirror in candidates:
            arg = torch.cdist(q, r).argmin(dim=1)
            dist = (q - r[arg]).norm(dim=1)  # exactly, without cdist's cancellation: a copy is at 0
            better = dist < best
            best = torch.where(better, dist, best)
            keep = better.numpy()
            index[keep] = part[arg.numpy()[keep]]
            mirrored[keep] = is_mirror
    distance = (best / q.shape[1] ** 0.5).numpy()
    return Nearest(distance=distance, index=index, mirrored=mirrored)


def summary(distances: np.ndarray) -> dict[str, float]:
    """The report's numbers for one set: median, 5th percentile and minimum distance, and the count."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0:
        return {"median": float("nan"), "p5": float("nan"), "min": float("nan"), "n": 0}
    return {"median": float(np.median(d)), "p5": float(np.percentile(d, 5)), "min": float(d.min()), "n": int(d.size)}
