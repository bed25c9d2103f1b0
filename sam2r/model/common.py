"""Small building blocks shared by the modules: LayerNorm2d, Linear, MLP and multi-head attention.

Attention always goes through `F.scaled_dot_product_attention`; every attention in SAM 2 is
batch-first `(B, N, C)` and the head split/merge happens in one place (`split_heads`/`merge_heads`).

`Linear` is `nn.Linear` (same parameters, same state-dict keys) whose float32 inference on an x86
CPU runs through oneDNN's linear, which ships inside every x86 torch wheel (AVX2 or better), and
fuses the following ReLU or GELU into the same pass. How much faster than `F.linear` (MKL's
sgemm plus a separate pass to broadcast the bias) depends on the CPU: 1.2-1.5x per GEMM on the
AMD Zen 4 of earlier benchmarks; on an Intel Xeon about even per GEMM, and 0.90x (AVX-512) /
1.00x (AVX2) the time of the whole image encoder. It also carries the folded memory
cross-attention (`memory_attention.py`), which is where the video path gains most (0.76-0.82x
the memory attention's time on that Xeon, with either instruction set). Timing single GEMMs
at start-up to choose was tried and rejected: they measure 0.94-1.0x there and would have
switched off a path that wins 10-24% in the model. The numbers differ from `F.linear` only by
summation order (~1e-7 relative). Training (anything that needs a gradient), autocast, other
devices and small inputs take `F.linear`; `SAM2R_ONEDNN=0` turns the fast path off
everywhere.

oneDNN reorders a plain weight into its blocked GEMM layout inside every call. `pack_weights`
marks a model's layers to keep that reordered copy between calls instead (5-10% faster GEMMs,
the same numbers (bit for bit on the CPUs we measured, AVX2 and AVX-512), one more copy of the
weights in memory); the video predictor does it on the CPU, where the same layers run on every
frame.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary


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


# below this many rows oneDNN's per-call set-up costs more than its faster kernel saves
_ONEDNN_MIN_ROWS = 256


@functools.cache
def _onednn_linear_available() -> bool:
    """oneDNN's fused linear exists in this torch and the CPU is x86 (AVX2 or better)."""
    if os.environ.get("SAM2R_ONEDNN", "1") == "0":
        return False
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    )


def use_onednn(x: Tensor, weight: Tensor) -> bool:
    """x @ weight.T should go through oneDNN: float32 CPU inference of at least
    `_ONEDNN_MIN_ROWS` rows, no autocast, not being traced or compiled, and oneDNN usable here
    (see the module docstring)."""
    # a traced or compiled graph gets the portable op (the compiler picks its own kernels);
    # asked first, so that the compiler never looks at the checks below
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.is_autocast_enabled("cpu")
        and x.numel() >= _ONEDNN_MIN_ROWS * x.shape[-1]
        and torch.backends.mkldnn.enabled
        and _onednn_linear_available()
    )


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None, act: str = "none") -> Tensor:
    """act(x @ weight.T + bias) in one oneDNN call (the one place that calls its private op);
    act one of "none", "relu", "gelu" (exact erf)."""
    algorithm = "none" if act == "gelu" else ""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, act, [], algorithm)


def param_state(*tensors: Tensor) -> tuple[int, ...]:
    """What identifies the contents of these tensors for a cache of values derived from them:
    each one's version counter (bumped by every in-place change: an optimizer step,
    `load_state_dict`) and storage (replaced by `.to()`, `.data =`)."""
    return tuple(v for t in tensors for v in (t._version, t.data_ptr()))


# a packing layer's weight -> (`param_state` of it, the packed copy); weak, so that a
# dropped model takes its packed copies with it, and nothing is added to the modules' state
# (keyed by identity: a tensor's == is elementwise)
_PACKED = WeakIdKeyDictionary()
# the row count oneDNN is told to pack for (any count works; this is the typical one)
_PACK_ROWS = 4096


def pack_weights(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Make the oneDNN layers of `module` (`Linear`, and 1x1 convs run through `conv1x1`) keep
    their weights packed between inference calls, or stop (`enabled=False`, packed copies freed).

    The packed copy is remade when the weight changes (an optimizer step, `load_state_dict`),
    and is never saved or copied with the module. Returns `module`.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)):
            m.pack_weight = bool(enabled)
            if not enabled:
                _PACKED.pop(m.weight, None)
    return module


def _onednn_weight(layer: nn.Module, weight: Tensor) -> Tensor:
    """`weight` (layer.weight or a view of it), oneDNN-packed when the layer keeps it packed."""
    if not getattr(layer, "pack_weight", False):
        return weight
    param = layer.weight
    key = param_state(param)
    hit = _PACKED.get(param)
    if hit is None or hit[0] != key:
        hit = (key, onednn_pack(weight.detach(), _PACK_ROWS))
        _PACKED[param] = hit
    return hit[1]


def linear(x: Tensor, layer: nn.Linear, act: str = "none") -> Tensor:
    """`act(layer(x))` for x (..., in_features), act one of "none", "relu", "gelu" (exact erf).

    Large float32 inputs on an x86 CPU without autograd go through oneDNN with the bias and the
    activation fused; everything else through `F.linear`.
    """
    if use_onednn(x, layer.weight):
        return _onednn_linear(x, _onednn_weight(layer, layer.weight), layer.bias, act)
    y = F.linear(x, layer.weight, layer.bias)
    if act == "relu":
        return F.relu(y)
    if act == "gelu":
        return F.gelu(y)
    return y


def onednn_pack(b: Tensor, rows: int) -> Tensor:
    """b (N, K) reordered into oneDNN's GEMM layout for products with `rows`-row inputs.

    A right-hand side used by many `onednn_matmul_t` calls is packed once here instead of
    being reordered inside every call (for the 20k x 256 keys of a memory read, 1.2-1.6x faster).
    """
    return torch.ops.mkldnn._reorder_linear_weight(b.contiguous(), rows)


def onednn_matmul_t(a: Tensor, b: Tensor) -> Tensor:
    """a @ b.T through oneDNN, for a (..., K) and b (N, K) (or `onednn_pack(b)`); only where
    `use_onednn(a, b)`."""
    return _onednn_linear(a, b, None)


def conv1x1(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """`conv(x)` for a 1x1 convolution, x (B, C, H, W); with oneDNN (see `linear`) it runs as a
    linear layer over the channels-last pixels and returns a channels-last (B, C', H, W) view."""
    x_cl = x.permute(0, 2, 3, 1)  # (B, H, W, C), free when x is channels-last already
    w = conv.weight.view(conv.out_channels, conv.in_channels)
    if not use_onednn(x_cl, w):
        return conv(x)
    return _onednn_linear(x_cl, _onednn_weight(conv, w), conv.bias).permute(0, 3, 1, 2)


class Linear(nn.Linear):
    """`nn.Linear` whose large CPU inference inputs run through oneDNN (see `linear`)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self)


def fusable_activation(act: nn.Module) -> str | None:
    """The `linear` name of an activation module it can fuse ("relu", "gelu"), else None."""
    if type(act) is nn.ReLU:
        return "relu"
    if type(act) is nn.GELU and act.approximate == "none":
        return "gelu"
    return None


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
        self.layers = nn.ModuleList(Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        fused = fusable_activation(self.act)
        for i, layer in enumerate(self.layers):
            if i < last and fused is not None:
                x = linear(x, layer, fused)
            else:
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
        self.q_proj = Linear(embedding_dim, self.internal_dim)
        self.k_proj = Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = Linear(self.internal_dim, embedding_dim)
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
