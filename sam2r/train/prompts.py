"""Prompt simulation for training, as the SAM 2 paper describes it: a first click drawn inside
the object, a box around it with jittered corners, and corrective clicks drawn from the error
region of the current prediction (a false-negative pixel gives a positive click, a
false-positive pixel a negative one).

All functions take per-object masks of one frame, (O, H, W) bool, and a `torch.Generator`, and
return point prompts in model-input pixels: coords (O, P, 2) as (x, y) and labels (O, P) int32
(1 foreground, 0 background, 2 / 3 box corners).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _pick(weights: Tensor, gen: torch.Generator) -> Tensor:
    """Index of one pixel drawn uniformly where `weights` (H*W,) is true."""
    w = weights.float()
    if w.sum() <= 0:
        w = torch.ones_like(w)
    return torch.multinomial(w, 1, generator=gen)[0]


def _xy(flat_idx: Tensor, width: int) -> Tensor:
    """(x, y) pixel centre of a flat index, as float."""
    y = torch.div(flat_idx, width, rounding_mode="floor")
    x = flat_idx - y * width
    return torch.stack([x, y]).float() + 0.5


def click_inside(gt: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """One positive click drawn uniformly inside each object (anywhere if the mask is empty).

    Args:
        gt: (O, H, W) bool masks.
    Returns:
        coords (O, 1, 2), labels (O, 1).
    """
    o, _, w = gt.shape
    coords = torch.stack([_xy(_pick(gt[i].flatten(), gen), w) for i in range(o)])
    labels = torch.ones(o, 1, dtype=torch.int32)
    return coords[:, None].to(gt.device), labels.to(gt.device)


def jittered_box(gt: Tensor, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """The bounding box of each object, corners moved by up to `noise` of the box side.

    Args:
        gt: (O, H, W) bool masks (an empty mask gives the whole frame).
        noise: fraction of the box width / height.
    Returns:
        coords (O, 2, 2) as [[x0, y0], [x1, y1]], labels (O, 2) = (2, 3).
    """
    o, h, w = gt.shape
    boxes = []
    for i in range(o):
        ys, xs = torch.nonzero(gt[i], as_tuple=True)
        if ys.numel() == 0:
            box = torch.tensor([0.0, 0.0, w, h])
        else:
            box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float().cpu()
        side = torch.stack([box[2] - box[0], box[3] - box[1]]).repeat(2)
        jitter = (torch.rand(4, generator=gen) * 2 - 1) * noise * side
        box = box + jitter
        box[0::2] = box[0::2].clamp(0, w)
        box[1::2] = box[1::2].clamp(0, h)
        lo = torch.minimum(box[:2], box[2:])
        hi = torch.maximum(box[:2], box[2:])
        boxes.append(torch.stack([lo, hi]))
    labels = torch.tensor([[2, 3]], dtype=torch.int32).expand(o, 2).contiguous()
    return torch.stack(boxes).to(gt.device), labels.to(gt.device)


def correction_click(pred: Tensor, gt: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """One corrective click per object, drawn uniformly from the error region `pred xor gt`.

    The click is positive on a missed object pixel and negative on a wrong background pixel.
    Without any error, a positive click inside the object (or a negative one anywhere when the
    object is absent) keeps the prompt count the same for every object.

    Args:
        pred: (O, H, W) bool current prediction.
        gt: (O, H, W) bool ground truth.
    Returns:
        coords (O, 1, 2), labels (O, 1).
    """
    o, _, w = gt.shape
    coords, labels = [], []
    for i in range(o):
        err = (pred[i] ^ gt[i]).flatten()
        if err.any():
            idx = _pick(err, gen)
        elif gt[i].any():
            idx = _pick(gt[i].flatten(), gen)
        else:
            idx = _pick(torch.ones_like(err), gen)
        coords.append(_xy(idx.cpu(), w))
        labels.append(int(gt[i].flatten()[idx]))
    return (
        torch.stack(coords)[:, None].to(gt.device),
        torch.tensor(labels, dtype=torch.int32)[:, None].to(gt.device),
    )
