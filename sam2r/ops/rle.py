"""Run-length encodings of binary masks, the two forms SAM tools exchange.

* **COCO RLE** (compressed): `{"size": [h, w], "counts": b"..."}`, the run lengths of the
  column-major (Fortran-order) mask, starting with a run of zeros, written in COCO's
  6-bits-per-character string code. `encode`, `decode`, `area` and `to_bbox` give the same
  bytes and numbers as `pycocotools.mask` (tested against it), in numpy, with no compiled
  extension; `pycocotools` stays an optional extra.
* **Uncompressed RLE**: `{"size": [h, w], "counts": [int, ...]}`, the same run lengths as a
  list, which is what SAM's `mask_to_rle_pytorch` returns and its "uncompressed_rle" output mode
  holds (`masks_to_uncompressed` encodes a whole batch of torch masks at once).

`compress` / `decompress` convert between the two (`compress` is pycocotools' `frPyObjects` on an
uncompressed RLE). `decode`, `area` and `to_bbox` accept either form, one RLE or a list.

What is left to others: boxes and NMS (`sam2r.ops.boxes`), files (`sam2r.io.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

RLE = dict[str, Any]

_MAX_CHARS = 7  # 5 payload bits per character: 35 bits hold any delta of two uint32 counts


# ----------------------------------------------------------------------------------------------
# run lengths
# ----------------------------------------------------------------------------------------------
def _runs(mask: np.ndarray) -> np.ndarray:
    """(H, W) mask -> int64 run lengths of its column-major flattening, zeros first."""
    flat = np.asarray(mask).ravel(order="F") != 0
    n = flat.size
    if n == 0:
        return np.zeros(1, dtype=np.int64)  # one empty run of zeros, as pycocotools
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [n]])
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate([[0], runs])
    return runs.astype(np.int64)


def _size(rle: RLE) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in rle["size"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"an RLE is a dict with 'size': [h, w] and 'counts', got {_short(rle)}"
        ) from None
    return h, w


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _counts(rle: RLE) -> np.ndarray:
    """The run lengths of an RLE of either form, checked against its size."""
    if not isinstance(rle, dict) or "counts" not in rle:
        raise ValueError(f"an RLE is a dict with 'size': [h, w] and 'counts', got {_short(rle)}")
    h, w = _size(rle)
    raw = rle["counts"]
    if isinstance(raw, (bytes, str)):
        counts = string_to_counts(raw)
    else:
        counts = np.asarray(raw, dtype=np.int64).reshape(-1)
    if counts.size and counts.min() < 0:
        raise ValueError("RLE counts must be >= 0")
    if int(counts.sum()) != h * w:
        raise ValueError(
            f"RLE counts sum to {int(counts.sum())} pixels but size {[h, w]} has {h * w}"
        )
    return counts


# ----------------------------------------------------------------------------------------------
# COCO's string code
# ----------------------------------------------------------------------------------------------
def counts_to_string(counts: Sequence[int] | np.ndarray) -> bytes:
    """Run lengths -> COCO's compressed string.

    Each count from the fourth on is stored as the difference to the count two places back
    (runs of the same value), then every number is written as little-endian groups of 5 bits,
    one character (`48 + group`, bit 0x20 = "more groups follow") per group, the top group
    sign-extended.
    """
    x = np.asarray(counts, dtype=np.int64).copy()
    if x.size > 3:
        x[3:] = x[3:] - np.asarray(counts, dtype=np.int64)[1:-2]
    groups = np.empty((x.size, _MAX_CHARS), dtype=np.int64)
    used = np.zeros((x.size, _MAX_CHARS), dtype=bool)
    more = np.ones(x.size, dtype=bool)
    for k in range(_MAX_CHARS):
        c = x & 0x1F
        x = x >> 5  # arithmetic shift: negative numbers stay negative
        used[:, k] = more
        # done when the rest is pure sign extension of this group's top bit
        done = np.where(c & 0x10, x == -1, x == 0)
        groups[:, k] = c | np.where(done, 0, 0x20)
        more = more & ~done
    if more.any():
        raise ValueError("RLE count too large for the COCO string code")
    return (groups[used] + 48).astype(np.uint8).tobytes()


def string_to_counts(s: bytes | str) -> np.ndarray:
    """COCO's compressed string -> int64 run lengths (the inverse of `counts_to_string`)."""
    raw = s.encode("ascii") if isinstance(s, str) else bytes(s)
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63 or c[-1] & 0x20:
        raise ValueError(f"not a COCO RLE string: {_short(raw)}")
    last = (c & 0x20) == 0  # the final character of each number
    number = np.concatenate([[0], np.cumsum(last)[:-1]])  # which number each char belongs to
    starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    pos = np.arange(c.size) - starts[number]  # group index within its number
    if pos.max() > 11:  # 12 groups = 60 bits: anything longer is not a run length
        raise ValueError(f"not a COCO RLE string (a number is too long): {_short(raw)}")
    x = np.zeros(int(last.sum()), dtype=np.int64)
    np.add.at(x, number, (c & 0x1F) << (5 * pos))
    ends = np.flatnonzero(last)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.int64(1) << (5 * (pos[ends][negative] + 1))  # sign extension
    out = x.copy()
    out[1::2] = np.cumsum(x[1::2])  # undo the deltas of counts 3, 5, ... and 4, 6, ...
    out[2::2] = np.cumsum(x[2::2])
    return out


# ----------------------------------------------------------------------------------------------
# COCO RLE (pycocotools-compatible)
# ----------------------------------------------------------------------------------------------
def _as_mask_array(mask: Any) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"masks must be bool or integer (0/1) arrays, got dtype {arr.dtype}")
    return arr


def encode(mask: Any) -> RLE | list[RLE]:
    """Binary mask(s) -> COCO RLE, as `pycocotools.mask.encode`.

    Args:
        mask: (H, W) or (H, W, N) bool / integer array (non-zero = foreground), any memory
            order (pycocotools insists on Fortran order; here it does not matter), or a tensor.

    Returns:
        `{"size": [H, W], "counts": bytes}` for an (H, W) mask, a list of N of them for
        (H, W, N).
    """
    arr = _as_mask_array(mask)
    if arr.ndim == 2:
        h, w = arr.shape
        return {"size": [h, w], "counts": counts_to_string(_runs(arr))}
    if arr.ndim == 3:
        return [encode(arr[:, :, i]) for i in range(arr.shape[2])]  # type: ignore[misc]
    raise ValueError(f"mask must have shape (H, W) or (H, W, N), got {arr.shape}")


def _decode_one(rle: RLE) -> np.ndarray:
    h, w = _size(rle)
    counts = _counts(rle)
    values = np.arange(counts.size) % 2
    flat = np.repeat(values.astype(np.uint8), counts)
    return flat.reshape(w, h).T  # column-major runs -> (H, W), a Fortran-ordered view


def decode(rle: RLE | Sequence[RLE]) -> np.ndarray:
    """COCO or uncompressed RLE -> uint8 0/1 mask (H, W); a list -> (H, W, N)."""
    if isinstance(rle, dict):
        return _decode_one(rle)
    masks = [_decode_one(r) for r in rle]
    if not masks:
        raise ValueError("decode got an empty list of RLEs")
    return np.stack(masks, axis=-1)


def area(rle: RLE | Sequence[RLE]) -> int | np.ndarray:
    """Foreground pixel count: an int for one RLE, uint32 (N,) for a list (as pycocotools)."""
    if isinstance(rle, dict):
        return int(_counts(rle)[1::2].sum())
    return np.array([area(r) for r in rle], dtype=np.uint32)


def _bbox_one(rle: RLE) -> np.ndarray:
    h, _ = _size(rle)
    counts = _counts(rle)
    ends = np.cumsum(counts)
    starts = ends - counts
    fg = (np.arange(counts.size) % 2 == 1) & (counts > 0)
    if not fg.any():
        return np.zeros(4, dtype=np.float64)
    first, last = starts[fg], ends[fg] - 1  # column-major indices of each run's ends
    x0, x1 = first // h, last // h
    y0, y1 = first % h, last % h
    wraps = (x1 > x0).any()  # a run spilling into the next column covers rows h-1 and 0
    ymin = 0 if wraps else int(y0.min())
    ymax = h - 1 if wraps else int(y1.max())
    xmin, xmax = int(x0.min()), int(x1.max())
    return np.array([xmin, ymin, xmax - xmin + 1, ymax - ymin + 1], dtype=np.float64)


def to_bbox(rle: RLE | Sequence[RLE]) -> np.ndarray:
    """Tight box [x, y, w, h] (float64, w = x1 - x0 + 1) of an RLE, [0, 0, 0, 0] when empty;
    (N, 4) for a list. As `pycocotools.mask.toBbox`."""
    if isinstance(rle, dict):
        return _bbox_one(rle)
    return np.stack([_bbox_one(r) for r in rle]) if len(rle) else np.zeros((0, 4))


# ----------------------------------------------------------------------------------------------
# uncompressed RLE (SAM's form)
# ----------------------------------------------------------------------------------------------
def mask_to_uncompressed(mask: Any) -> RLE:
    """(H, W) mask -> `{"size": [H, W], "counts": [int, ...]}`, column-major runs, zeros first."""
    arr = _as_mask_array(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must have shape (H, W), got {arr.shape}")
    return {"size": list(arr.shape), "counts": _runs(arr).tolist()}


def masks_to_uncompressed(masks: torch.Tensor) -> list[RLE]:
    """(N, H, W) bool tensor -> N uncompressed RLEs (SAM's `mask_to_rle_pytorch`), with one
    change-point search for the whole batch."""
    if not isinstance(masks, torch.Tensor) or masks.ndim != 3:
        raise ValueError(
            f"masks must be a tensor of shape (N, H, W), got {getattr(masks, 'shape', masks)}"
        )
    n, h, w = masks.shape
    if n == 0:
        return []
    flat = masks.bool().transpose(1, 2).reshape(n, h * w)  # column-major per mask
    rows, cols = torch.nonzero(flat[:, 1:] != flat[:, :-1], as_tuple=True)
    per_mask = torch.bincount(rows, minlength=n).tolist()
    change = (cols + 1).cpu().numpy()
    first = flat[:, 0].cpu().numpy()
    out, at = [], 0
    for i in range(n):
        c = change[at : at + per_mask[i]]
        at += per_mask[i]
        runs = np.diff(np.concatenate([[0], c, [h * w]]))
        counts = ([0] if first[i] else []) + runs.tolist()
        out.append({"size": [h, w], "counts": counts})
    return out


def uncompressed_to_mask(rle: RLE) -> np.ndarray:
    """Uncompressed (or COCO) RLE -> (H, W) bool mask (SAM's `rle_to_mask`)."""
    return _decode_one(rle).astype(bool)


def compress(rle: RLE) -> RLE:
    """Uncompressed RLE -> COCO RLE with bytes counts (pycocotools' `frPyObjects`)."""
    h, w = _size(rle)
    return {"size": [h, w], "counts": counts_to_string(_counts(rle))}


def decompress(rle: RLE) -> RLE:
    """COCO RLE (bytes or str counts) -> uncompressed RLE with a list of counts."""
    h, w = _size(rle)
    return {"size": [h, w], "counts": _counts(rle).tolist()}
