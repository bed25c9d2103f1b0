"""Position encodings: 2-D sine (neck, memory encoder), random Fourier (prompt encoder),
1-D sine (object-pointer temporal positions) and axial 2-D RoPE (memory attention).

RoPE here is written with real cos/sin rotations instead of complex tensors: the same numbers,
and it exports to ONNX.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """DETR-style normalised 2-D sine encoding of a feature map.

    Args:
        num_pos_feats: output channels (half for y, half for x).
        temperature: frequency base.
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2 != 0:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        self.num_pos_feats = num_pos_feats // 2
        self.temperature = temperature
        self.scale = 2 * math.pi
        self._cache: dict[tuple[int, int, torch.device], Tensor] = {}

    @torch.no_grad()
    def encode(self, h: int, w: int, device: torch.device) -> Tensor:
        """The (1, C, h, w) encoding of an h x w grid (cached)."""
        key = (h, w, device)
        if key not in self._cache:
            eps = 1e-6
            y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(1, -1, 1)
            x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, 1, -1)
            y = (y / (y[:, -1:, :] + eps) * self.scale).expand(1, h, w)
            x = (x / (x[:, :, -1:] + eps) * self.scale).expand(1, h, w)
            n = self.num_pos_feats
            dim_t = torch.arange(n, dtype=torch.float32, device=device)
            dim_t = self.temperature ** (2 * (dim_t // 2) / n)
            pos_x = x[..., None] / dim_t  # (1, h, w, n)
            pos_y = y[..., None] / dim_t
            pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
            pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
            self._cache[key] = torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
        return self._cache[key]

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, num_pos_feats*2, H, W) in x's dtype."""
        pe = self.encode(x.shape[-2], x.shape[-1], x.device)
        return pe.to(x.dtype).expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier-feature encoding of normalised (x, y) coordinates (SAM's prompt encoder).

    Args:
        num_pos_feats: half the output width.
    """

    def __init__(self, num_pos_feats: int = 64) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _pe_encoding(self, coords: Tensor) -> Tensor:
        """coords in [0, 1], (..., 2) -> (..., 2*num_pos_feats)."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> Tensor:
        """The (C, h, w) encoding of the centres of an h x w grid."""
        h, w = size
        m = self.positional_encoding_gaussian_matrix
        grid = torch.ones((h, w), device=m.device, dtype=m.dtype)
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        return self._pe_encoding(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def forward_with_coords(self, coords: Tensor, image_size: tuple[int, int]) -> Tensor:
        """coords in pixels of an (H, W) image, (B, N, 2) as (x, y) -> (B, N, C)."""
        x = coords[..., 0] / image_size[1]
        y = coords[..., 1] / image_size[0]
        return self._pe_encoding(torch.stack([x, y], dim=-1).to(torch.float))


def get_1d_sine_pe(pos: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """1-D sine encoding of (possibly fractional) positions: (N,) -> (N, dim)."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    pe = pos.unsqueeze(-1) / dim_t
    return torch.cat([pe.sin(), pe.cos()], dim=-1)


def axial_rope_angles(dim: int, end_x: int, end_y: int, theta: float = 10000.0) -> Tensor:
    """Rotation angles of axial 2-D RoPE for an end_x x end_y grid (row-major), (N, dim/2).

    The first dim/4 pairs rotate with the x position, the next dim/4 with the y position.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    t_x = t % end_x
    t_y = torch.div(t, end_x, rounding_mode="floor")
    return torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate consecutive channel pairs of x (..., N, D) by angles with cos/sin (N, D/2).

    When x holds several frames (N = r * len(cos)), the angles repeat for each frame.
    """
    n = x.shape[-2]
    if n != cos.shape[0]:
        r = n // cos.shape[0]
        cos, sin = cos.repeat(r, 1), sin.repeat(r, 1)
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = xf[..., 0], xf[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.flatten(-2).type_as(x)


def apply_rope_(x: Tensor, freqs: Tensor) -> Tensor:
    """`apply_rope` in place, for inference: x (..., R*N, D) float32 whose channel pairs are
    contiguous, freqs (N, D/2) = cos + i*sin. One pass over x, no copies (the angles are
    broadcast over the R frames instead of repeated)."""
    n = freqs.shape[0]
    xc = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # (..., R*N, D/2)
    xc.unflatten(-2, (-1, n)).mul_(freqs)  # (..., R, N, D/2)
    return x
