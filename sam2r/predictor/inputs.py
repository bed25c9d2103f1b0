"""What users pass as numbers (arrays, lists or tensors) as checked tensors, with errors that
name the argument; shared by the image and the video predictors' prompt checks.

    coords = float_tensor("points", points)            # finite float32 CPU tensor, or an error
    check_inside("points", coords, (w, h), "the frame")  # ValueError for a point outside

What is left to others: what the prompts mean and how they reach the model
(`sam2r.predictor.image`, `sam2r.predictor.video.prompts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_tensor(name: str, value: Any) -> Tensor:
    """`value` as a tensor; TypeError naming `name` when it is not an array of numbers."""
    try:
        return torch.as_tensor(value if isinstance(value, Tensor) else np.asarray(value))
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{name} must be an array of numbers, got {type(value).__name__}: {e}"
        ) from None


def float_tensor(name: str, value: Any) -> Tensor:
    """A finite float32 CPU tensor of numbers; TypeError / ValueError naming `name`."""
    t = as_tensor(name, value)
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise TypeError(f"{name} must hold numbers, got dtype {t.dtype}")
    t = t.to(torch.float32).cpu()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def check_inside(name: str, coords: Tensor, limit: tuple[float, float], where: str) -> None:
    """ValueError when a point of coords (..., 2) lies outside [0, limit[0]] x [0, limit[1]]."""
    x, y = coords[..., 0], coords[..., 1]
    outside = (x < 0) | (y < 0) | (x > limit[0]) | (y > limit[1])
    if bool(outside.any()):
        raise ValueError(
            f"{name} has a point {coords[outside][0].tolist()} outside {where}; coordinates are "
            "x, y (pass normalize_coords=False for coordinates in [0, 1], or build the predictor "
            "with check_bounds=False to allow them)"
        )
