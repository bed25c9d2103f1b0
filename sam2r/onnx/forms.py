"""Export-time forms of two image-encoder steps that ONNX Runtime runs faster written otherwise.

    with export_forms(fused=True):
        torch.onnx.export(...)

The torch model writes these steps the way its own kernels run them fastest; traced as they are,
ONNX Runtime's CPU provider gets extra memory passes. While the context is open (export only;
the eager results are the same up to summation order):

* Hiera's query / shortcut pooling (`sam2r.model.hiera.pool_channels_last`, a max over s x s
  blocks, written for torch as the maximum of s*s strided views) is traced as one ReduceMax
  over the blocks' two axes, instead of s*s Gather copies and s*s - 1 Max nodes, and without
  the crop to a multiple of the stride when the size already is one.
* with `fused=True`, Hiera's attention over short windows (fewer than `attention.LONG_KEYS`
  tokens, no query pooling) becomes ONNX Runtime's `com.microsoft.Attention`: the qkv projection,
  the head split and the attention in one node, with no Split and Transpose copies of q, k and
  v (1024 windows of 64 tokens, 96 channels, 2 threads: 32 ms vs 59 ms). Global and pooled
  blocks keep `MultiHeadAttention` (`sam2r.onnx.attention`).

sam2.1_hiera_t's image encoder at 1024 px, 2 threads, median of 5 interleaved runs on an idle
Xeon: 1.37 s with the fused MultiHeadAttention alone, 1.38 s with the pooling form, 1.24 s with
both forms. Tried and not kept: linear layers traced as Reshape -> Gemm (bias inside the GEMM)
-> Reshape, to drop the separate bias Add: ONNX Runtime's Gemm ran slower than MatMul + Add
(1.41 s vs 1.37 s; Hiera's stage-1 qkv 66 ms vs 31 + 24 ms).

What is left to others: the export itself (`sam2r.onnx.exporter`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.model import hiera
from sam2r.onnx.attention import LONG_KEYS, typed


def _pool_reduce_max(x: Tensor, pool: nn.MaxPool2d | None) -> Tensor:
    if pool is None:
        return x
    sh, sw = hiera._pair(pool.kernel_size)
    if (sh, sw) != hiera._pair(pool.stride) or hiera._pair(pool.padding) != (0, 0):
        return _ORIGINAL_POOL(x, pool)
    b, h, w, c = (int(d) for d in x.shape)
    if h % sh or w % sw:
        x = x[:, : h // sh * sh, : w // sw * sw]
    return x.reshape(b, h // sh, sh, w // sw, sw, c).amax(dim=(2, 4))


class _Attention(torch.autograd.Function):
    """Multi-head self-attention with the qkv projection: x (B, L, C) -> (B, L, C_out), exported
    as one `com.microsoft.Attention` node."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, num_heads: int) -> Tensor:
        b, n, _ = x.shape
        qkv = F.linear(x, weight, bias).reshape(b, n, 3, num_heads, -1).transpose(1, 3)
        q, k, v = qkv.unbind(2)  # (B, nh, L, hd)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(b, n, -1)

    @staticmethod
    def symbolic(g: Any, x: Any, weight: Any, bias: Any, num_heads: int) -> Any:
        w_t = g.op("Transpose", weight, perm_i=[1, 0])  # (C, 3 C_out), folded by the runtime
        return typed(g.op("com.microsoft::Attention", x, w_t, bias, num_heads_i=num_heads), x, 3)


def _multiscale_attention_forward(self: hiera.MultiScaleAttention, x: Tensor) -> Tensor:
    b, h, w, c = x.shape
    if self.q_pool is not None or h * w >= LONG_KEYS or self.qkv.bias is None:
        return _ORIGINAL_FORWARD(self, x)
    out = _Attention.apply(x.reshape(b, h * w, c), self.qkv.weight, self.qkv.bias, self.num_heads)
    return self.proj(out.reshape(b, h, w, -1))


_ORIGINAL_FORWARD = hiera.MultiScaleAttention.forward
_ORIGINAL_POOL = hiera.pool_channels_last


@contextlib.contextmanager
def export_forms(fused: bool) -> Iterator[None]:
    """Trace the forms above while open (`fused`: also the `com.microsoft.Attention` one)."""
    saved = (hiera.pool_channels_last, hiera.MultiScaleAttention.forward)
    hiera.pool_channels_last = _pool_reduce_max
    if fused:
        hiera.MultiScaleAttention.forward = _multiscale_attention_forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        hiera.pool_channels_last = saved[0]
        hiera.MultiScaleAttention.forward = saved[1]  # type: ignore[method-assign]
