"""Memory attention: the current frame's tokens self-attend, then cross-attend to the memory bank
(spatial memories of past frames + object-pointer tokens), with axial 2-D RoPE on both.

Batch-first throughout: curr (B, HW, C), memory (B, M, mem_dim). Object-pointer tokens sit at the
end of the memory and get no RoPE (`num_k_exclude_rope`).

The cross-attention is where a tracked frame spends its time: 4096 queries against up to
7 x 4096 memory tokens at 1024 px. Its values carry no RoPE, so for CPU inference they are not
projected to the attention width first: softmax(Q K^T) (M Wv^T + bv) = (softmax(Q K^T) M) Wv^T
+ bv (each row of the softmax sums to 1), and the weighted sum runs over the memory's 64
channels instead of 256. That takes the attention from 2 x 256 to 256 + 64 multiply-adds per
query-key pair, the same numbers up to float rounding (~1e-7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.config import MemoryAttentionConfig
from sam2r.model.common import (
    Attention,
    Linear,
    linear,
    merge_heads,
    onednn_matmul_t,
    onednn_pack,
    split_heads,
    use_onednn,
)
from sam2r.model.position import apply_rope, apply_rope_, axial_rope_angles

# the folded cross-attention's score block: at most this many bytes, 128 to 512 query rows
_SCORE_BYTES = 64 << 20


def _query_block(num_keys: int) -> int:
    """Query rows per block of `_attend_folded` against `num_keys` keys (a multiple of 64)."""
    rows = _SCORE_BYTES // (4 * max(num_keys, 1)) // 64 * 64
    return max(128, min(512, rows))


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
        self._freqs: dict[tuple[int, torch.device], Tensor] = {}
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
        if self._fold_values(q, v):
            return self._forward_folded(q, k, v, num_k_exclude_rope)
        q, k, v = self.project(q, k, v)
        cos, sin = self._cos_sin(q.shape[-2], q.device)
        q = apply_rope(q, cos, sin)
        n_rope = self._rope_keys(k, q.shape[-2], num_k_exclude_rope)
        if n_rope > 0:
            k_rope = apply_rope(k[:, :, :n_rope], cos, sin)
            k = torch.cat([k_rope, k[:, :, n_rope:]], dim=2) if num_k_exclude_rope else k_rope
        return self.attend(q, k, v)

    def _rope_keys(self, k: Tensor, n: int, num_k_exclude_rope: int) -> int:
        """How many leading keys of k (..., M, d) get RoPE against n queries (the excluded
        ones at the end are pointer tokens)."""
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0 and n_rope != n and not self.rope_k_repeat:
            raise ValueError("keys differ from queries in length but rope_k_repeat is off")
        return n_rope

    def _forward_folded(self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int) -> Tensor:
        """`forward` for CPU inference: RoPE rotates the fresh projections in place (no copies
        of the 20k x 256 keys), and the attention runs over the raw values."""
        h = self.num_heads
        q, k = split_heads(self.q_proj(q), h), split_heads(self.k_proj(k), h)
        n = q.shape[-2]
        key = (n, q.device)
        if key not in self._freqs:
            cos, sin = self._cos_sin(n, q.device)
            self._freqs[key] = torch.complex(cos, sin)
        apply_rope_(q, self._freqs[key])
        n_rope = self._rope_keys(k, n, num_k_exclude_rope)
        if n_rope > 0:
            if n_rope % n:
                raise ValueError(f"{n_rope} RoPE keys are not whole frames of {n} queries")
            apply_rope_(k[:, :, :n_rope], self._freqs[key])
        return self._attend_folded(q, k, v)

    def _fold_values(self, q: Tensor, v: Tensor) -> bool:
        """Attend over the raw values (see the module docstring): CPU inference, values narrower
        than a head, and oneDNN's GEMM (with MKL's the saved work is lost to the extra passes)."""
        return (
            self.kv_in_dim < self.head_dim
            and not (self.training and self.dropout_p > 0)
            and use_onednn(q, self.q_proj.weight)
            and use_onednn(v, self.v_proj.weight)
        )

    def _attend_folded(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax(q k^T / sqrt(d)) v per head, then v_proj and out_proj.

        q (B, heads, N, d) and k (B, heads, M, d) with RoPE applied; v (B, M, kv_in_dim) raw.
        """
        b, h, n, d = q.shape
        q = q * d**-0.5
        wv = self.v_proj.weight.view(h, d, -1)  # (heads, d, kv_in_dim)
        bv = self.v_proj.bias.view(h, d)
        # a block of queries at a time: one GEMM writes its (chunk, M) scores, the softmax and the
        # next GEMM read them back; the keys and values are packed once. The packed keys (M x d,
        # 16 MB for 4 memories) outgrow the caches and are streamed once per block, so blocks
        # are as tall as _SCORE_BYTES of scores allow (512 rows: 4-10% faster than 128 here)
        chunk = _query_block(k.shape[-2])
        out = q.new_empty(b, h, n, d)
        for bi in range(b):
            vt = onednn_pack(v[bi].t(), chunk)  # (kv_in_dim, M)
            for hi in range(h):
                kh = onednn_pack(k[bi, hi], chunk)  # (M, d)
                for i in range(0, n, chunk):
                    weights = torch.softmax(onednn_matmul_t(q[bi, hi, i : i + chunk], kh), -1)
                    mixed = onednn_matmul_t(weights, vt)  # (chunk, kv_in_dim)
                    torch.addmm(bv[hi], mixed, wv[hi].t(), out=out[bi, hi, i : i + chunk])
        return self.out_proj(merge_heads(out))


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
        self.linear1 = Linear(d, cfg.dim_feedforward)
        self.linear2 = Linear(cfg.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout_p = cfg.dropout

    def _drop(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.dropout_p, self.training) if self.dropout_p else x

    def self_attend(self, tgt: Tensor) -> Tensor:
        """The part of the layer that does not read the memory: tgt (B, HW, C) + self-attention."""
        x = self.norm1(tgt)
        return tgt + self._drop(self.self_attn(x, x, x))

    def attend_memory(
        self, tgt: Tensor, memory: Tensor, pos: Tensor, num_k_exclude_rope: int = 0
    ) -> Tensor:
        """The rest of the layer: cross-attention to the memory, then the MLP."""
        x = self.norm2(tgt)
        tgt = tgt + self._drop(
            self.cross_attn_image(x, memory + pos, memory, num_k_exclude_rope=num_k_exclude_rope)
        )
        x = self.norm3(tgt)
        x = self.linear2(self._drop(linear(x, self.linear1, "relu")))
        return tgt + self._drop(x)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        query_pos: Tensor,
        pos: Tensor,
        num_k_exclude_rope: int = 0,
    ) -> Tensor:
        """tgt (B, HW, C), memory (B, M, mem_dim), pos (B, M, mem_dim)."""
        return self.attend_memory(self.self_attend(tgt), memory, pos, num_k_exclude_rope)


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

    def first_self_attention(self, curr: Tensor, curr_pos: Tensor) -> Tensor:
        """What the first layer computes before it reads the memory: (B, HW, C).

        It depends on the frame alone, so the objects tracked on one frame can share it (pass
        it to `forward` as `first`): the official code computes it again for every object.
        """
        return self.layers[0].self_attend(curr + 0.1 * curr_pos)

    def forward(
        self,
        curr: Tensor,
        curr_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_obj_ptr_tokens: int = 0,
        first: Tensor | None = None,
    ) -> Tensor:
        """curr, curr_pos (B, HW, C); memory, memory_pos (B, M, mem_dim) -> (B, HW, C).

        `first`: `first_self_attention(curr, curr_pos)` when already computed (batch B or 1).
        """
        if first is None:
            first = self.first_self_attention(curr, curr_pos)
        x = first.expand(memory.shape[0], -1, -1)
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = layer.self_attend(x)
            x = layer.attend_memory(x, memory, memory_pos, num_obj_ptr_tokens)
        return self.norm(x)
