"""The official `sam2.utils.amg` helpers (automatic mask generation), over `sam2r.ops`.

    from sam2.utils.amg import rle_to_mask, area_from_rle, build_all_layer_point_grids
becomes
    from sam2r.compat.utils.amg import rle_to_mask, area_from_rle, build_all_layer_point_grids

Left out: `MaskData` (the official generator's internal batch container; sam2r's
`MaskGenerator` keeps typed batches of its own). Differences: `remove_small_regions` needs no
OpenCV (8-connected components from `sam2r.ops.masks`, as `cv2.connectedComponentsWithStats(...,
8)`); `coco_encode_rle` needs no pycocotools (sam2r's RLE codec, the same strings).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sam2r.ops import boxes as box_ops
from sam2r.ops import masks as mask_ops
from sam2r.ops import rle as rle_ops


def is_box_near_crop_edge(
    boxes: Tensor, crop_box: list[int], orig_box: list[int], atol: float = 20.0
) -> Tensor:
    """(N,) bool: boxes (in the crop's frame) touching a crop edge that is not an image edge."""
    return box_ops.is_box_near_crop_edge(boxes, crop_box, orig_box, atol)


def box_xyxy_to_xywh(box_xyxy: Tensor) -> Tensor:
    """(..., 4) x0, y0, x1, y1 -> x0, y0, w, h (a new tensor)."""
    return box_ops.box_xyxy_to_xywh(box_xyxy)


def batch_iterator(batch_size: int, *args: Sequence[Any]) -> Generator[list[Any], None, None]:
    """Slices of `batch_size` of every argument, in step."""
    if not args or any(len(a) != len(args[0]) for a in args):
        raise ValueError("Batched iteration must have inputs of all the same size.")
    n = len(args[0])
    for start in range(0, n, batch_size):
        yield [a[start : start + batch_size] for a in args]


def mask_to_rle_pytorch(tensor: Tensor) -> list[dict[str, Any]]:
    """(N, H, W) bool -> N uncompressed RLEs {"size": [H, W], "counts": [...]} (column-major)."""
    return rle_ops.masks_to_uncompressed(tensor)


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """An uncompressed RLE -> (H, W) bool mask."""
    return rle_ops.uncompressed_to_mask(rle)


def area_from_rle(rle: dict[str, Any]) -> int:
    """Foreground pixels of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def coco_encode_rle(uncompressed_rle: dict[str, Any]) -> dict[str, Any]:
    """Uncompressed RLE -> COCO RLE with str counts (JSON-ready)."""
    out = rle_ops.compress(uncompressed_rle)
    counts = out["counts"]
    return {
        "size": out["size"],
        "counts": counts.decode("utf-8") if isinstance(counts, bytes) else counts,
    }


def calculate_stability_score(
    masks: Tensor, mask_threshold: float, threshold_offset: float
) -> Tensor:
    """IoU of the masks thresholded at `mask_threshold` ± `threshold_offset`: (...,) float."""
    inter = (masks > mask_threshold + threshold_offset).flatten(-2).sum(-1, dtype=torch.int32)
    union = (masks > mask_threshold - threshold_offset).flatten(-2).sum(-1, dtype=torch.int32)
    return inter / union


def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) points at the centres of an n x n grid over [0, 1]^2."""
    return box_ops.point_grid(n_per_side)


def build_all_layer_point_grids(
    n_per_side: int, n_layers: int, scale_per_layer: int
) -> list[np.ndarray]:
    """Point grids of crop layers 0..n_layers."""
    return box_ops.layer_point_grids(n_per_side, n_layers, scale_per_layer)


def generate_crop_boxes(
    im_size: tuple[int, ...], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """(crop boxes [x0, y0, x1, y1], layer of each): the whole image, then 2^i x 2^i crops."""
    return box_ops.crop_boxes((int(im_size[0]), int(im_size[1])), n_layers, overlap_ratio)


def uncrop_boxes_xyxy(boxes: Tensor, crop_box: list[int]) -> Tensor:
    """Boxes from a crop's frame to the image's."""
    x0, y0 = crop_box[0], crop_box[1]
    offset = torch.tensor([[x0, y0, x0, y0]], device=boxes.device)
    return boxes + (offset.unsqueeze(1) if boxes.ndim == 3 else offset)


def uncrop_points(points: Tensor, crop_box: list[int]) -> Tensor:
    """Points from a crop's frame to the image's."""
    offset = torch.tensor([[crop_box[0], crop_box[1]]], device=points.device)
    return points + (offset.unsqueeze(1) if points.ndim == 3 else offset)


def uncrop_masks(masks: Tensor, crop_box: list[int], orig_h: int, orig_w: int) -> Tensor:
    """(..., h, w) masks of a crop -> (..., orig_h, orig_w), zero outside the crop."""
    x0, y0, x1, y1 = crop_box
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return masks
    pad_x, pad_y = orig_w - (x1 - x0), orig_h - (y1 - y0)
    return torch.nn.functional.pad(masks, (x0, pad_x - x0, y0, pad_y - y0), value=0)


def remove_small_regions(
    mask: np.ndarray, area_thresh: float, mode: str
) -> tuple[np.ndarray, bool]:
    """Fill holes ("holes") or drop islands ("islands") smaller than `area_thresh` pixels in a
    (H, W) bool mask; returns (mask, whether it changed). When every island is small the
    largest is kept, as the official helper."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    holes = mode == "holes"
    working = torch.from_numpy(np.asarray(mask, dtype=bool) ^ holes)[None, None]
    labels, areas = mask_ops.connected_components(working)
    labels, areas = labels[0, 0], areas[0, 0]
    small = (labels > 0) & (areas < area_thresh)
    if not bool(small.any()):
        return mask, False
    if holes:
        return (labels == 0).numpy() | small.numpy(), True
    keep = (labels > 0) & ~small
    if not bool(keep.any()):  # every island is small: keep the largest (first in raster order)
        top = areas.max()
        keep = labels == labels[areas == top].min()
    return keep.numpy(), True


def batched_mask_to_box(masks: Tensor) -> Tensor:
    """(..., H, W) bool -> (..., 4) x0, y0, x1, y1 (inclusive); [0, 0, 0, 0] when empty."""
    return box_ops.masks_to_boxes(masks)
