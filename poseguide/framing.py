"""The one person-centred square crop, and the maps between source and crop coordinates.

`prepare` crops training samples with it, `generate` maps a user's pose into the model's
frame with it, and `evaluate` maps poses back with it. Because all three call the same
function, a pose drawn from any photo lands where the training poses did.

The crop is built from the landmarks alone (not the mask), so that a bare keypoints file,
which has no mask, is framed exactly as a training photo was.

Coordinates are continuous: pixel i covers [i, i + 1), and normalised x = pixel x / width,
which is MediaPipe's convention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


class FramingError(ValueError):
    """A pose with too few visible points to place a crop around."""


@dataclass(frozen=True)
class FramingSettings:
    """How tightly a crop frames the person.

    fill: the longer side of the visible landmarks' box, as a fraction of the crop side.
    The margin left over holds the top of the head (landmarks stop at the eyes) and feet.
    """

    fill: float = 0.75
    visibility_threshold: float = 0.5
    min_points: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FramingSettings":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class CropBox:
    """A square in source pixels: [x0, x0 + side) x [y0, y0 + side). It may leave the image."""

    x0: float
    y0: float
    side: float

    def source_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Source pixel coordinates (..., 2) -> crop coordinates normalised to [0, 1]."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - np.array([self.x0, self.y0])) / self.side

    def crop_to_source(self, uv: np.ndarray) -> np.ndarray:
        """Normalised crop coordinates (..., 2) -> source pixel coordinates."""
        uv = np.asarray(uv, dtype=np.float64)
        return uv * self.side + np.array([self.x0, self.y0])

    def affine(self, size: int) -> np.ndarray:
        """The 2x3 matrix cv2.warpAffine needs to resample the source into a size x size crop.

        OpenCV puts pixel centres at integer coordinates, ours at i + 0.5, hence the shifts.
        """
        s = size / self.side
        return np.array(
            [[s, 0.0, (0.5 - self.x0) * s - 0.5], [0.0, s, (0.5 - self.y0) * s - 0.5]],
            dtype=np.float64,
        )

    def as_tuple(self) -> tuple[float, float, float]:
        return (float(self.x0), float(self.y0), float(self.side))


def frame_pose(xy_pixels: np.ndarray, visibility: np.ndarray, settings: FramingSettings = FramingSettings()) -> CropBox:
    """The square crop centred on a pose's visible landmarks, sized so they fill `fill` of it."""
    xy_pixels = np.asarray(xy_pixels, dtype=np.float64)
    visible = np.asarray(visibility) >= settings.visibility_threshold
    if int(visible.sum()) < settings.min_points:
        raise FramingError(
            f"only {int(visible.sum())} landmarks have visibility >= {settings.visibility_threshold}; "
            f"at least {settings.min_points} are needed to frame a person"
        )
    points = xy_pixels[visible]
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) / settings.fill, 1e-6)
    return CropBox(x0=float(centre[0] - side / 2), y0=float(centre[1] - side / 2), side=side)


def pose_to_crop(
    landmarks: np.ndarray, image_size: tuple[int, int], settings: FramingSettings = FramingSettings()
) -> tuple[np.ndarray, CropBox]:
    """A (33, 4) pose normalised to an image of (W, H) -> the same pose in its crop's coordinates.

    z is rescaled with x, since MediaPipe's z uses the same scale as x.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    width, height = image_size
    xy_pixels = landmarks[:, :2] * np.array([width, height])
    box = frame_pose(xy_pixels, landmarks[:, 3], settings)
    return landmarks_source_to_crop(landmarks, image_size, box), box


def landmarks_source_to_crop(landmarks: np.ndarray, image_size: tuple[int, int], box: CropBox) -> np.ndarray:
    """(33, 4) normalised to the source image -> (33, 4) normalised to the crop."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    width, height = image_size
    out = landmarks.copy()
    out[:, :2] = box.source_to_crop(landmarks[:, :2] * np.array([width, height]))
    out[:, 2] = landmarks[:, 2] * width / box.side
    return out.astype(np.float32)


def landmarks_crop_to_source(landmarks: np.ndarray, image_size: tuple[int, int], box: CropBox) -> np.ndarray:
    """(33, 4) normalised to the crop -> (33, 4) normalised to the source image of (W, H)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    width, height = image_size
    out = landmarks.copy()
    out[:, :2] = box.crop_to_source(landmarks[:, :2]) / np.array([width, height])
    out[:, 2] = landmarks[:, 2] * box.side / width
    return out.astype(np.float32)


def crop_image(
    image: np.ndarray,
    box: CropBox,
    size: int,
    border_value: float | tuple[float, ...] = 0,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Resample the box out of an (H, W[, C]) image into size x size; outside the image is `border_value`.

    A large shrink (a phone photo down to 128 px) is first done by an integer factor with
    an area filter, which averages instead of aliasing; the warp then does the rest.
    """
    shrink = int(box.side / size)
    if shrink >= 2 and interpolation != cv2.INTER_NEAREST:
        image, box = _area_shrink(image, box, shrink, border_value)
    return cv2.warpAffine(
        image,
        box.affine(size),
        (size, size),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


def _area_shrink(image: np.ndarray, box: CropBox, k: int, border_value) -> tuple[np.ndarray, CropBox]:
    """Cut the region around the box (padded to a multiple of k) and shrink it exactly k times."""
    height, width = image.shape[:2]
    x0, y0 = int(np.floor(box.x0)) - 1, int(np.floor(box.y0)) - 1
    w = int(np.ceil(box.x0 + box.side)) + 1 - x0
    h = int(np.ceil(box.y0 + box.side)) + 1 - y0
    w, h = w + (-w) % k, h + (-h) % k
    region = image[max(0, y0): max(0, min(height, y0 + h)), max(0, x0): max(0, min(width, x0 + w))]
    pad_top, pad_left = max(0, -y0), max(0, -x0)
    pad_bottom, pad_right = h - pad_top - region.shape[0], w - pad_left - region.shape[1]
    if region.size == 0:
        region = np.full((h, w) + image.shape[2:], border_value, dtype=image.dtype)
    elif pad_top or pad_left or pad_bottom or pad_right:
        region = cv2.copyMakeBorder(
            region, pad_top, pad_bottom, pad_left, pad_right, borderType=cv2.BORDER_CONSTANT, value=border_value
        )
    small = cv2.resize(region, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return small, CropBox(x0=(box.x0 - x0) / k, y0=(box.y0 - y0) / k, side=box.side / k)
