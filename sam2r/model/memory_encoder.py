"""Memory encoder: fuses a frame's pixel features with its (scaled) mask into a `mem_dim`-channel
memory, plus its sine position encoding. What is stored and read is decided by the predictors.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sam2r.config import MemoryEncoderConfig
from sam2r.model.common import LayerNorm2d, Linear, linear
from sam2r.model.position import PositionEmbeddingSine


class MemoryEncoderOutput(NamedTuple):
    features: Tensor  # (B, mem_dim, h, w)
    pos: Tensor  # (B, mem_dim, h, w)


class MaskDownSampler(nn.Module):
    """Strided convs (each x4 channels) + LayerNorm2d + GELU down to the backbone stride, then a
    1x1 conv to `embed_dim`: (B, 1, S, S) -> (B, embed_dim, S/16, S/16).

    Args:
        embed_dim: output channels.
        kernel_size: conv kernel.
        stride: conv stride.
        padding: conv padding.
        total_stride: overall downsampling factor.
    """

    def __init__(
        self, embed_dim: int, kernel_size: int, stride: int, padding: int, total_stride: int
    ) -> None:
        super().__init__()
        num_layers = int(math.log2(total_stride) // math.log2(stride))
        if stride**num_layers != total_stride:
            raise ValueError(f"total_stride {total_stride} is not a power of stride {stride}")
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(num_layers):
            c_out = c_in * stride**2
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size, stride, padding),
                LayerNorm2d(c_out),
                nn.GELU(),
            ]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm2d, pointwise MLP, layer scale, residual.

    Args:
        dim: channels.
        kernel_size: depthwise kernel.
        padding: depthwise padding.
        layer_scale_init_value: initial layer scale.
    """

    def __init__(
        self, dim: int, kernel_size: int, padding: int, layer_scale_init_value: float
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.gamma * self.pwconv2(linear(y, self.pwconv1, "gelu"))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of CXBlocks."""

    def __init__(self, cfg: MemoryEncoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            CXBlock(
                cfg.in_dim, cfg.fuser_kernel_size, cfg.fuser_padding, cfg.layer_scale_init_value
            )
            for _ in range(cfg.fuser_num_layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Pixel features + mask -> memory features.

    Args:
        cfg: `MemoryEncoderConfig`.
    """

    def __init__(self, cfg: MemoryEncoderConfig) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(
            cfg.in_dim,
            cfg.mask_kernel_size,
            cfg.mask_stride,
            cfg.mask_padding,
            cfg.mask_total_stride,
        )
        self.pix_feat_proj = nn.Conv2d(cfg.in_dim, cfg.in_dim, kernel_size=1)
        self.fuser = Fuser(cfg)
        self.position_encoding = PositionEmbeddingSine(cfg.out_dim)
        self.out_proj: nn.Module = (
            nn.Conv2d(cfg.in_dim, cfg.out_dim, kernel_size=1)
            if cfg.out_dim != cfg.in_dim
            else nn.Identity()
        )

    def forward(self, pix_feat: Tensor, mask: Tensor) -> MemoryEncoderOutput:
        """pix_feat (B, C, h, w), mask (B, 1, S, S) already scaled (no sigmoid applied here)."""
        m = self.mask_downsampler(mask)
        x = self.fuser(self.pix_feat_proj(pix_feat.to(m.device)) + m)
        x = self.out_proj(x)
        return MemoryEncoderOutput(x, self.position_encoding(x))
