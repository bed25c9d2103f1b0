"""Deterministic synthetic weights for tests that have no checkpoint (recipe `sam2-synth-v1`).

The parity fixtures in `tests/fixtures/parity/` were produced by the official SAM 2 code loaded
with weights that depend only on each state-dict key, its shape and a global seed. This module
re-creates those weights bit-exactly, so any sam2r model can be loaded with the same numbers and
compared with the fixtures. The recipe is specified in section 1 of the fixtures' README:

* noise: a splitmix64 hash of `(crc32(key) + seed) << 32 | element index`, whose four 16-bit
  words are summed (Irwin-Hall(4)) and rescaled to mean 0, variance 1;
* value: `float32(mean + std * noise)`, all arithmetic in float64, one rounding at the end;
* `(mean, std)` from a short rule table on the key and shape (`weight_rule`).

No `torch.randn` on purpose: its CPU kernel gives different numbers per ATen CPU capability.
What this module leaves to others: building the model (`sam2r.build`) and loading checkpoints.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

RECIPE = "sam2-synth-v1"

# gain of rule "dense" (std = gain / sqrt(fan_in)); first matching pattern wins, default 1.0
_DENSE_GAINS: tuple[tuple[re.Pattern[str], float], ...] = tuple(
    (re.compile(pattern), gain)
    for pattern, gain in (
        (r"conv_s[01]\.weight$", 0.25),  # decoder high-res skips would dominate every mask
        (r"output_upscaling\.[03]\.weight$", 2.0),  # decoder ConvTranspose path
        (r"output_hypernetworks_mlps\.\d+\.layers\.2\.weight$", 3.0),  # mask-logit scale
        (r"cross_attn_image\.(v_proj|out_proj)\.weight$", 2.0),  # memory read-out strength
        (r"mask_downsampler\.", 2.0),  # memory-encoder mask path vs. pixel path
        (r"obj_ptr_proj\.layers\.2\.weight$", 12.0),  # object pointers visible in memory attention
        (r"obj_ptr_tpos_proj\.weight$", 3.0),  # temporal encoding of object pointers (2.1)
    )
)
_EMBEDDING_RE = re.compile(r"(_embed|_token|_tokens|point_embeddings\.\d+)\.weight$")
_OBJ_SCORE_BIAS_RE = re.compile(r"pred_obj_score_head(\.layers\.\d+)?\.bias$")
_LAYER_INDEX_RE = re.compile(r"layers\.(\d+)\.bias$")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def synth_noise(key: str, numel: int, seed: int = 0) -> np.ndarray:
    """The recipe's near-normal noise for one key: float64 array of shape (numel,).

    Mean 0, variance 1, bounded by sqrt(12) = 3.464 (a rescaled Irwin-Hall(4) variable).
    """
    hi = (zlib.crc32(key.encode("utf-8")) + seed) % 2**32
    start = np.uint64(hi << 32)
    with np.errstate(over="ignore"):
        h = _splitmix64(start + np.arange(numel, dtype=np.uint64))
    word = np.uint64(0xFFFF)
    s = (
        (h & word)
        + ((h >> np.uint64(16)) & word)
        + ((h >> np.uint64(32)) & word)
        + (h >> np.uint64(48))
    )  # integers in 0..262140
    return ((s.astype(np.float64) - 131070.0) / 65536.0) * 1.7320508075688772


def last_obj_score_bias_key(keys: Iterable[str]) -> str | None:
    """The bias of the object-score head's last layer (rule `obj_score_bias`, mean +1.0).

    Among keys matching `pred_obj_score_head(.layers.<n>)?.bias`, the one with the largest `<n>`
    (a plain `pred_obj_score_head.bias` counts as -1). None when there is no such key.
    """
    best, best_idx = None, -2
    for key in keys:
        if not _OBJ_SCORE_BIAS_RE.search(key):
            continue
        m = _LAYER_INDEX_RE.search(key)
        idx = int(m.group(1)) if m else -1
        if idx > best_idx:
            best, best_idx = key, idx
    return best


def weight_rule(
    key: str, shape: Sequence[int], obj_score_bias_key: str | None = None
) -> tuple[str, float, float]:
    """`(rule, mean, std)` of one state-dict entry; the first matching rule wins.

    Args:
        key: the state-dict key, e.g. `sam_mask_decoder.iou_token.weight`.
        shape: the tensor's shape.
        obj_score_bias_key: the key that gets mean +1.0 (see `last_obj_score_bias_key`).

    Rule names are those recorded in the fixtures' `state_dict_shapes.json`.
    """
    ndim = len(shape)
    if key.endswith("positional_encoding_gaussian_matrix"):
        return "pos_gauss", 0.0, 1.0
    if key.endswith(".weight") and ndim == 1:
        return "norm_weight", 1.0, 0.1
    if key.endswith(".bias"):
        if key == obj_score_bias_key:
            return "obj_score_bias", 1.0, 0.02
        return "bias", 0.0, 0.02
    if ndim >= 2 and _EMBEDDING_RE.search(key):
        return "embedding", 0.0, 1.0
    if key.endswith(".weight") and ndim >= 2:
        gain = next((g for pattern, g in _DENSE_GAINS if pattern.search(key)), 1.0)
        fan_in = math.prod(int(d) for d in shape[1:])
        return "dense", 0.0, gain / math.sqrt(fan_in)
    return "free", 0.0, 0.1


def synth_array(
    key: str, shape: Sequence[int], seed: int = 0, obj_score_bias_key: str | None = None
) -> np.ndarray:
    """One synthetic float32 array of the given shape (C order)."""
    _, mean, std = weight_rule(key, shape, obj_score_bias_key)
    numel = math.prod(int(d) for d in shape)
    values = mean + std * synth_noise(key, numel, seed)  # float64
    return values.astype(np.float32).reshape(tuple(int(d) for d in shape))


def synth_state_dict(shapes: Mapping[str, Sequence[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Synthetic weights for every key of a state dict (recipe `sam2-synth-v1`).

    Args:
        shapes: key -> shape, e.g. `{k: tuple(v.shape) for k, v in model.state_dict().items()}`.
        seed: the recipe's global seed (0 for the parity fixtures).

    Returns:
        key -> float32 CPU tensor, in the order of `shapes`. Each tensor depends only on its key,
        its shape, the seed and (for the object-score bias) which key is the last such bias.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    obj_key = last_obj_score_bias_key(shapes)
    return {
        key: torch.from_numpy(synth_array(key, shape, seed, obj_key))
        for key, shape in shapes.items()
    }


def state_dict_digest(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, str], str]:
    """sha256 of each tensor's little-endian float32 bytes (C order) and the global digest.

    The global digest is sha256 of the per-key hex digests concatenated in sorted key order,
    as in the fixtures' `weights_digest.json` (`sha256_f32le`, `all_sha256`).
    """
    per_key = {}
    for key, tensor in state_dict.items():
        array = np.ascontiguousarray(tensor.detach().cpu().to(torch.float32).numpy(), dtype="<f4")
        per_key[key] = hashlib.sha256(array.tobytes()).hexdigest()
    joined = "".join(per_key[k] for k in sorted(per_key))
    return per_key, hashlib.sha256(joined.encode()).hexdigest()


def synthetic_checkpoint(
    model_or_shapes: nn.Module | Mapping[str, Sequence[int]],
    path: str | os.PathLike[str],
    seed: int = 0,
) -> Path:
    """Write an official-format checkpoint `{"model": state_dict}` of synthetic weights.

    Args:
        model_or_shapes: an `nn.Module` (its `state_dict()` keys and shapes are used) or a
            key -> shape mapping.
        path: where to write the file (`torch.save`).
        seed: the recipe's global seed.

    Returns:
        The path written.
    """
    if isinstance(model_or_shapes, nn.Module):
        shapes = {k: tuple(v.shape) for k, v in model_or_shapes.state_dict().items()}
    elif isinstance(model_or_shapes, Mapping):
        shapes = {k: tuple(v) for k, v in model_or_shapes.items()}
    else:
        raise TypeError(
            "synthetic_checkpoint expects an nn.Module or a mapping key -> shape, "
            f"got {type(model_or_shapes).__name__}"
        )
    out = Path(path)
    torch.save({"model": synth_state_dict(shapes, seed)}, out)
    return out
