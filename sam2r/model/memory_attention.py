"""Memory attention: the current frame's tokens self-attend, then cross-attend to the memory bank
(spatial memories of past frames + object-pointer tokens), with axial 2-D RoPE on both.

Batch-first throughout: curr (B, HW, C), memory (B, M, mem_dim). Object-pointer tokens sit at the
end of the memory and get no RoPE (`num_k_exclude_rope`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.config import MemoryAttentionConfig
from sam2r.model.common import Attention
from sam2r.model.position import apply_rope, axial_rope_angles


class RoPEAttention(Attention):
    """Attention with axial RoPE on queries and keys.

    Args:
        embedding_dim: query width.
        num_heads: heads.
        rope_theta: RoPE base.
        feat_sizes: default grid (w, h) of the queries.
        rope_k_repeat: keys hold several frames of the query grid; repeat the angles per frame.
        dropout: attention dropout (training only).
        kv_in_dim: key/value width.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        rope_theta: float = 10000.0,
        feat_sizes: tuple[int, int] = (64, 64),
        rope_k_repeat: bool = False,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__(embedding_dim, num_heads, dropout=dropout, kv_in_dim=kv_in_dim)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self.head_dim = self.internal_dim // num_heads
        self._angles: dict[tuple[int, int, torch.device], tuple[Tensor, Tensor]] = {}
        self.feat_sizes = feat_sizes

    def _cos_sin(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        side = int(round(n**0.5))
        key = (side, side, device)
        if key not in self._angles:
            ang = axial_rope_angles(self.head_dim, side, side, self.rope_theta).to(device)
            self._angles[key] = (torch.cos(ang), torch.sin(ang))
        return self._angles[key]

    def forward(self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int = 0) -> Tensor:
        """q (B, HW, C), k/v (B, M, kv_in_dim) -> (B, HW, C)."""
        q, k, v = self.project(q, k, v)
        cos, sin = self._cos_sin(q.shape[-2], q.device)
        q = apply_rope(q, cos, sin)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            if n_rope != q.shape[-2] and not self.rope_k_repeat:
                raise ValueError("keys differ from queries in length but rope_k_repeat is off")
            k_rope = apply_rope(k[:, :, :n_rope], cos, sin)
            k = torch.cat([k_rope, k[:, :, n_rope:]], dim=2) if num_k_exclude_rope else k_rope
        return self.attend(q, k, v)


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: RoPE self-attention, RoPE cross-attention to memory, ReLU MLP.

    Args:
        cfg: `MemoryAttentionConfig`.
    """

    def __init__(self, cfg: MemoryAttentionConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.self_attn = RoPEAttention(
            d, cfg.num_heads, cfg.rope_theta, cfg.feat_sizes, dropout=cfg.dropout
        )
        self.cross_attn_image = RoPEAttention(
            d,
            cfg.num_heads,
            cfg.rope_theta,
            cfg.feat_sizes,
            rope_k_repeat=True,
            dropout=cfg.dropout,
            kv_in_dim=cfg.kv_in_dim,
        )
        self.linear1 = nn.Linear(d, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout_p = cfg.dropout

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout_p, self.training) if self.dropout_p else x

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        query_pos: Tensor,
        pos: Tensor,
        num_k_exclude_rope: int = 0,
    ) -> Tensor:
        """tgt (B, HW, C), memory (B, M, mem_dim), pos (B, M, mem_dim)."""
        x = self.norm1(tgt)
        tgt = tgt + self._drop(self.self_attn(x, x, x))
        x = self.norm2(tgt)
        tgt = tgt + self._drop(
            self.cross_attn_image(x, memory + pos, memory, num_k_exclude_rope=num_k_exclude_rope)
        )
        x = self.norm3(tgt)
        x = self.linear2(self._drop(F.relu(self.linear1(x))))
        return tgt + self._drop(x)


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers and a final LayerNorm.

    Args:
        cfg: `MemoryAttentionConfig`.
    """

    def __init__(self, cfg: MemoryAttentionConfig) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.layers = nn.ModuleList(MemoryAttentionLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self,
        curr: Tensor,
        curr_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> Tensor:
        """curr, curr_pos (B, HW, C); memory, memory_pos (B, M, mem_dim) -> (B, HW, C)."""
        x = curr + 0.1 * curr_pos
        for layer in self.layers:
            x = layer(x, memory, curr_pos, memory_pos, num_k_exclude_rope=num_obj_ptr_tokens)
        return self.norm(x)
