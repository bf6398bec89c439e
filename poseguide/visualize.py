"""Drawings shared by every report: skeletons over images, mask overlays, captioned grids.

Everything takes and returns RGB uint8 arrays (H, W, 3) and poses as (33, 4) arrays
normalised to the image they are drawn on, so prepare's contact sheet, training sample
grids, generation sheets and evaluation reports all look the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from poseguide import atomicfile, landmarks as lm
from poseguide.coverage import BODY, spread_map
from poseguide.datasetdir import IMAGES, LANDMARKS, MASKS, read_samples

LEFT_COLOUR = (255, 140, 0)  # orange: the person's left side
RIGHT_COLOUR = (0, 160, 255)  # blue: the person's right side
CENTRE_COLOUR = (60, 220, 60)  # green: face and the lines that cross the body
MASK_COLOUR = (255, 0, 200)


def _side(i: int) -> int:
    """-1 right, 0 centre, 1 left, by MediaPipe name."""
    name = lm.NAMES[i]
    if name.startswith("left_") or name == "mouth_left":
        return 1
    if name.startswith("right_") or name == "mouth_right":
        return -1
    return 0


def _edge_colour(a: int, b: int) -> tuple[int, int, int]:
    sa, sb = _side(a), _side(b)
    if a in lm.FACE_LANDMARKS and b in lm.FACE_LANDMARKS:
        return CENTRE_COLOUR
    if sa == sb == 1:
        return LEFT_COLOUR
    if sa == sb == -1:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def to_rgb_uint8(image, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """A model image (torch tensor or array, (3, H, W) or (H, W, 3), floats in `value_range`,
    or already uint8) -> (H, W, 3) uint8, ready for draw_skeleton / make_grid."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        lo, hi = value_range
        arr = np.clip((arr.astype(np.float32) - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def draw_skeleton(
    image: np.ndarray,
    landmarks: np.ndarray,
    threshold: float = lm.DEFAULT_VISIBILITY_THRESHOLD,
    thickness: int | None = None,
    face: bool = True,
) -> np.ndarray:
    """A copy of `image` with the pose's skeleton: left limbs orange, right blue, centre green.

    Joints below `threshold` visibility (and the edges touching them) are not drawn.
    Lines are anti-aliased and scale with the image.
    """
    out = np.ascontiguousarray(image.copy())
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    height, width = out.shape[:2]
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (lm.NUM_LANDMARKS, 4):
        raise ValueError(f"expected landmarks of shape (33, 4), got {pts.shape}")
    thickness = thickness or max(1, round(min(height, width) / 96))
    shift = 4  # sub-pixel precision for cv2 drawing
    xy = np.round(pts[:, :2] * np.array([width, height]) * (1 << shift)).astype(np.int64)
    visible = (pts[:, 3] >= threshold) & np.isfinite(pts[:, :2]).all(axis=1)
    for a, b in lm.SKELETON_EDGES:
        if not (visible[a] and visible[b]) or (not face and (a in lm.FACE_LANDMARKS or b in lm.FACE_LANDMARKS)):
            continue
        cv2.line(out, tuple(map(int, xy[a])), tuple(map(int, xy[b])), _edge_colour(a, b), thickness, cv2.LINE_AA, shift)
    radius = max(1, thickness)
    for i in range(lm.NUM_LANDMARKS):
        if not visible[i] or (not face and i in lm.FACE_LANDMARKS and i != 0):
            continue
        colour = {1: LEFT_COLOUR, -1: RIGHT_COLOUR, 0: CENTRE_COLOUR}[_side(i)]
        cv2.circle(out, tuple(map(int, xy[i])), radius << shift, colour, -1, cv2.LINE_AA, shift)
    return out


def overlay_mask(
    image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = MASK_COLOUR, alpha: float = 0.2, outline: bool = True
) -> np.ndarray:
    """Tint the mask's area (mask uint8 0..255 or float 0..1) and outline its edge."""
    m = np.asarray(mask, dtype=np.float32)
    if m.max(initial=0.0) > 1.0:
        m = m / 255.0
    if m.shape != image.shape[:2]:
        m = cv2.resize(m, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    tint = m[..., None] * alpha
    out = image.astype(np.float32) * (1 - tint) + np.asarray(colour, np.float32) * tint
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if outline:
        binary = (m >= 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, colour, 1, cv2.LINE_AA)
    return out


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def add_caption(image: np.ndarray, text: str, height: int | None = None) -> np.ndarray:
    """The image with a caption strip below it (text shrunk to fit one line)."""
    h, w = image.shape[:2]
    height = height or max(12, min(24, w // 8))
    canvas = Image.new("RGB", (w, h + height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.ascontiguousarray(image[..., :3])), (0, 0))
    draw = ImageDraw.Draw(canvas)
    size = height - 3
    font = _font(size)
    while size > 6 and draw.textlength(text, font=font) > w - 2:
        size -= 1
        font = _font(size)
    draw.text((1, h + 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def make_grid(
    images: Sequence[np.ndarray],
    ncol: int | None = None,
    captions: Sequence[str] | None = None,
    padding: int = 2,
    pad_value: int = 255,
) -> np.ndarray:
    """Tile RGB uint8 images (all the same size) into one image, with optional captions.

    The layout of torchvision.utils.make_grid (`padding` px around and between tiles, `ncol`
    per row), in numpy: importing torchvision pulls in torch._dynamo, over a second of a
    one-image `generate`.
    """
    if len(images) == 0:
        raise ValueError("make_grid needs at least one image")
    tiles = [add_caption(im, c) for im, c in zip(images, captions)] if captions else list(images)
    shapes = {t.shape for t in tiles}
    if len(shapes) != 1:
        raise ValueError(f"make_grid needs images of one size, got {sorted(shapes)}")
    if len(tiles) == 1:
        return np.ascontiguousarray(tiles[0])  # as torchvision: one image comes back unpadded
    ncol = min(ncol or int(np.ceil(np.sqrt(len(tiles)))), len(tiles))
    nrow = int(np.ceil(len(tiles) / ncol))
    h, w = tiles[0].shape[:2]
    step_y, step_x = h + padding, w + padding
    grid = np.full((nrow * step_y + padding, ncol * step_x + padding, 3), pad_value, np.uint8)
    for i, tile in enumerate(tiles):
        y, x = divmod(i, ncol)
        grid[y * step_y + padding : y * step_y + padding + h, x * step_x + padding : x * step_x + padding + w] = tile
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB uint8 image as PNG atomically (a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomicfile.atomic_write(path, "wb") as f:
        Image.fromarray(np.ascontiguousarray(image)).save(f, format="PNG")
    return path


def sample_panel(image: np.ndarray, mask: np.ndarray | None, landmarks: np.ndarray | None, scale: int = 1) -> np.ndarray:
    """One dataset sample as shown on contact sheets: mask outline and tint, then the skeleton."""
    out = image
    if scale > 1:
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if mask is not None:
        out = overlay_mask(out, mask)
    if landmarks is not None:
        out = draw_skeleton(out, landmarks)
    return out


def dataset_contact_sheet(
    data_dir: str | os.PathLike, output: str | os.PathLike, num: int = 64, split: str = "all", seed: int = 0
) -> int:
    """Write a contact sheet of `num` samples (evenly spread, so it covers the whole set).

    Each tile shows the sample with its mask and skeleton, captioned with its source
    frame and split. Returns the number of samples drawn.
    """
    from poseguide.prepare import PrepareError, load_manifest  # here: prepare imports this module

    data_dir = Path(data_dir)
    load_manifest(data_dir)
    rows = read_samples(data_dir)
    indices = [i for i, r in enumerate(rows) if split == "all" or r["split"] == split]
    if not indices:
        raise PrepareError(f"{data_dir} has no {split} samples")
    if len(indices) > num:
        rng = np.random.default_rng(seed)
        offset = rng.uniform(0, len(indices) / num)
        indices = [indices[int(offset + k * len(indices) / num)] for k in range(num)]
    images = np.load(data_dir / IMAGES, mmap_mode="r")
    masks = np.load(data_dir / MASKS, mmap_mode="r")
    poses = np.load(data_dir / LANDMARKS, mmap_mode="r")
    size = images.shape[1]
    scale = max(1, 128 // size)
    tiles, captions = [], []
    for i in indices:
        tiles.append(sample_panel(np.asarray(images[i]), np.asarray(masks[i]), np.asarray(poses[i]), scale))
        r = rows[i]
        captions.append(f"{Path(r['source']).stem[:14]} f{r['frame']} {r['split']}")
    save_png(make_grid(tiles, captions=captions), output)
    return len(indices)


def people_sheet(data_dir: str | os.PathLike, output: str | os.PathLike, num: int = 64) -> int:
    """One tile per person tracked through the videos (most frames first), captioned with the
    track number that `prepare --track` takes. Returns the number of tiles."""
    from poseguide.prepare import PrepareError, load_manifest

    data_dir = Path(data_dir)
    load_manifest(data_dir)
    rows = read_samples(data_dir)
    if rows and "track" not in rows[0]:
        raise PrepareError(f"{data_dir} was prepared before people were tracked; run the same `poseguide prepare` "
                           "command again to add the tracks (it redoes only the last step)")
    members: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        track = int(r.get("track") or -1)
        if track >= 0:
            members.setdefault(track, []).append(i)
    if not members:
        raise PrepareError(f"{data_dir} has no tracked people: people are tracked in videos only")
    order = sorted(members, key=lambda t: (-len(members[t]), t))[:num]
    images = np.load(data_dir / IMAGES, mmap_mode="r")
    tiles = [np.asarray(images[members[t][len(members[t]) // 2]]) for t in order]
    scale = max(1, 128 // tiles[0].shape[0])
    if scale > 1:
        tiles = [cv2.resize(t, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for t in tiles]
    captions = [f"track {t}: {len(members[t])}" for t in order]
    save_png(make_grid(tiles, captions=captions), output)
    return len(order)


def dataset_coverage_picture(data_dir: str | os.PathLike, output: str | os.PathLike, split: str = "all") -> int:
    """Write pose_coverage_picture of a dataset's poses (of one split, or all); returns how many."""
    rows = read_samples(data_dir)
    keep = np.asarray([split == "all" or r["split"] == split for r in rows], dtype=bool)
    poses = np.load(Path(data_dir) / LANDMARKS, mmap_mode="r")[: len(keep)][keep]
    save_png(pose_coverage_picture(poses, split="" if split == "all" else split), output)
    return int(keep.sum())


def pose_coverage_picture(poses: np.ndarray, size: int = 256, split: str = "train") -> np.ndarray:
    """Where each body joint lay across a set of (N, 33, 4) crop-coordinate poses: a heat map
    per joint in the skeleton's side colours (left orange, right blue, centre green), with the
    median pose drawn over it. A pose a user asks for that leaves these clouds is one the
    model has not seen (poseguide.coverage)."""
    poses = np.asarray(poses, dtype=np.float32)
    maps = spread_map(poses, size)
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    blur = max(1, size // 64) * 2 + 1
    for joint, density in zip(BODY, maps):
        density = cv2.GaussianBlur(density, (blur, blur), 0)
        if density.max() > 0:
            density = np.log1p(density) / np.log1p(density.max())
        colour = {1: LEFT_COLOUR, -1: RIGHT_COLOUR, 0: CENTRE_COLOUR}[_side(int(joint))]
        canvas += density[..., None] * np.asarray(colour, dtype=np.float32)
    picture = np.clip(canvas, 0, 255).astype(np.uint8)
    if len(poses):
        median = np.median(poses, axis=0)
        median[:, 3] = (poses[:, :, 3] >= lm.DEFAULT_VISIBILITY_THRESHOLD).mean(axis=0)
        picture = draw_skeleton(picture, median)
    return add_caption(picture, f"joints of {len(poses)} {split + ' ' if split else ''}poses; lines: median pose")
