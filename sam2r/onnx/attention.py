"""Attention exported as ONNX Runtime's fused `com.microsoft.MultiHeadAttention` op.

    with fused_attention():
        torch.onnx.export(...)   # every plain F.scaled_dot_product_attention(q, k, v) call
                                 # becomes one MultiHeadAttention node

The standard export of `F.scaled_dot_product_attention` is MatMul -> Softmax -> MatMul, which
writes the whole (B, heads, Lq, Lk) score matrix: for Hiera's global-attention blocks at 1024 px
that is 4 x 4096 x 4096 floats (256 MB) written and read twice per block. ONNX Runtime's CPU
provider runs `MultiHeadAttention` as one kernel, and on sam2.1_hiera_t's image encoder it is
measured 2-3% faster than the three nodes on an idle 2-thread Xeon (1.66 s vs 1.70 s, median of
5, interleaved; ~10% under load from other processes, where the 256 MB score matrices compete for
memory bandwidth; `bench/results/onnx.json`, README "ONNX"), with the same numbers up to
summation order (2.3e-5 max abs vs torch against 2.2e-5 plain; the parity tests' 1e-4 hold).
The exporter uses it on the image encoder only (`FUSED_ATTENTION_GRAPHS`): the memory
attention's 1-head self-attention measured ~6% slower fused (2.30 s vs 2.16 s, 7 memories and
16 pointers, median of 5).

The op lives in ONNX Runtime's `com.microsoft` domain (its CPU provider has it); a runtime other
than ONNX Runtime may lack it, so `sam2r.onnx.export(..., fused_attention=False)` keeps the plain
ONNX ops.

How: while the context is open, `F.scaled_dot_product_attention` is replaced by a function that
routes plain calls (no mask, no causal flag, no custom scale or dropout, 4-D (B, heads, L, hd)
inputs) through a `torch.autograd.Function` whose `symbolic` emits the node; the number of heads
is read from the traced tensor in Python, since the exporter's shape inference does not know it
when the batch axis is dynamic. Eager results are unchanged (its forward is the original SDPA).
Other calls keep the standard export. Only the TorchScript-based exporter (`dynamo=False`, what
`sam2r.onnx.export` uses) calls `symbolic`.

What is left to others: the export itself (`sam2r.onnx.exporter`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class _MultiHeadAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(hd)) v for q (B, nh, Lq, hd), k / v (B, nh, Lk, hd) -> (B, nh, Lq, hd),
    exported as one `com.microsoft.MultiHeadAttention` node."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, sdpa: Any, num_heads: int) -> Tensor:
        return sdpa(q, k, v)

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, sdpa: Any, num_heads: int) -> Any:
        # the op takes the queries as (B, Lq, nh * hd) and keys / values as (B, nh, Lk, hd)
        q3 = g.op("Transpose", q, perm_i=[0, 2, 1, 3])  # (B, Lq, nh, hd)
        q3 = g.op("Reshape", q3, g.op("Constant", value_t=torch.tensor([0, 0, -1])))
        out = g.op("com.microsoft::MultiHeadAttention", q3, k, v, num_heads_i=num_heads)
        shape = g.op("Constant", value_t=torch.tensor([0, 0, num_heads, -1]))
        out = g.op("Reshape", out, shape)  # (B, Lq, nh, hd)
        return g.op("Transpose", out, perm_i=[0, 2, 1, 3])  # (B, nh, Lq, hd)


@contextlib.contextmanager
def fused_attention() -> Iterator[None]:
    """Export plain `F.scaled_dot_product_attention` calls as `com.microsoft.MultiHeadAttention`
    while the context is open (see the module docstring)."""
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
            return _MultiHeadAttention.apply(query, key, value, sdpa, int(query.shape[1]))
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

    F.scaled_dot_product_attention = routed
    try:
        yield
    finally:
        F.scaled_dot_product_attention = sdpa
