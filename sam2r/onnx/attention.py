"""Attention exported as ONNX Runtime's fused `com.microsoft.MultiHeadAttention` op.

    with fused_attention():
        torch.onnx.export(...)   # every plain F.scaled_dot_product_attention(q, k, v) call, and
                                 # every `mha_3d` call, becomes one MultiHeadAttention node;
                                 # every `rotary_embedding` one RotaryEmbedding node

The standard export of `F.scaled_dot_product_attention` is MatMul -> Softmax -> MatMul, which
writes the whole (B, heads, Lq, Lk) score matrix: for Hiera's global-attention blocks at 1024 px
that is 4 x 4096 x 4096 floats (256 MB) written and read twice per block, and for the memory
attention's cross-attention 4096 x 28,736 floats (470 MB) per layer with 7 memories and 16
pointers. ONNX Runtime's CPU provider runs `MultiHeadAttention` as one kernel.

Which input layout matters. The op takes the queries as (B, Lq, heads * hd); the keys and values
either the same way (3-D) or split into heads (B, heads, Lk, hd) (4-D). With 3-D keys its CPU
kernel runs a blocked (flash) attention that never writes the score matrix; with 4-D keys it
writes it. Measured on a 2-thread Xeon (AVX-512), one node alone:

    keys (B x Lk, heads)        4-D keys   3-D keys   torch SDPA
    1 x 4096, 4 (global)        127 ms     91 ms      98 ms
    1 x 2304, 4                  39 ms     29 ms      30 ms
    4 x 1024, 4                  28 ms     24 ms      26 ms
    1024 x 64, 1 (windows)       14.6 ms   17.8 ms    16.8 ms
    25 x 196, 4                  7.7 ms    8.3 ms     7.9 ms

so keys of `LONG_KEYS` or more tokens go 3-D and shorter ones 4-D (the layout is fixed when the
graph is traced; the memory attention's key count is dynamic, and always long, so it is 3-D).
The memory attention's cross-attention also keeps sam2r's folding (softmax over the keys mixes
the raw 64-channel memory values; `v_proj` comes after), which the op allows: values may be
narrower than the queries and keys (4096 queries x 28,736 keys, 256-d keys, 64-d values: 275 ms
fused vs 318 ms as MatMul -> Softmax -> MatMul). Its RoPE goes to `com.microsoft.RotaryEmbedding`
(`rotary_embedding`): one pass over the 28,672 x 256 keys instead of the plain form's nine
elementwise passes (the memory attention graph 8% faster with 7 memories and 16 pointers).
The numbers are the same up to summation order.

The op lives in ONNX Runtime's `com.microsoft` domain (its CPU provider has it); a runtime other
than ONNX Runtime may lack it, so `sam2r.onnx.export(..., fused_attention=False)` keeps the plain
ONNX ops.

How: while the context is open, `F.scaled_dot_product_attention` is replaced by a function that
routes plain calls (no mask, no causal flag, no custom scale or dropout, 4-D (B, heads, L, hd)
inputs) through a `torch.autograd.Function` whose `symbolic` emits the node; the number of heads
is read from the traced tensor in Python, since the exporter's shape inference does not know it
when the batch axis is dynamic. `mha_3d` is the same for graphs written with 3-D tensors (the
memory attention's); outside the context it runs the plain math. Eager results are unchanged
(the forwards are the original computations). Other calls keep the standard export. Only the
TorchScript-based exporter (`dynamo=False`, what `sam2r.onnx.export` uses) calls `symbolic`.

What is left to others: the export itself (`sam2r.onnx.exporter`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# keys of at least this many tokens are handed to the op 3-D (its flash kernel); fewer, 4-D
LONG_KEYS = 1024

# True while `fused_attention()` is open (read by graphs written with `mha_3d`)
_ACTIVE = False


def typed(out: Any, like: Any, rank: int) -> Any:
    """Give a contributed op's output `like`'s dtype and a rank of `rank` (sizes unknown): the
    exporter has no shape inference for the `com.microsoft` ops and warns for each node
    otherwise."""
    out.setType(like.type().with_sizes([None] * rank))
    return out


def _heads_to_3d(g: Any, x: Any) -> Any:
    """(B, nh, L, hd) -> (B, L, nh * hd) in the graph."""
    x = g.op("Transpose", x, perm_i=[0, 2, 1, 3])
    return g.op("Reshape", x, g.op("Constant", value_t=torch.tensor([0, 0, -1])))


class _MultiHeadAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(hd)) v for q (B, nh, Lq, hd), k / v (B, nh, Lk, hd) -> (B, nh, Lq, hd),
    exported as one `com.microsoft.MultiHeadAttention` node (keys 3-D when `long_keys`)."""

    @staticmethod
    def forward(
        ctx: Any, q: Tensor, k: Tensor, v: Tensor, sdpa: Any, num_heads: int, long_keys: bool
    ) -> Tensor:
        return sdpa(q, k, v)

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, sdpa: Any, num_heads: int, long_keys: bool) -> Any:
        q3 = _heads_to_3d(g, q)  # (B, Lq, nh * hd)
        if long_keys:
            k, v = _heads_to_3d(g, k), _heads_to_3d(g, v)
        out = typed(
            g.op("com.microsoft::MultiHeadAttention", q3, k, v, num_heads_i=num_heads), q, 3
        )
        shape = g.op("Constant", value_t=torch.tensor([0, 0, num_heads, -1]))
        out = g.op("Reshape", out, shape)  # (B, Lq, nh, hd)
        return g.op("Transpose", out, perm_i=[0, 2, 1, 3])  # (B, nh, Lq, hd)


def _mha_3d_math(q: Tensor, k: Tensor, v: Tensor, num_heads: int) -> Tensor:
    b, n, c = q.shape
    m, cv = k.shape[1], v.shape[2]
    hd, hv = c // num_heads, cv // num_heads
    qh = q.reshape(b, n, num_heads, hd).transpose(1, 2)
    kh = k.reshape(b, m, num_heads, hd).transpose(1, 2)
    vh = v.reshape(b, m, num_heads, hv).transpose(1, 2)
    weights = torch.softmax((qh * hd**-0.5) @ kh.transpose(-1, -2), dim=-1)
    return (weights @ vh).transpose(1, 2).reshape(b, n, cv)


class _MultiHeadAttention3d(torch.autograd.Function):
    """`mha_3d`, exported as one `com.microsoft.MultiHeadAttention` node."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, num_heads: int) -> Tensor:
        return _mha_3d_math(q, k, v, num_heads)

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, num_heads: int) -> Any:
        return typed(
            g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=num_heads), q, 3
        )


def mha_3d(q: Tensor, k: Tensor, v: Tensor, num_heads: int) -> Tensor:
    """softmax(q k^T / sqrt(hd)) v per head on 3-D tensors: q (B, Lq, nh * hd), k (B, Lk, nh * hd),
    v (B, Lk, nh * hv) -> (B, Lq, nh * hv); the values may be narrower than the keys. One fused
    node when exported inside `fused_attention()`, plain ONNX ops otherwise."""
    if _ACTIVE:
        return _MultiHeadAttention3d.apply(q, k, v, num_heads)
    return _mha_3d_math(q, k, v, num_heads)


class _RotaryEmbedding(torch.autograd.Function):
    """`rotate(x)` for x (N, 1, L, d), exported as one `com.microsoft.RotaryEmbedding` node."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, positions: Tensor, cos: Tensor, sin: Tensor, rotate: Any
    ) -> Tensor:
        return rotate(x, cos, sin)

    @staticmethod
    def symbolic(g: Any, x: Any, positions: Any, cos: Any, sin: Any, rotate: Any) -> Any:
        return typed(
            g.op("com.microsoft::RotaryEmbedding", x, positions, cos, sin, interleaved_i=1), x, 4
        )


def rotary_embedding(x: Tensor, cos: Tensor, sin: Tensor, rotate: Any) -> Tensor:
    """RoPE over channel pairs (2i, 2i+1) of x (B, heads, R*L, d) with the angles of L positions
    (cos / sin (L, d/2)), repeated over R frames (R may be a dynamic axis): `rotate(x, cos, sin)`
    in eager mode, one `com.microsoft.RotaryEmbedding` node (a single pass over x, against nine
    elementwise passes of the plain form) when exported inside `fused_attention()`.

    The op reads its tables by a (N, L) position index and refuses sequences longer than the
    table, so x goes to it as (B * heads * R, 1, L, d) with positions 0..L-1 on every row.
    """
    if not _ACTIVE:
        return rotate(x, cos, sin)
    b, h, _, d = x.shape
    n = cos.shape[0]
    rows = x.reshape(-1, 1, n, d)
    positions = torch.arange(n).unsqueeze(0).expand(rows.shape[0], n)
    out = _RotaryEmbedding.apply(rows, positions, cos, sin, rotate)
    return out.reshape(b, h, -1, d)


def fused_active() -> bool:
    """Whether `fused_attention()` is open (graphs choose their attention form by it)."""
    return _ACTIVE


@contextlib.contextmanager
def fused_attention() -> Iterator[None]:
    """Export plain `F.scaled_dot_product_attention` calls and `mha_3d` calls as
    `com.microsoft.MultiHeadAttention` while the context is open (see the module docstring)."""
    sdpa = F.scaled_dot_product_attention

    def routed(
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        **kwargs: Any,
    ) -> Tensor:
        plain = attn_mask is None and dropout_p == 0.0 and not is_causal and scale is None
        if plain and not kwargs and query.dim() == 4 and key.dim() == 4 and value.dim() == 4:
            long_keys = int(key.shape[2]) >= LONG_KEYS
            return _MultiHeadAttention.apply(
                query, key, value, sdpa, int(query.shape[1]), long_keys
            )
        return sdpa(
            query,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            scale=scale,
            **kwargs,
        )

    global _ACTIVE
    F.scaled_dot_product_attention = routed
    _ACTIVE = True
    try:
        yield
    finally:
        _ACTIVE = False
        F.scaled_dot_product_attention = sdpa
