"""Checking what a user passes to the video predictor, and turning it into what runs.

    frame_idx = check_frame(session, frame_idx)              # an int in range, or an error
    track = get_track(session, obj_id)                        # a known object, or an error
    pool = spill_pool(state_budget_mb, spill_dir)             # a session's RAM budget, or None

Every check raises before the session is touched, with what was given and what was expected
(`TypeError` for the wrong kind of value, `ValueError` for a value out of range).

What is left to others: checking and mapping prompts (`sam2r.predictor.video.prompts`),
`propagate`'s `max_frame_num_to_track` and frame order (`sam2r.predictor.video.order`, shared
with the ONNX tracker), everything that runs (`sam2r.predictor.video.VideoPredictor` and the
modules it calls).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from sam2r.predictor.video.ids import check_obj_id
from sam2r.predictor.video.session import ObjectTrack, VideoSession
from sam2r.predictor.video.spill import SpillPool


def check_int_at_least(name: str, value: Any, minimum: int, note: str = "") -> None:
    """A predictor argument that must be an int (not a bool) of at least `minimum`.

    Raises:
        ValueError: naming the argument, its bound (and `note`, e.g. " (0 = off)") and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{note}, got {value!r}")


def spill_pool(state_budget_mb: Any, spill_dir: str | None) -> SpillPool | None:
    """The pool that keeps a session's stored tensors within `state_budget_mb` MiB of RAM
    (None: no budget, everything stays in memory), spilling to a file in `spill_dir`."""
    if state_budget_mb is None:
        return None
    if not isinstance(state_budget_mb, (int, float)) or state_budget_mb < 0:
        raise ValueError(f"state_budget_mb must be a number >= 0 or None, got {state_budget_mb!r}")
    return SpillPool(int(state_budget_mb * 2**20), spill_dir)


def check_frame(session: VideoSession, frame_idx: Any) -> int:
    """The frame index as an int, after checking the session and that the frame exists.

    A live session also checks that the stream still holds the frame.
    """
    if not isinstance(session, VideoSession):
        raise TypeError(
            f"expected a VideoSession from init_session(), got {type(session).__name__}"
        )
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)):
        raise TypeError(f"frame_idx must be an int, got {type(frame_idx).__name__}")
    n = session.num_frames
    if not 0 <= frame_idx < n:
        raise ValueError(f"frame_idx {frame_idx} is out of range: the video has {n} frames")
    if session.live:
        session.frames.frame(int(frame_idx))  # raises for frames the stream no longer holds
    return int(frame_idx)


def get_track(session: VideoSession, obj_id: Hashable) -> ObjectTrack:
    """The track of a known object (ValueError naming the known ids otherwise)."""
    obj_id = check_obj_id(obj_id)
    if obj_id not in session.objects:
        session.obj_idx(obj_id)  # raises ValueError naming the known ids
    return session.objects[obj_id]
