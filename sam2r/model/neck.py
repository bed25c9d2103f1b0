"""FPN neck and the image encoder (trunk + neck).

The neck projects each Hiera stage to `d_model` channels with a 1x1 conv and adds a top-down
path (nearest x2 upsampling) on the levels listed in `fpn_top_down_levels`. With `scalp=1` the
lowest-resolution level is dropped, leaving three levels: stride 4, 8 and 16.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.config import NeckConfig
from sam2r.model.common import conv1x1
from sam2r.model.hiera import Hiera
from sam2r.model.position import PositionEmbeddingSine


class BackboneOutput(NamedTuple):
    """Image-encoder output, highest resolution first (strides 4, 8, 16 for SAM 2)."""

    features: list[Tensor]  # [(B, C, S/4, S/4), (B, C, S/8, S/8), (B, C, S/16, S/16)]
    pos: list[Tensor]  # sine position encodings of the same shapes


class FpnNeck(nn.Module):
    """Feature pyramid over the trunk stages.

    Args:
        cfg: `NeckConfig`.
    """

    def __init__(self, cfg: NeckConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.d_model = cfg.d_model
        self.position_encoding = PositionEmbeddingSine(cfg.d_model)
        self.convs = nn.ModuleList()
        for dim in cfg.backbone_channel_list:
            seq = nn.Sequential()
            seq.add_module("conv", nn.Conv2d(dim, cfg.d_model, kernel_size=1))
            self.convs.append(seq)
        self.top_down = set(cfg.fpn_top_down_levels)

    def forward(self, xs: list[Tensor]) -> BackboneOutput:
        """xs: trunk stages, highest resolution first."""
        n = len(self.convs) - 1
        out: list[Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):
            lateral = conv1x1(xs[i], self.convs[n - i].conv)
            if i in self.top_down and prev is not None:
                mode = self.cfg.fpn_interp_model
                up = F.interpolate(
                    prev.to(torch.float32),
                    scale_factor=2.0,
                    mode=mode,
                    align_corners=None if mode == "nearest" else False,
                )
                prev = lateral + up
                if self.cfg.fuse_type == "avg":
                    prev = prev / 2
            else:
                prev = lateral
            out[i] = prev
        pos = [self.position_encoding(x) for x in out]
        return BackboneOutput(out, pos)


class ImageEncoder(nn.Module):
    """Hiera trunk + FPN neck, dropping the `scalp` lowest-resolution levels.

    Args:
        trunk: the Hiera trunk.
        neck: the FPN neck.
        scalp: levels to drop.
    """

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if list(trunk.channel_list) != list(neck.cfg.backbone_channel_list):
            raise ValueError(
                f"the neck's backbone_channel_list {list(neck.cfg.backbone_channel_list)} "
                "must equal "
                f"the trunk's stage widths {trunk.channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, x: Tensor) -> BackboneOutput:
        """x: (B, 3, S, S) normalised images."""
        out = self.neck(self.trunk(x))
        if self.scalp > 0:
            out = BackboneOutput(out.features[: -self.scalp], out.pos[: -self.scalp])
        return out
