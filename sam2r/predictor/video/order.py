"""The frames a propagation pass visits: one rule for the torch video predictor and the ONNX
tracker.

    check_max_frames(max_frame_num_to_track)        # before the session is touched
    ...                                             # the caller commits its pending prompts
    order = propagation_order(session, start, max_frame_num_to_track, reverse)

The rule is the official `propagate_in_video`'s: from the start frame (by default the earliest
conditioning frame of any object) to the last frame, or to frame 0 when reversing, visiting at
most `max_frame_num_to_track` frames after the first.

Plain Python (no torch, no numpy), so the torch-free ONNX runtime imports it. A session is
anything with `num_frames` and `objects` (tracks with `cond_outputs`): `VideoSession` in torch,
`sam2r.onnx.session.OnnxSession` in the ONNX tracker.

What is left to others: checking the start frame against a session (`check_frame` in
`sam2r.predictor.video.checks` and `sam2r.onnx.session`, which know their session's frames),
committing the prompts (`sam2r.predictor.video.filing.commit_pending`), running the frames.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from numbers import Integral
from typing import Any, Protocol

from sam2r.predictor.video.filing import FiledTrack


class Propagated(Protocol):
    """A session a pass runs over (`VideoSession`, `OnnxSession`)."""

    @property
    def num_frames(self) -> int: ...

    @property
    def objects(self) -> Mapping[Hashable, FiledTrack[Any]]: ...


def check_max_frames(max_frame_num_to_track: Any) -> None:
    """`propagate`'s `max_frame_num_to_track`: an int >= 0 or None (ValueError otherwise)."""
    if max_frame_num_to_track is not None and (
        isinstance(max_frame_num_to_track, bool)
        or not isinstance(max_frame_num_to_track, Integral)
        or max_frame_num_to_track < 0
    ):
        raise ValueError(
            f"max_frame_num_to_track must be an int >= 0 or None, got {max_frame_num_to_track!r}"
        )


def propagation_order(
    session: Propagated,
    start_frame_idx: int | None,
    max_frame_num_to_track: int | None,
    reverse: bool,
) -> list[int]:
    """The frames a propagation visits, in order (empty when reversing from frame 0).

    Args:
        session: a session whose prompts are committed (`cond_outputs` filled).
        start_frame_idx: first frame, already checked against the session (None: the earliest
            conditioning frame).
        max_frame_num_to_track: visit this many frames after the first, checked by
            `check_max_frames` (None: all).
        reverse: towards the first frame.
    """
    if start_frame_idx is None:
        start_frame_idx = min(t for tr in session.objects.values() for t in tr.cond_outputs)
    n = session.num_frames
    span = n if max_frame_num_to_track is None else int(max_frame_num_to_track)
    if reverse:
        end = max(start_frame_idx - span, 0)
        return list(range(start_frame_idx, end - 1, -1)) if start_frame_idx > 0 else []
    end = min(start_frame_idx + span, n - 1)
    return list(range(start_frame_idx, end + 1))
