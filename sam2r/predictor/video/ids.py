"""Object ids as a video session keys them, checked the same way by the torch predictor and by
the torch-free ONNX tracker (`sam2r.onnx`): numpy only, so the runtime can import it.

What is left to others: the prompts an id comes with (`sam2r.predictor.video.prompts`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np


def check_obj_id(obj_id: Any) -> Hashable:
    """An object id as the session keys it (numpy integers become int)."""
    if isinstance(obj_id, np.integer):
        return int(obj_id)
    if obj_id is None or not isinstance(obj_id, Hashable) or isinstance(obj_id, float):
        raise TypeError(f"obj_id must be an int (or another hashable id), got {obj_id!r}")
    return obj_id


def unknown_id(obj_id: Hashable, known: Iterable[Hashable]) -> ValueError:
    """The error for an object id a session does not hold (torch and ONNX sessions)."""
    return ValueError(f"unknown object id {obj_id!r}; objects in this session: {list(known)}")


def check_ids_to_save(obj_ids: Iterable[Hashable]) -> None:
    """Session files (torch and ONNX) keep object ids that are ints or strings only (ValueError
    otherwise)."""
    for obj_id in obj_ids:
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, str)):
            raise ValueError(f"only int or str object ids can be saved, got {obj_id!r}")
