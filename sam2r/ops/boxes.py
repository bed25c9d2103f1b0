"""Box geometry of the automatic mask generator: NMS, boxes of masks, crops and point grids.

Pure torch (no torchvision) and numpy, deterministic:

* `box_area`, `box_iou`, `nms`, `batched_nms`: torchvision's semantics as its CPU kernel has
  them (boxes x0, y0, x1, y1; area without +1; candidates visited in *stable* descending score
  order; a candidate is suppressed iff its IoU with a kept box is strictly greater than the
  threshold; arithmetic in the boxes' dtype, so 0/0 = NaN suppresses nothing);
* `masks_to_boxes`: SAM's `batched_mask_to_box` (inclusive x0, y0, x1, y1 of the foreground,
  [0, 0, 0, 0] for an empty mask) and `mask_areas`;
* `box_xyxy_to_xywh`, `is_box_near_crop_edge`: record boxes and the crop-edge filter;
* `point_grid`, `layer_point_grids`, `crop_boxes`: the prompts and crops of "everything" mode.

What is left to others: running the model and deciding what to filter
(`sam2r.predictor.automatic`), mask encodings (`sam2r.ops.rle`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np
import torch
from torch import Tensor

_NMS_BLOCK = 1024  # rows of the IoU matrix computed at once


def box_area(boxes: Tensor) -> Tensor:
    """(N, 4) x0, y0, x1, y1 -> (N,) areas (x1 - x0) * (y1 - y0), no +1, in the boxes' dtype."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """(N, 4), (M, 4) -> (N, M) IoU, computed as the NMS kernel does (0/0 gives NaN)."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) float x0, y0, x1, y1.
        scores: (N,) higher is better.
        iou_threshold: a box is dropped when its IoU with a kept, better box is > this.

    Returns:
        (K,) int64 indices of the kept boxes, best score first (ties keep input order).
    """
    _check_boxes(boxes, scores)
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    # over[i, j]: box i would suppress box j (NaN IoU compares False); N x N bytes, in row
    # blocks so the float intermediates stay small
    over = np.empty((n, n), dtype=bool)
    for s in range(0, n, _NMS_BLOCK):
        over[s : s + _NMS_BLOCK] = (box_iou(b[s : s + _NMS_BLOCK], b) > iou_threshold).cpu()
    removed = np.zeros(n, dtype=bool)
    kept = []
    for i in range(n):  # sequential by nature; each step is one vectorised row
        if removed[i]:
            continue
        kept.append(i)
        removed[i + 1 :] |= over[i, i + 1 :]
    return order[torch.as_tensor(kept, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, categories: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes of different categories never suppress each other.

    Categories are separated by offsetting each box by `category * (max coordinate + 1)`, then
    one `nms` runs (torchvision's trick for small inputs).

    Args:
        boxes: (N, 4) float x0, y0, x1, y1.
        scores: (N,).
        categories: (N,) integer category of each box.
        iou_threshold: as in `nms`.

    Returns:
        (K,) int64 kept indices, best score first.
    """
    _check_boxes(boxes, scores)
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if categories.shape != scores.shape:
        raise ValueError(
            f"categories must have shape {tuple(scores.shape)}, got {tuple(categories.shape)}"
        )
    offsets = categories.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _check_boxes(boxes: Tensor, scores: Tensor) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"scores must have shape ({boxes.shape[0]},) for {boxes.shape[0]} boxes, "
            f"got {tuple(scores.shape)}"
        )


# ----------------------------------------------------------------------------------------------
# boxes of masks
# ----------------------------------------------------------------------------------------------
def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes around binary masks.

    Args:
        masks: (..., H, W) bool.

    Returns:
        (..., 4) int64 x0, y0, x1, y1 with *inclusive* x1, y1 (a full H x W mask gives
        [0, 0, W-1, H-1]); [0, 0, 0, 0] for an empty mask.
    """
    if masks.ndim < 2:
        raise ValueError(f"masks must have shape (..., H, W), got {tuple(masks.shape)}")
    h, w = masks.shape[-2:]
    if masks.numel() == 0:
        return torch.zeros(*masks.shape[:-2], 4, dtype=torch.int64, device=masks.device)
    m = masks.bool().view(torch.uint8)  # (amax over uint8 is ~100x faster than any() on CPU)
    rows = m.amax(dim=-1) > 0  # (..., H)
    cols = m.amax(dim=-2) > 0  # (..., W)
    y = torch.arange(h, device=masks.device)
    x = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, y, -1).amax(dim=-1)
    y0 = torch.where(rows, y, h).amin(dim=-1)
    x1 = torch.where(cols, x, -1).amax(dim=-1)
    x0 = torch.where(cols, x, w).amin(dim=-1)
    out = torch.stack([x0, y0, x1, y1], dim=-1)
    return torch.where(rows.any(dim=-1, keepdim=True), out, 0)


def mask_areas(masks: Tensor) -> Tensor:
    """(..., H, W) bool -> (...,) int64 foreground pixel counts."""
    return masks.flatten(-2).sum(-1, dtype=torch.int64)


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(..., 4) x0, y0, x1, y1 -> x0, y0, x1 - x0, y1 - y0 (a new tensor)."""
    out = boxes.clone()
    out[..., 2:] = boxes[..., 2:] - boxes[..., :2]
    return out


def is_box_near_crop_edge(
    boxes: Tensor, crop_box: Sequence[int], orig_box: Sequence[int], atol: float = 20.0
) -> Tensor:
    """Boxes that touch a crop edge which is not also an image edge.

    A mask cut off by the crop border is incomplete; the same object is better segmented from
    a crop (or the full image) that contains it.

    Args:
        boxes: (N, 4) x0, y0, x1, y1 in the crop's frame.
        crop_box: x0, y0, x1, y1 of the crop in the image.
        orig_box: x0, y0, x1, y1 of the whole image, i.e. [0, 0, W, H].
        atol: how close (pixels) a box side must be to an edge to touch it.

    Returns:
        (N,) bool.
    """
    crop = torch.as_tensor(crop_box, dtype=torch.float32, device=boxes.device)
    orig = torch.as_tensor(orig_box, dtype=torch.float32, device=boxes.device)
    b = (boxes + crop[[0, 1, 0, 1]].to(boxes.dtype)).float()
    near_crop = torch.isclose(b, crop[None], atol=atol, rtol=0)
    near_image = torch.isclose(b, orig[None], atol=atol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)


# ----------------------------------------------------------------------------------------------
# point grids and crops
# ----------------------------------------------------------------------------------------------
def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) float64 x, y points at the centres of an n x n grid of cells of [0, 1]^2,
    row by row (x varies fastest)."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """Point grids for crop layers 0..n_layers; layer i has int(n / scale**i) points per side."""
    return [point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def crop_boxes(
    image_hw: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """The crops of "everything" mode: the whole image, then for layer i = 1..n_layers a
    2^i x 2^i grid of overlapping crops.

    Layer i's crops overlap by `int(overlap_ratio * short_side * 2 / 2^i)` pixels; each has
    side `ceil((overlap * (n - 1) + side) / n)` (clipped at the image border).

    Args:
        image_hw: (H, W) of the image.
        n_layers: number of crop layers beyond the whole image.
        overlap_ratio: overlap of the first layer's crops, as a fraction of the short side.

    Returns:
        crop boxes as [x0, y0, x1, y1] (exclusive x1, y1), and the layer of each. Crops of a
        layer are listed column by column (all y0 for the first x0, then the next x0).
    """
    h, w = image_hw
    boxes, layers = [[0, 0, w, h]], [0]
    short = min(h, w)

    def crop_len(length: int, n: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n - 1) + length) / n))

    for layer in range(1, n_layers + 1):
        n = 2**layer
        overlap = int(overlap_ratio * short * (2 / n))
        cw, ch = crop_len(w, n, overlap), crop_len(h, n, overlap)
        x0s = [int((cw - overlap) * i) for i in range(n)]
        y0s = [int((ch - overlap) * i) for i in range(n)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + cw, w), min(y0 + ch, h)])
            layers.append(layer)
    return boxes, layers
