"""Checks of the clicks and boxes a page sends (pixels of the image or frame)."""

from __future__ import annotations

import math
from typing import Any

from sam2r.studio.files import StudioError


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StudioError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def check_click(x: Any, y: Any, label: Any, hw: tuple[int, int]) -> list[float]:
    """[x, y, label] of a click inside an (H, W) image; label 1 positive, 0 negative."""
    h, w = hw
    x, y = _number(x, "x"), _number(y, "y")
    if not (0 <= x <= w and 0 <= y <= h):
        raise StudioError(f"the click ({x:g}, {y:g}) is outside the {w}x{h} image")
    if label not in (0, 1) or isinstance(label, bool):
        raise StudioError(f"label must be 1 (positive) or 0 (negative), got {label!r}")
    return [x, y, int(label)]


def check_box(box: Any, hw: tuple[int, int]) -> list[float]:
    """[x0, y0, x1, y1] inside an (H, W) image, with x0 < x1 and y0 < y1."""
    h, w = hw
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise StudioError(f"a box is [x0, y0, x1, y1], got {box!r}")
    x0, y0, x1, y1 = (_number(v, "a box coordinate") for v in box)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise StudioError(
            f"the box {[x0, y0, x1, y1]} must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}"
        )
    return [x0, y0, x1, y1]
