"""Nearest training image: does a model trained on few photos copy its training set?

Each image is reduced to a small thumbnail (area-averaged RGB, THUMB_SIDE x THUMB_SIDE, in
[0, 1]); the distance between two images is the RMS difference of their thumbnails. The
thumbnail keeps what makes two pictures "the same picture" (the silhouette, the pose, the
colours of clothes, skin and hair, on the dataset's constant background) and drops the fine
detail a VAE blurs away, so a blurred copy of a training image still lands next to it. It needs
no pretrained weights, and searching a few thousand training images for a few hundred images
takes about a second on two CPU cores (benchmarks/bench_nearest.py).

The distances mean something only beside a scale: real held-out images of the same dataset
against the same training set. Generated samples much nearer to the training set than held-out
real images are (a ratio well below 1) are copies, not new people.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

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

    def split(self, sizes: list[int]) -> list["Nearest"]:
        """One Nearest per consecutive group of `sizes` queries: several sets of images searched
        in one pass, so the references are read and reduced once."""
        cuts = np.cumsum(sizes)[:-1]
        columns = (np.split(a, cuts) for a in (self.distance, self.index, self.mirrored))
        return [Nearest(*parts) for parts in zip(*columns)]


def thumbnails(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 (N, S, S, 3) -> (N, 3 * THUMB_SIDE**2) float64 thumbnails in [0, 1]. OpenCV's
    INTER_AREA on float32 averages whole blocks exactly, several times faster than torch's pooling
    on a CPU; float64, so distances between near copies are not lost in rounding."""
    side = (THUMB_SIDE, THUMB_SIDE)
    thumbs = [cv2.resize(image.astype(np.float32), side, interpolation=cv2.INTER_AREA) for image in images]
    out = np.stack(thumbs).reshape(len(images), -1) if thumbs else np.zeros((0, 3 * THUMB_SIDE**2))
    return torch.from_numpy(out).double() / 255.0


def nearest_images(queries: np.ndarray, references, rows: np.ndarray | None = None, mirror: bool = False,
                   chunk: int = CHUNK) -> Nearest:
    """Each query's nearest reference image by thumbnail RMS distance.

    `references` is any (M, S, S, 3) uint8 array, e.g. a dataset's memory-mapped images.npy, read
    `chunk` rows at a time; `rows` limits the search to those rows (the training split). With
    `mirror`, each reference also counts as its left-right mirror image, as a model trained with
    flip augmentation has seen it.
    """
    q = thumbnails(queries)
    q_sq = (q * q).sum(1, keepdim=True)
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
            flipped = refs.view(len(part), THUMB_SIDE, THUMB_SIDE, 3).flip(2).flatten(1)
            candidates.append((flipped, True))
        for r, is_mirror in candidates:
            arg = torch.addmm(q_sq + (r * r).sum(1), q, r.T, alpha=-2.0).argmin(dim=1)  # squared distances
            dist = (q - r[arg]).norm(dim=1)  # exactly, without the expansion's cancellation: a copy is at 0
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
