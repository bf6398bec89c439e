"""Pose -> condition tensor: Gaussian keypoint heatmaps, limb maps and a "pose present" channel.

Rendered in torch for a whole batch at once, on whatever device the landmarks are on, so
training never draws heatmaps per sample in Python. The maps stay float: storing them as
uint8 collapses each Gaussian to a pixel (PATN's old bug).

Channels: 33 keypoint maps (each weighted by its landmark's visibility), one map per limb
group in `landmarks.LIMB_GROUPS` (each edge weighted by the lower visibility of its two
ends), and one channel that is 1 where a pose is given. The null condition is all zeros,
including that last channel, so "no pose" differs from "every keypoint hidden".

Pixel i covers [i, i + 1) / size in normalised coordinates, so a horizontal mirror of the
maps is exactly the maps of the mirrored pose (x -> 1 - x with left/right swapped).
"""

from __future__ import annotations

import torch

from poseguide.landmarks import FLIP_PERMUTATION, LIMB_FLIP_PERMUTATION, LIMB_GROUPS, NUM_LANDMARKS

NUM_LIMB_GROUPS = len(LIMB_GROUPS)
NUM_CONDITION_CHANNELS = NUM_LANDMARKS + NUM_LIMB_GROUPS + 1
PRESENT_CHANNEL = NUM_CONDITION_CHANNELS - 1

# Heatmap width as a fraction of the image side: 6 px at 256 px, the usual choice.
DEFAULT_SIGMA_FRACTION = 6.0 / 256.0

_EDGES = [edge for group in LIMB_GROUPS.values() for edge in group]
_EDGE_GROUP = torch.tensor([g for g, group in enumerate(LIMB_GROUPS.values()) for _ in group])
# The channel that lands on channel c after a horizontal flip (keypoints, limbs, present).
CHANNEL_FLIP_PERMUTATION: tuple[int, ...] = (
    tuple(FLIP_PERMUTATION)
    + tuple(NUM_LANDMARKS + g for g in LIMB_FLIP_PERMUTATION)
    + (PRESENT_CHANNEL,)
)


def pixel_centres(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return (torch.arange(size, device=device, dtype=dtype) + 0.5) / size


def keypoint_maps(landmarks: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, K, >=2 [+vis]) normalised points -> (B, K, size, size) Gaussians scaled by visibility.

    A 2D Gaussian is the outer product of two 1D ones, which keeps this cheap.
    """
    grid = pixel_centres(size, landmarks.device, landmarks.dtype)
    gx = torch.exp(-((grid[None, None, :] - landmarks[..., 0:1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((grid[None, None, :] - landmarks[..., 1:2]) ** 2) / (2 * sigma**2))
    maps = gy[..., :, None] * gx[..., None, :]
    if landmarks.shape[-1] >= 4:
        maps = maps * landmarks[..., 3, None, None].clamp(0, 1)
    return maps


def limb_maps(landmarks: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, 33, 4) -> (B, groups, size, size): Gaussian of the distance to each skeleton edge,
    weighted by the lower visibility of its ends, max-merged within each limb group.

    Offsets along x and y are kept as (.., 1, S) and (.., S, 1) rows and broadcast, and the
    full-size work is done in place: this is the costly part of rendering a condition.
    """
    grid = pixel_centres(size, landmarks.device, landmarks.dtype)
    edges = torch.tensor(_EDGES, device=landmarks.device)
    a = landmarks[:, edges[:, 0], :2]  # (B, E, 2)
    ab = landmarks[:, edges[:, 1], :2] - a
    abx, aby = ab[..., 0, None, None], ab[..., 1, None, None]
    apx = grid[None, None, None, :] - a[..., 0, None, None]  # (B, E, 1, S)
    apy = grid[None, None, :, None] - a[..., 1, None, None]  # (B, E, S, 1)
    length2 = (ab**2).sum(-1).clamp_min(1e-12)[..., None, None]
    dot = apx * abx + apy * aby  # (B, E, S, S): projection of the pixel on the edge, times |ab|
    t = (dot / length2).clamp_(0, 1)
    # |ap - t ab|^2 = |ap|^2 - t (2 ap.ab - t |ab|^2)
    dist2 = dot.mul_(2).sub_(t * length2).mul_(t).neg_().add_(apx**2 + apy**2)
    maps = dist2.mul_(-1.0 / (2 * sigma**2)).exp_()
    if landmarks.shape[-1] >= 4:
        vis = torch.minimum(landmarks[:, edges[:, 0], 3], landmarks[:, edges[:, 1], 3]).clamp(0, 1)
        maps.mul_(vis[..., None, None])
    batch = landmarks.shape[0]
    groups = torch.zeros(batch, NUM_LIMB_GROUPS, size, size, device=maps.device, dtype=maps.dtype)
    index = _EDGE_GROUP.to(maps.device)[None, :, None, None].expand_as(maps)
    return groups.scatter_reduce_(1, index, maps, reduce="amax", include_self=True)


def render_condition(
    landmarks: torch.Tensor | None,
    size: int,
    present: torch.Tensor | None = None,
    sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
    batch_size: int | None = None,
    device=None,
) -> torch.Tensor:
    """The decoder's and encoder's pose condition, (B, NUM_CONDITION_CHANNELS, size, size), float32.

    landmarks: (B, 33, 3 or 4) normalised to the crop (x, y[, z], visibility) or None for the
    null condition of `batch_size` samples. present: (B,) bool; False rows become the null
    condition (this is how condition dropout is applied).
    """
    if landmarks is None:
        if batch_size is None:
            raise ValueError("render_condition needs batch_size when landmarks is None")
        return torch.zeros(batch_size, NUM_CONDITION_CHANNELS, size, size, device=device)
    landmarks = landmarks.float()
    if landmarks.shape[-1] == 3:  # x, y, visibility
        landmarks = torch.cat([landmarks[..., :2], torch.zeros_like(landmarks[..., :1]), landmarks[..., 2:]], -1)
    sigma = sigma_fraction
    cond = torch.cat(
        [
            keypoint_maps(landmarks, size, sigma),
            limb_maps(landmarks, size, sigma),
            torch.ones(landmarks.shape[0], 1, size, size, device=landmarks.device),
        ],
        dim=1,
    )
    if present is not None:
        cond = cond * present.to(cond.device, cond.dtype)[:, None, None, None]
    return cond


def flip_condition(cond: torch.Tensor) -> torch.Tensor:
    """Mirror a condition tensor left-right, swapping left/right channels: equals the condition
    rendered from the flipped pose."""
    return cond[:, list(CHANNEL_FLIP_PERMUTATION)].flip(-1)
