"""Small building blocks shared by the modules: LayerNorm2d, MLP and multi-head attention.

Attention always goes through `F.scaled_dot_product_attention`; every attention in SAM 2 is
batch-first `(B, N, C)` and the head split/merge happens in one place (`split_heads`/`merge_heads`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dim of a `(B, C, H, W)` tensor.

    Args:
        num_channels: C.
        eps: added to the variance.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):
    """`num_layers` Linear layers with an activation between them (not after the last).

    Args:
        input_dim: width of the input.
        hidden_dim: width of the hidden layers.
        output_dim: width of the output.
        num_layers: number of Linear layers (`layers.0` ... `layers.{n-1}`).
        activation: activation module class.
        sigmoid_output: apply a sigmoid to the output.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, C) -> (B, heads, N, C/heads)."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, c) -> (B, N, heads*c)."""
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections and an optional downsampled width.

    Args:
        embedding_dim: width of queries and of the output.
        num_heads: number of heads.
        downsample_rate: the internal width is `embedding_dim // downsample_rate`.
        dropout: attention dropout (training only).
        kv_in_dim: width of keys and values (default: embedding_dim).
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = kv_in_dim if kv_in_dim is not None else embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide the width {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def project(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Project and split heads: (B, N, C) -> (B, heads, N, c)."""
        h = self.num_heads
        return (
            split_heads(self.q_proj(q), h),
            split_heads(self.k_proj(k), h),
            split_heads(self.v_proj(v), h),
        )

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """SDPA on split heads, then merge and project out: -> (B, Nq, embedding_dim)."""
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.out_proj(merge_heads(out))

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """q: (B, Nq, C), k and v: (B, Nk, kv_in_dim) -> (B, Nq, C).

        One side may have batch 1 and be shared by the other side's B sets (many prompts on one
        image): it is then projected once instead of B times, with the same numbers.
        """
        bq, bk = q.shape[0], k.shape[0]
        if bk == 1 and bq > 1:
            # every query attends to the same keys: one batch of B*Nq queries
            out = self.attend(*self.project(q.reshape(1, -1, q.shape[-1]), k, v))
            return out.reshape(bq, -1, out.shape[-1])
        qh, kh, vh = self.project(q, k, v)
        if bq == 1 and bk > 1:
            qh = qh.expand(bk, -1, -1, -1)
        return self.attend(qh, kh, vh)
