"""Hiera image trunk (the "hieradet" variant of SAM 2): a 4-stage hierarchical ViT with windowed
attention, query pooling at stage transitions, and a few global-attention blocks.

Tensors inside the trunk are channels-last `(B, H, W, C)`; the stage outputs are returned as
`(B, C, H, W)`, one per stage, highest resolution first. The FPN neck lives in `neck.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.config import HieraConfig
from sam2r.model.common import MLP, Linear, param_state


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWin, window, window, C), zero-padding H and W up to a multiple."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)
    return x, (hp, wp)


def window_unpartition(
    x: Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of `window_partition`: (B * nWin, window, window, C) -> (B, H, W, C)."""
    hp, wp = padded_hw
    h, w = hw
    b = x.shape[0] // ((hp // window) * (wp // window))
    x = x.view(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


def pool_channels_last(x: Tensor, pool: nn.MaxPool2d | None) -> Tensor:
    """Apply a max-pooling module to a channels-last (B, H, W, C) tensor.

    Without autograd, a pooling whose kernel equals its stride is an elementwise maximum of the
    s*s strided views of the tensor as it lies in memory: the same values, without
    max_pool2d's layout changes and argmax indices.
    """
    if pool is None:
        return x
    sh, sw = _pair(pool.kernel_size)
    if (
        not (torch.is_grad_enabled() and x.requires_grad)
        and (sh, sw) == _pair(pool.stride)
        and _pair(pool.padding) == (0, 0)
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
    ):
        b, h, w, c = x.shape
        blocks = x[:, : h // sh * sh, : w // sw * sw].reshape(b, h // sh, sh, w // sw, sw, c)
        out = blocks[:, :, 0, :, 0]
        for i in range(sh):
            for j in range(sw):
                if i or j:
                    out = torch.maximum(out, blocks[:, :, i, :, j])
        return out
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class PatchEmbed(nn.Module):
    """7x7 stride-4 conv stem: (B, 3, H, W) -> (B, H/4, W/4, C)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        # a channels-last weight makes the convolution write channels-last output (the same
        # values), so the permute below is a view and the trunk starts on contiguous tokens
        # instead of copying a (B, H/4, W/4, C) tensor out of NCHW order
        p = self.proj
        weight = p.weight.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, weight, p.bias, p.stride, p.padding).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Attention whose queries may be max-pooled (stage transitions), channels-last.

    Args:
        dim: input width.
        dim_out: output width.
        num_heads: heads.
        q_pool: pooling applied to the queries, or None.
    """

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.dim_out = dim_out
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = Linear(dim, dim_out * 3)
        self.proj = Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)  # (B, HW, 3, nh, hd)
        q, k, v = qkv.unbind(2)
        if self.q_pool is not None:
            q = pool_channels_last(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block with optional windowing and query pooling.

    Args:
        dim: input width.
        dim_out: output width (differs from dim at stage transitions).
        num_heads: heads.
        q_stride: query pooling stride, or None.
        window_size: attention window (0 = global attention).
        mlp_ratio: MLP width / dim_out.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        q_stride: tuple[int, int] | None = None,
        window_size: int = 0,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = Linear(dim, dim_out)
        self.drop_path = 0.0

    def _drop_path(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1.0 - self.drop_path
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x  # (B, H, W, C)
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = pool_channels_last(self.proj(x), self.pool)

        window = self.window_size
        h, w = x.shape[1:3]
        if window > 0:
            x, padded = window_partition(x, window)
        x = self.attn(x)
        if self.q_stride and window > 0:
            # the queries were pooled: the windows shrank by the stride
            window = self.window_size // self.q_stride[0]
            h, w = shortcut.shape[1:3]
            padded = (h + (window - h % window) % window, w + (window - w % window) % window)
        if window > 0:
            x = window_unpartition(x, window, padded, (h, w))

        x = shortcut + self._drop_path(x)
        return x + self._drop_path(self.mlp(self.norm2(x)))


class Hiera(nn.Module):
    """The Hiera trunk.

    Args:
        cfg: sizes and windows (`HieraConfig`).
    """

    def __init__(self, cfg: HieraConfig) -> None:
        super().__init__()
        if len(cfg.stages) != len(cfg.window_spec):
            raise ValueError(
                f"Hiera needs one window size per stage: stages={cfg.stages}, "
                f"window_spec={cfg.window_spec}"
            )
        depth = sum(cfg.stages)
        self.stage_ends = [sum(cfg.stages[:i]) - 1 for i in range(1, len(cfg.stages) + 1)]
        q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][: cfg.q_pool]

        dim = cfg.embed_dim
        heads = cfg.num_heads
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *cfg.window_pos_embed_bkg_spatial_size))
        w0 = cfg.window_spec[0]
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, w0, w0))
        self._pe_cache: tuple[tuple, Tensor] | None = None

        dpr = [cfg.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth
        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(depth):
            dim_out = dim
            # The window size lags by one block: the first block of a stage (the one that pools)
            # still uses the previous stage's window size, as in the official trunk.
            window = 0 if i in cfg.global_att_blocks else cfg.window_spec[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(dim * cfg.dim_mul)
                heads = int(heads * cfg.head_mul)
                stage += 1
            block = MultiScaleBlock(
                dim,
                dim_out,
                heads,
                q_stride=tuple(cfg.q_stride) if i in q_pool_blocks else None,
                window_size=window,
            )
            block.drop_path = dpr[i]
            self.blocks.append(block)
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def _pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """Background pos-embed resized to (h, w) plus the tiled window embed: (1, h, w, C).

        Without autograd the result is kept until either parameter changes (a bicubic resize
        per image otherwise).
        """
        key = (hw, param_state(self.pos_embed, self.pos_embed_window))
        grad = torch.is_grad_enabled() and (
            self.pos_embed.requires_grad or self.pos_embed_window.requires_grad
        )
        if not grad and self._pe_cache is not None and self._pe_cache[0] == key:
            return self._pe_cache[1]
        pe = self._compute_pos_embed(hw)
        if not grad:
            self._pe_cache = (key, pe)
        return pe

    def _compute_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        pe = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        win = self.pos_embed_window
        pe = pe + win.tile([a // b for a, b in zip(pe.shape, win.shape, strict=True)])
        return pe.permute(0, 2, 3, 1).contiguous()

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: (B, 3, S, S) -> 4 stage outputs (B, C_i, S/4/2^i, S/4/2^i), i = 0..3."""
        x = self.patch_embed(x)
        x = x + self._pos_embed(x.shape[1:3])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
