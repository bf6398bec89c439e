"""Nearest training image (poseguide/nearest.py) on hand-made cases cut from real video frames.

Distances are checked against block means written out in numpy, never against the function
under test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from poseguide.nearest import THUMB_SIDE, nearest_images, summary

SIZE = 128


@pytest.fixture(scope="module")
def crops(vtest_frames) -> np.ndarray:
    """Twelve real 128 px RGB crops, each from a different place of the scene (the camera stands
    still, so one place in two frames is nearly the same picture) and from one of four frames."""
    out = []
    frames = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in vtest_frames[::4]]
    for i in range(12):
        y, x = divmod(i, 4)
        out.append(frames[i % 4][40 + y * 170 : 40 + y * 170 + SIZE, 20 + x * 185 : 20 + x * 185 + SIZE])
    return np.ascontiguousarray(np.stack(out))


def block_mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS difference of the two images' means over 8x8 pixel blocks (16x16 at 128 px), RGB in [0, 1]."""
    block = SIZE // THUMB_SIDE
    ta, tb = (im.astype(np.float64).reshape(THUMB_SIDE, block, THUMB_SIDE, block, 3).mean((1, 3)) for im in (a, b))
    return float(np.sqrt(np.mean(((ta - tb) / 255.0) ** 2)))


def test_an_exact_copy_is_at_distance_zero_with_its_row(crops):
    refs = crops[:8]
    found = nearest_images(refs[[5, 2]], refs)
    assert found.distance.tolist() == [0.0, 0.0]
    assert found.index.tolist() == [5, 2] and not found.mirrored.any()
    # `rows` limits the search and the index names the row of `references`, not the position in `rows`
    found = nearest_images(crops[[9]], crops, rows=np.array([1, 9, 11]))
    assert found.index.tolist() == [9] and found.distance[0] == 0.0


def test_a_shifted_recoloured_copy_is_nearer_than_an_unrelated_image(crops):
    refs, unrelated = crops[:8], crops[8:]
    copy = np.roll(refs[3], (3, -2), axis=(0, 1)).astype(np.int16)
    copy = np.clip(copy * np.array([1.1, 0.95, 1.0]) + 12, 0, 255).astype(np.uint8)  # warmer and brighter
    assert np.abs(copy.astype(int) - refs[3]).mean() > 10  # far from a pixel copy
    found = nearest_images(np.stack([copy, *unrelated]), refs)
    assert found.index[0] == 3
    assert found.distance[0] < found.distance[1:].min()
    # the distances are the block-mean RMS to the reported rows
    for query, row, dist in zip([copy, *unrelated], found.index, found.distance):
        assert dist == pytest.approx(block_mean_distance(query, refs[row]), rel=1e-6, abs=1e-9)
    # and each really is the nearest of the eight
    for query, dist in zip([copy, *unrelated], found.distance):
        assert dist == pytest.approx(min(block_mean_distance(query, r) for r in refs), rel=1e-6, abs=1e-9)


def test_a_mirror_copy_matches_only_when_training_flipped(crops):
    refs = crops[:8]
    mirror = np.ascontiguousarray(refs[6][:, ::-1])
    plain = nearest_images(mirror[None], refs)
    flipped = nearest_images(mirror[None], refs, mirror=True)
    assert plain.distance[0] > 0.01
    assert flipped.index[0] == 6 and flipped.mirrored[0] and flipped.distance[0] == 0.0
    # an unmirrored copy still matches unmirrored when mirrors are searched too
    again = nearest_images(refs[[1]], refs, mirror=True)
    assert again.index[0] == 1 and not again.mirrored[0] and again.distance[0] == 0.0


def test_chunks_do_not_change_the_answer(crops):
    queries = np.ascontiguousarray(crops[:, ::-1, :])  # upside down: no exact matches anywhere
    one = nearest_images(queries, crops, mirror=True, chunk=1)
    whole = nearest_images(queries, crops, mirror=True, chunk=1000)
    assert one.index.tolist() == whole.index.tolist() and one.mirrored.tolist() == whole.mirrored.tolist()
    np.testing.assert_allclose(one.distance, whole.distance, rtol=1e-12)
    # several sets searched in one pass come apart in order
    first, second = whole.split([5, 7])
    assert second.index.tolist() == whole.index[5:].tolist() and len(first.distance) == 5
    assert second.mirrored.tolist() == whole.mirrored[5:].tolist() and second.distance[0] == whole.distance[5]
    with pytest.raises(ValueError, match="no reference images"):
        nearest_images(queries, crops, rows=np.array([], dtype=np.int64))


def test_summary():
    s = summary(np.array([0.4, 0.1, 0.3, 0.2, 0.5]))
    assert s == {"median": 0.3, "p5": pytest.approx(0.12), "min": 0.1, "n": 5}
    assert summary(np.array([]))["n"] == 0
