"""Decoding photos from anywhere into RGB uint8, and the one-line reasons for files that fail."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from poseguide.decode import DecodeError, decode_image, iter_video_frames, probe_video


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif, quality=95)
    out = decode_image(path)
    assert out.shape == (40, 20, 3) and out.dtype == np.uint8
    assert out[5, 10, 0] > 200 and out[5, 10, 2] < 60  # red is now on top
    assert out[35, 10, 2] > 200


def test_rgba_is_composited_on_the_background(tmp_path):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 1] = 255
    arr[:4, :, 3] = 255  # top opaque green, bottom fully transparent
    path = tmp_path / "cutout.png"
    Image.fromarray(arr, "RGBA").save(path)
    out = decode_image(path, background=(10, 20, 30))
    assert out[0, 0].tolist() == [0, 255, 0]
    assert out[7, 7].tolist() == [10, 20, 30]


def test_palette_transparency_and_greyscale(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.info["transparency"] = 0
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    out = decode_image(path, background=(7, 7, 7))
    assert out[0, 0].tolist() == [7, 7, 7] and out[1, 1].tolist() == [0, 0, 255]

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 6), 77, np.uint8), "L").save(grey)
    out = decode_image(grey)
    assert out.shape == (5, 6, 3) and (out == 77).all()


def test_16_bit_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16)).save(path)
    out = decode_image(path)
    assert out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    out = decode_image(path)
    assert out.shape == (16, 16, 3)
    r, g, b = out[8, 8].tolist()
    assert r > 200 and g < 60 and b < 60


def test_bad_files_have_one_line_reasons(tmp_path, vtest_frames):
    data = vtest_frames[0].read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    cases = {truncated: "truncated", empty: "empty file", text: "not an image", tmp_path / "missing.jpg": "no such file"}
    for path, reason in cases.items():
        with pytest.raises(DecodeError, match=reason) as info:
            decode_image(path)
        assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; the CLI test covers this as an unprivileged user")
def test_unreadable_permission(tmp_path, vtest_frames):
    path = tmp_path / "locked.jpg"
    path.write_bytes(vtest_frames[0].read_bytes())
    path.chmod(0)
    with pytest.raises(DecodeError, match="permission denied"):
        decode_image(path)


def _write_video(path, n=12):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()


def test_video_frames_every_k_from_a_chunk(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (12, 64, 48)
    frames = list(iter_video_frames(path, start=3, stop=10, every=2))
    assert [i for i, _ in frames] == [3, 5, 7, 9]
    for i, frame in frames:
        assert frame.shape == (48, 64, 3) and abs(int(frame.mean()) - 20 * i) <= 3
    assert [i for i, _ in iter_video_frames(path, start=10)] == [10, 11]


def test_unreadable_video(tmp_path):
    bad = tmp_path / "broken.avi"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(DecodeError, match="video"):
        probe_video(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        probe_video(empty)
