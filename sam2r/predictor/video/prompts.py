"""Prompt checking for the video predictor: user clicks, boxes and masks in, model-input
tensors out.

The video predictor takes prompts in video pixels (or relative coordinates) from numpy arrays,
lists or tensors. `point_prompt` and `mask_prompt` check them and raise `ValueError` /
`TypeError` with what was given and what was expected, before any session state changes, then
map them into the model's square input exactly as the official `SAM2VideoPredictor` does;
`check_obj_id` checks an object id.

What is left to others: turning arrays of numbers into checked tensors (`sam2r.predictor.inputs`,
shared with the image predictor), storing prompts and running the model
(`sam2r.predictor.video.bank.prompt_step`, into the dataclasses of `sam2r.predictor.video.session`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.predictor.inputs import as_tensor, check_inside, float_tensor
from sam2r.predictor.video.session import PointPrompt

VALID_LABELS = (-1, 0, 1, 2, 3)  # padding, negative, positive, box corners


def point_prompt(
    points: Any,
    labels: Any,
    box: Any,
    *,
    clear_old_points: bool,
    normalize_coords: bool,
    video_hw: tuple[int, int],
    image_size: int,
    check_bounds: bool = True,
    device: torch.device | str = "cpu",
) -> PointPrompt:
    """Validate clicks and / or a box and map them to model-input pixels.

    Args:
        points: (P, 2) or (1, P, 2) x, y clicks, or None.
        labels: (P,) or (1, P) labels (1 positive, 0 negative), or None.
        box: 4 numbers x0, y0, x1, y1, or None; becomes the first two points (labels 2, 3).
        clear_old_points: the prompt replaces earlier clicks (a box requires it).
        normalize_coords: coordinates are video pixels (else already in [0, 1]).
        video_hw: (H, W) of the video.
        image_size: side of the square model input.
        check_bounds: raise on coordinates outside the frame.
        device: where the returned tensors live.

    Returns:
        `PointPrompt` with coords (1, P', 2) = coords / [W, H] * image_size (as the official
        predictor computes them) and labels (1, P') int32, P' = P (+ 2 with a box).
    """
    if (points is None) != (labels is None):
        raise ValueError("points and labels must be given together (one label per point)")
    if points is None and box is None:
        raise ValueError("give points and labels, a box, or both")
    h, w = video_hw
    limit = (float(w), float(h)) if normalize_coords else (1.0, 1.0)
    where = f"the {w}x{h} frame" if normalize_coords else "[0, 1] (normalize_coords=False)"
    coords = torch.zeros(1, 0, 2)
    labs = torch.zeros(1, 0, dtype=torch.int32)
    if points is not None:
        coords = float_tensor("points", points)
        labs = as_tensor("labels", labels)
        if coords.ndim == 2:
            coords = coords[None]
        if labs.ndim == 1:
            labs = labs[None]
        if coords.ndim != 3 or coords.shape[0] != 1 or coords.shape[-1] != 2:
            raise ValueError(f"points must have shape (P, 2) as x, y, got {tuple(coords.shape)}")
        if coords.shape[1] == 0:
            raise ValueError("points is empty; give at least one click, or a box alone")
        if labs.shape != coords.shape[:2]:
            raise ValueError(
                f"labels shape {tuple(labs.shape)} does not match points shape "
                f"{tuple(coords.shape)}: one label per point"
            )
        if labs.is_floating_point() and not bool((labs == labs.round()).all()):
            raise ValueError(f"labels must be integers, got {labs.tolist()}")
        labs = labs.to(torch.int32)
        bad = set(labs.unique().tolist()) - set(VALID_LABELS)
        if bad:
            raise ValueError(f"labels must be 1 (positive) or 0 (negative), got {sorted(bad)}")
        if check_bounds:
            check_inside("points", coords, limit, where)
    if box is not None:
        if not clear_old_points:
            raise ValueError(
                "a box must be the first prompt of a frame: pass clear_old_points=True with it"
            )
        b = float_tensor("box", box)
        if b.numel() != 4:
            raise ValueError(f"box must be 4 numbers x0, y0, x1, y1, got shape {tuple(b.shape)}")
        b = b.reshape(1, 2, 2)
        if bool((b[0, 1] < b[0, 0]).any()):
            raise ValueError(
                f"box must be x0, y0, x1, y1 with x0 <= x1, y0 <= y1: {b.flatten().tolist()}"
            )
        if check_bounds:
            check_inside("box", b, limit, where)
        coords = torch.cat([b, coords], dim=1)
        labs = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), labs], dim=1)
    if normalize_coords:
        coords = coords / torch.tensor([w, h], dtype=torch.float32)
    coords = coords * image_size
    return PointPrompt(coords.to(device), labs.to(device))


def mask_prompt(
    mask: Any, *, video_hw: tuple[int, int], image_size: int, device: torch.device | str = "cpu"
) -> Tensor:
    """Validate a mask prompt and resize it to the model input.

    Args:
        mask: (H, W) at video resolution or (S, S); leading dims of 1 are dropped. Arrays and
            lists are read as booleans (non-zero = object), tensors as they are (as the
            official predictor does).
        video_hw: (H, W) of the video.
        image_size: S, the side of the square model input.
        device: where the returned tensor lives.

    Returns:
        (1, 1, S, S) float32: antialiased bilinear resize to S x S then `>= 0.5` (a mask that
        is already S x S is taken as it is).
    """
    if isinstance(mask, Tensor):
        m = mask.detach()
    else:
        try:
            m = torch.as_tensor(np.asarray(mask).astype(bool))
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"mask must be an (H, W) array, got {type(mask).__name__}: {e}"
            ) from None
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    h, w = video_hw
    s = image_size
    if m.ndim != 2 or tuple(m.shape) not in ((h, w), (s, s)):
        raise ValueError(
            f"mask must have the video's size (H, W) = ({h}, {w}) (or the model's "
            f"({s}, {s})), got shape {tuple(m.shape)}"
        )
    m = m[None, None].float().to(device)
    if tuple(m.shape[-2:]) != (s, s):
        m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        m = (m >= 0.5).float()
    return m
