"""A small z-buffer triangle rasteriser in torch, for drawing body meshes on a CPU.

A posed body at a few hundred pixels has tens of thousands of triangles that each cover only
a handful of pixels, so the usual per-triangle scan loop is all Python overhead. Instead every
triangle tests a small square of pixels around it at once (triangles are grouped by the size of
their bounding box, so a 2-pixel triangle tests 4 pixels and not 64), the covered pixels scatter
"depth, triangle" keys into one z-buffer with `scatter_reduce(amin)`, and the winning triangle's
vertex colours are interpolated at each pixel (Gouraud shading). A whole batch of images is one
set of tensor operations.

Coordinates: x, y in pixels (pixel centres at +0.5), y down; z is depth, smaller is nearer.
Triangles facing away from the camera (clockwise on screen) are culled.
"""

from __future__ import annotations

import torch

_DEPTH_STEPS = 1 << 30  # depth quantisation of the z-buffer key
_NO_HIT = torch.iinfo(torch.int64).max


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    colors: torch.Tensor,
    size: int,
    background: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw a batch of meshes.

    vertices (B, V, 3) float: x, y in pixels, z depth; faces (F, 3) long, counter-clockwise on
    screen when facing the camera; colors (B, V, 3) float 0-1 per vertex; background (B, size,
    size, 3) float 0-1. Returns the images (B, size, size, 3) float and the coverage mask
    (B, size, size) bool.
    """
    batch, n_faces = vertices.shape[0], faces.shape[0]
    corners = vertices[:, faces]  # (B, F, 3 corners, 3)
    x, y = corners[..., 0], corners[..., 1]
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (x[..., 2] - x[..., 0]) * (y[..., 1] - y[..., 0])
    # y points down, so a triangle counter-clockwise in the world is clockwise in pixels: keep area < 0.
    b_idx, f_idx = (area < -1e-9).nonzero(as_tuple=True)
    tri, area = corners[b_idx, f_idx], area[b_idx, f_idx]  # (T, 3, 3): the front-facing triangles
    lo_x = torch.ceil(tri[..., 0].amin(-1) - 0.5).clamp(min=0)
    hi_x = torch.floor(tri[..., 0].amax(-1) - 0.5).clamp(max=size - 1)
    lo_y = torch.ceil(tri[..., 1].amin(-1) - 0.5).clamp(min=0)
    hi_y = torch.floor(tri[..., 1].amax(-1) - 0.5).clamp(max=size - 1)
    on_screen = ((hi_x >= lo_x) & (hi_y >= lo_y)).nonzero(as_tuple=True)[0]  # covers a pixel centre
    b_idx, f_idx, tri, area = b_idx[on_screen], f_idx[on_screen], tri[on_screen], area[on_screen]
    lo_x, hi_x, lo_y, hi_y = lo_x[on_screen], hi_x[on_screen], lo_y[on_screen], hi_y[on_screen]
    extent = torch.maximum(hi_x - lo_x, hi_y - lo_y) + 1

    zbuffer = torch.full((batch * size * size,), _NO_HIT, dtype=torch.int64)
    if not len(tri):
        return background.clone(), torch.zeros(batch, size, size, dtype=torch.bool)
    z_all = tri[..., 2]
    z_min, z_max = z_all.amin(), z_all.amax()
    z_scale = (_DEPTH_STEPS - 1) / (z_max - z_min).clamp(min=1e-6)
    side = 1
    while True:  # triangles whose bounding box is up to side x side pixels test that many pixels
        group = ((extent <= side) & (extent > side // 2)).nonzero(as_tuple=True)[0]
        if len(group):
            offsets = torch.arange(side, dtype=vertices.dtype)
            px = (lo_x[group][:, None, None] + offsets[None, None, :]).expand(-1, side, side).reshape(len(group), -1)
            py = (lo_y[group][:, None, None] + offsets[None, :, None]).expand(-1, side, side).reshape(len(group), -1)
            w = _barycentric(tri[group], px + 0.5, py + 0.5, area[group])
            inside = (w >= -1e-6).all(-1) & (px < size) & (py < size)
            t_idx, s_idx = inside.nonzero(as_tuple=True)
            z = (w[t_idx, s_idx] * z_all[group[t_idx]]).sum(-1)
            depth = ((z - z_min) * z_scale).long()
            g = group[t_idx]
            key = depth * (batch * n_faces) + (b_idx[g] * n_faces + f_idx[g])
            pixel = b_idx[g] * size * size + py[t_idx, s_idx].long() * size + px[t_idx, s_idx].long()
            zbuffer.scatter_reduce_(0, pixel, key, reduce="amin")
        if side >= size or not (extent > side).any():
            break
        side *= 2

    hit = zbuffer != _NO_HIT
    pixels = hit.nonzero(as_tuple=True)[0]
    tri_id = zbuffer[pixels] % (batch * n_faces)
    hb, hf = tri_id // n_faces, tri_id % n_faces
    py = ((pixels % (size * size)) // size).to(vertices.dtype)
    px = (pixels % size).to(vertices.dtype)
    w = _barycentric(vertices[hb[:, None], faces[hf]], px[:, None] + 0.5, py[:, None] + 0.5, None)[:, 0]
    w = (w / w.sum(-1, keepdim=True)).clamp(min=0)  # the sum is the triangle's signed area
    w = w / w.sum(-1, keepdim=True).clamp(min=1e-9)
    corner_colors = colors[hb[:, None], faces[hf]]  # (P, 3 corners, 3)
    image = background.reshape(-1, 3).clone()
    image[pixels] = (w[..., None] * corner_colors).sum(1)
    return image.reshape(batch, size, size, 3), hit.reshape(batch, size, size)


def _barycentric(tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor, area: torch.Tensor | None) -> torch.Tensor:
    """Barycentric weights (T, S, 3) of points (px, py) of shape (T, S) in triangles (T, 3, >=2);
    without the triangles' signed `area`, the weights are left unnormalised."""
    x0, y0 = tri[:, 0, 0, None], tri[:, 0, 1, None]
    x1, y1 = tri[:, 1, 0, None], tri[:, 1, 1, None]
    x2, y2 = tri[:, 2, 0, None], tri[:, 2, 1, None]
    w0 = (x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)
    w1 = (x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)
    w2 = (x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)
    w = torch.stack((w0, w1, w2), -1)
    return w if area is None else w / area[:, None, None]
