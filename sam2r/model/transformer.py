"""The two-way transformer of the mask decoder: prompt tokens and image tokens attend to each
other (token self-attention, token->image, MLP, image->token), then a final token->image.

`TwoWayTransformer.forward` computes exactly what the official module computes. With
`fold_projections=True` (many prompt sets on one image: the automatic mask generator) the
cross attentions between the few prompt tokens (T ~ 8) and the many image tokens (N = h*w)
fold the image-side projections into the token side, which is the same math in a different
order (float rounding differs at the 1e-6 level) and about half the work:

* token -> image: softmax(Q K^T) V with K = x Wk^T + bk, V = x Wv^T + bv needs two (N, C) x
  (C, D) products per prompt set. Folding Wk into the queries, (Q Wk) x^T (the bk term is
  constant along the softmax axis and cancels), and Wv after the weighted sum, (A x) Wv^T + bv
  (softmax rows sum to 1), leaves two (H*T, C) x (C, N) products;
* image -> token: the queries Q = x Wq^T + bq of the N image tokens and the output projection
  fold into the few keys and values: S = x (Wq^T K^T) + bq K^T and out = A (V Wo^T) + bo.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sam2r.model.common import MLP, Attention


def _split_weight(linear: nn.Linear, heads: int) -> Tensor:
    """(D, C) weight of a projection into D = heads * d -> (heads, d, C)."""
    d_out, c = linear.weight.shape
    return linear.weight.view(heads, d_out // heads, c)


def few_queries_attention(attn: Attention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """`attn(q, k, v)` for few queries (prompt tokens) and many keys (image tokens), with the
    key and value projections folded into the query side.

    Args:
        attn: the attention module (its weights are used).
        q: (B, T, C) queries.
        k: (B, N, C) keys; v: (B, N, C) values.

    Returns:
        (B, T, C), equal to `attn(q, k, v)` up to float rounding.
    """
    b, t, _ = q.shape
    h = attn.num_heads
    wk = _split_weight(attn.k_proj, h)  # (H, d, C)
    wv = _split_weight(attn.v_proj, h)
    d = wk.shape[1]
    qh = attn.q_proj(q).view(b, t, h, d)
    qk = torch.einsum("bthd,hdc->bhtc", qh, wk).reshape(b, h * t, -1)  # (B, H*T, C)
    scores = torch.matmul(qk, k.mT).mul_(1.0 / math.sqrt(d))  # (B, H*T, N)
    weights = torch.softmax(scores, dim=-1)
    ax = torch.matmul(weights, v).view(b, h, t, -1)  # (B, H, T, C)
    out = torch.einsum("bhtc,hdc->bthd", ax, wv) + attn.v_proj.bias.view(h, d)
    return attn.out_proj(out.reshape(b, t, h * d))


def few_keys_attention(
    attn: Attention, q: Tensor, k: Tensor, v: Tensor, residual: Tensor | None = None
) -> Tensor:
    """`attn(q, k, v)` (+ `residual`) for many queries (image tokens) and few keys (prompt
    tokens), with the query and output projections folded into the key and value side.

    Args:
        attn: the attention module.
        q: (B or 1, N, C) queries (batch 1: shared by the B key sets).
        k: (B, T, C) keys; v: (B, T, C) values.
        residual: (B or 1, N, C) added to the output in the same product, or None.

    Returns:
        (B, N, C), equal to `residual + attn(q, k, v)` up to float rounding.
    """
    b, t, _ = k.shape
    h = attn.num_heads
    wq = _split_weight(attn.q_proj, h)  # (H, d, C)
    d = wq.shape[1]
    scale = 1.0 / math.sqrt(d)
    kh = attn.k_proj(k).view(b, t, h, d)
    vh = attn.v_proj(v).view(b, t, h, d)
    # scores as (B, H*T, N): the softmax over each head's T keys then runs over a strided dim
    # with N contiguous, which vectorises (a softmax over a last dim of size T does not)
    m = torch.einsum("bthd,hdc->bhtc", kh, wq).reshape(b, h * t, -1) * scale  # (B, H*T, C)
    bias = torch.einsum("bthd,hd->bht", kh, attn.q_proj.bias.view(h, d)).reshape(b, h * t, 1)
    n = q.shape[1]
    if q.shape[0] == 1 and b > 1:  # one (B*H*T, C) x (C, N) product for all sets
        scores = (m.reshape(b * h * t, -1) @ q[0].mT).view(b, h * t, n)
    else:
        scores = torch.matmul(m, q.mT)
    scores = scores + bias * scale
    weights = torch.softmax(scores.view(b, h, t, n), dim=2).view(b, h * t, n)
    wo = attn.out_proj.weight.view(-1, h, d)  # (C, H, d)
    u = torch.einsum("bthd,chd->bhtc", vh, wo)  # (B, H, T, C)
    # each head's weights sum to 1 over its T keys, so adding bo / H to every row of u adds
    # exactly bo to the output: no separate bias pass over the (B, N, C) result
    u = (u + attn.out_proj.bias / h).reshape(b, h * t, -1)
    if residual is None:
        return torch.matmul(weights.mT, u)
    return torch.baddbmm(residual, weights.mT, u)


class TwoWayAttentionBlock(nn.Module):
    """One two-way block.

    Args:
        embedding_dim: token width.
        num_heads: heads.
        mlp_dim: MLP width.
        attention_downsample_rate: width reduction of the cross attentions.
        skip_first_layer_pe: the first block adds no position encoding to the self-attention.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        query_pe: Tensor,
        key_pe: Tensor,
        fold_projections: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """queries (B, Nq, C) tokens, keys (B or 1, HW, C) image; returns both updated
        ((B, HW, C) keys). `fold_projections`: see the module docstring."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        if fold_projections and keys.shape[0] == queries.shape[0]:
            attn = few_queries_attention(self.cross_attn_token_to_image, q, k, keys)
        else:  # (keys shared by all sets: the projections run once anyway)
            attn = self.cross_attn_token_to_image(q, k, keys)
        queries = self.norm2(queries + attn)
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        if fold_projections:
            keys = few_keys_attention(self.cross_attn_image_to_token, k, q, queries, keys)
        else:
            keys = keys + self.cross_attn_image_to_token(k, q, queries)
        keys = self.norm4(keys)
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of two-way blocks plus a final token->image attention.

    Args:
        depth: number of blocks.
        embedding_dim: token width.
        num_heads: heads.
        mlp_dim: MLP width.
        attention_downsample_rate: width reduction of the cross attentions.
    """

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim,
                num_heads,
                mlp_dim,
                attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image: Tensor, image_pe: Tensor, tokens: Tensor, fold_projections: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Run the blocks.

        Args:
            image: (B, C, h, w) image embedding, or (1, C, h, w) shared by the B token sets.
            image_pe: (1 or B, C, h, w) its position encoding.
            tokens: (B, N, C) output + prompt tokens.
            fold_projections: the reordered cross attentions of the module docstring.

        Returns:
            tokens (B, N, C) and image tokens (B, hw, C).
        """
        keys = image.flatten(2).permute(0, 2, 1)  # (B, hw, C)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        if fold_projections:  # (B, hw, C) results come out contiguous, as the kernels prefer
            keys, key_pe = keys.contiguous(), key_pe.contiguous()
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe, fold_projections)
        q = queries + tokens
        k = keys + key_pe
        if fold_projections and keys.shape[0] == queries.shape[0]:
            attn = few_queries_attention(self.final_attn_token_to_image, q, k, keys)
        else:
            attn = self.final_attn_token_to_image(q, k, keys)
        queries = self.norm_final_attn(queries + attn)
        return queries, keys
