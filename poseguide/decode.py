"""Robust decoding of user photos and videos into RGB uint8 arrays.

Photos come from anywhere: phones (EXIF orientation), scanners (16-bit, CMYK), web
scrapes (palette PNGs with transparency, files that are not images at all). Every
image leaves here as an (H, W, 3) uint8 RGB array, or a `DecodeError` whose message is
one line saying why, which `prepare` lists in skipped.csv.

Pillow's `LOAD_TRUNCATED_IMAGES` stays False: a truncated JPEG is reported, not
silently padded with grey.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}
)
VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".mts"}
)


class DecodeError(ValueError):
    """A file that cannot be used as an image or video; the message is one line."""


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_media_path(path: str | os.PathLike) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS


def _check_readable(path: Path) -> int:
    """Fail early, with a clear reason, on the problems every decoder reports differently."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DecodeError("no such file") from None
    except OSError as err:
        raise DecodeError(f"cannot stat file ({err.strerror or err.__class__.__name__})") from None
    if path.is_dir():
        raise DecodeError("is a directory")
    if size == 0:
        raise DecodeError("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise DecodeError("permission denied (file is not readable)")
    return size


def decode_image(path: str | os.PathLike, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, upright, with transparency composited on `background`."""
    path = Path(path)
    _check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and ICC chatter; real errors still raise
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                return pil_to_rgb(im, background)
    except DecodeError:
        raise
    except PermissionError:
        raise DecodeError("permission denied (file is not readable)") from None
    except UnidentifiedImageError:
        raise DecodeError("not an image (unrecognised file format)") from None
    except Image.DecompressionBombError as err:
        raise DecodeError(f"image too large ({_first_line(err)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        message = _first_line(err)
        if "truncated" in message.lower() or isinstance(err, EOFError):
            raise DecodeError(f"truncated image ({message})") from None
        raise DecodeError(f"corrupt image data ({message})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__


def pil_to_rgb(im: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB. High bit depths are scaled, not clipped."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if mode == "F":
            peak = 1.0 if arr.size and np.nanmax(arr) <= 1.0 else 255.0
        elif mode == "I" and arr.size and arr.max() <= 255:
            peak = 255.0
        else:
            peak = 65535.0
        grey = np.clip(np.nan_to_num(arr) / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("P", "L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32)
        alpha = rgba[..., 3:4] / 255.0
        bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
        out = rgba[..., :3] * alpha + bg * (1.0 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


@dataclass(frozen=True)
class VideoInfo:
    frame_count: int  # as the container reports it; reading stops at the real end anyway
    fps: float
    width: int
    height: int


def _open_video(path: Path) -> cv2.VideoCapture:
    _check_readable(path)
    try:
        str(path).encode("utf-8")
        cap = cv2.VideoCapture(str(path))
    except UnicodeEncodeError:
        # OpenCV takes names as UTF-8 and crashes (SIGSEGV) on one that is not: open such a
        # file through a link with a plain name. The decoder holds the file once it is open.
        suffix = path.suffix if path.suffix.isascii() and path.suffix.isprintable() else ""
        with tempfile.TemporaryDirectory(prefix="poseguide-video-") as tmp:
            link = os.path.join(tmp, "video" + suffix)
            os.symlink(os.path.abspath(path), link)
            cap = cv2.VideoCapture(link)
    if not cap.isOpened():
        cap.release()
        raise DecodeError("cannot open video (unsupported codec or corrupt file)")
    return cap


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open a video and read its first frame, so an unreadable video fails here with a reason."""
    path = Path(path)
    cap = _open_video(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise DecodeError("video has no readable frames (corrupt or unsupported)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 25.0
        if count <= 0:  # some containers do not say; count by decoding
            count = 1
            while cap.grab():
                count += 1
        return VideoInfo(frame_count=count, fps=fps, width=frame.shape[1], height=frame.shape[0])
    finally:
        cap.release()


def iter_video_frames(
    path: str | os.PathLike, start: int = 0, stop: int | None = None, every: int = 1
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, RGB uint8) for frames start, start+every, ... < stop (None: to the end).

    Seeks to `start` once, then reads sequentially (grab() skips frames without
    colour conversion), so a chunk of a long video costs only its own frames.
    """
    path = Path(path)
    cap = _open_video(path)
    try:
        index = 0
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            index = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES)))
            if index != start:  # container cannot seek exactly: read up to it instead
                cap.release()
                cap = _open_video(path)
                index = 0
                while index < start and cap.grab():
                    index += 1
        while stop is None or index < stop:
            if (index - start) % every == 0:
                ok, frame = cap.read()
                if not ok:
                    return
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif not cap.grab():
                return
            index += 1
    finally:
        cap.release()
