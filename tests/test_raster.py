"""The z-buffer rasteriser: coverage, depth order, culling and colour interpolation."""

from __future__ import annotations

import torch

from poseguide.raster import rasterize


def _draw(vertices, faces, colors, size=12):
    return rasterize(torch.tensor([vertices], dtype=torch.float32), torch.tensor(faces),
                     torch.tensor([colors], dtype=torch.float32), size, torch.full((1, size, size, 3), 0.5))


def test_a_square_covers_exactly_its_pixel_centres_and_the_nearer_triangle_wins():
    square = [[2, 2, 1.0], [10, 2, 1.0], [10, 10, 1.0], [2, 10, 1.0]]
    near = [[0, 0, 0.5], [6, 0, 0.5], [0, 6, 0.5]]  # in front of the square's corner
    colors = [[0, 0, 0]] * 4 + [[1, 1, 1]] * 3
    image, hit = _draw(square + near, [[0, 2, 1], [0, 3, 2], [4, 6, 5]], colors)
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[2:10, 2:10] = True  # pixel centres 2.5 .. 9.5
    for y in range(12):
        for x in range(12):
            if x + 0.5 + y + 0.5 <= 6:
                expected[y, x] = True
    assert torch.equal(hit[0], expected)
    assert image[0, 3, 2].tolist() == [1, 1, 1]  # the near triangle over the square
    assert image[0, 8, 8].tolist() == [0, 0, 0]
    assert image[0, 11, 11].tolist() == [0.5, 0.5, 0.5]  # background


def test_triangles_facing_away_are_not_drawn_and_colours_interpolate():
    tri = [[0, 0, 1.0], [12, 0, 1.0], [0, 12, 1.0]]
    colors = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    _, hit = _draw(tri, [[0, 1, 2]], colors)  # counter-clockwise on screen: its back
    assert not hit.any()
    image, hit = _draw(tri, [[0, 2, 1]], colors)
    assert hit[0, 0, 0] and hit[0, 5, 5] and not hit[0, 11, 11]
    pixel = image[0, 2, 4]  # at (4.5, 2.5): weights 5/12, 4.5/12, 2.5/12
    assert torch.allclose(pixel, torch.tensor([5 / 12, 4.5 / 12, 2.5 / 12]), atol=1e-5)
