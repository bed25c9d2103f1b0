"""Tracking every object across frames: a propagation pass over a video, the next frame of a
live stream, and dropping what tracking produced.

    order = start_propagation(model, session, start, max_frames, reverse, selection)
    tracks = list(session.objects.values())
    for frame_idx in order:
        states = track_frame(model, session, tracks, frame_idx, reverse, fill_hole_area, selection)

Every object runs on every frame in the session's object order, each from its own memory
(`bank.track_step`), so objects never change each other's masks. The prompts given since the
last pass are committed (their memories encoded) before its first frame, and an opt-in memory
mode starts each pass from the prompts alone. A live stream commits before each frame and then
forgets what no later frame can read (`filing.prune`), so it runs in constant memory.

These functions change the session and return each frame's `FrameState`s, one per object;
`VideoPredictor` turns them into the masks it hands back (`results`).

What is left to others: one object on one frame and where its output is filed (`bank`,
`frame_step`, `filing`), checking the arguments (`checks`, `order`) and the order of frames
(`order`), the public methods and their results (`VideoPredictor`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from sam2r.io.frames import LiveFrames
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video.bank import commit_prompts, track_step
from sam2r.predictor.video.checks import check_frame
from sam2r.predictor.video.filing import FilingConfig, prune
from sam2r.predictor.video.order import check_max_frames, propagation_order
from sam2r.predictor.video.session import FrameState, ObjectTrack, VideoSession

if TYPE_CHECKING:
    from sam2r.predictor.video.selection import MemorySelection


def start_propagation(
    model: SAM2Model,
    session: VideoSession,
    start_frame_idx: int | None,
    max_frame_num_to_track: int | None,
    reverse: bool,
    selection: MemorySelection | None,
) -> list[int]:
    """Check a pass's arguments, commit the pending prompts and return the frames to visit.

    Args:
        start_frame_idx, max_frame_num_to_track, reverse: as for `VideoPredictor.propagate`
            (unchecked).
        selection: the predictor's opt-in memory mode (None: official); every object's mode
            state goes on or starts again (`MemoryPolicy.start_pass`).
    """
    if start_frame_idx is not None:
        start_frame_idx = check_frame(session, start_frame_idx)
    check_max_frames(max_frame_num_to_track)
    with torch.inference_mode():
        commit_prompts(model, session)
    order = propagation_order(session, start_frame_idx, max_frame_num_to_track, reverse)
    if selection is not None:
        selection.new_pass(session.objects.values(), order, reverse)
    return order


def track_frame(
    model: SAM2Model,
    session: VideoSession,
    tracks: list[ObjectTrack],
    frame_idx: int,
    reverse: bool,
    fill_hole_area: int,
    selection: MemorySelection | None,
) -> list[FrameState]:
    """Every object's output on one frame of a pass, in `tracks` order.

    Args:
        tracks: the session's objects when the pass started; a pass refuses to go on once an
            object was added or removed (`RuntimeError`), as the results' rows would shift.
        fill_hole_area, selection: the predictor's (see `VideoPredictor`).
    """
    if list(session.objects.values()) != tracks:  # tracks compare by identity
        raise RuntimeError(
            "objects were added or removed while propagating; call propagate() again"
        )
    return [
        track_step(model, session, track, frame_idx, reverse, fill_hole_area, selection)
        for track in tracks
    ]


def track_live(
    model: SAM2Model,
    session: VideoSession,
    frame: Any,
    fill_hole_area: int,
    selection: MemorySelection | None,
) -> tuple[int, list[FrameState]]:
    """Append the next frame of a live session and track every object on it.

    Returns:
        the new frame's index and every object's output on it (none while the session has no
        object); the outputs no later frame can read are dropped.
    """
    if not isinstance(session, VideoSession) or not session.live:
        raise ValueError(
            "track() takes a live session from init_stream(); use propagate() for videos"
        )
    frames = session.frames
    assert isinstance(frames, LiveFrames)
    frame_idx = frames.append(frame)
    if not session.objects:
        return frame_idx, []
    commit_prompts(model, session)
    tracks = list(session.objects.values())
    states = track_frame(model, session, tracks, frame_idx, False, fill_hole_area, selection)
    prune(tracks, frame_idx, FilingConfig.of(model.cfg))
    return frame_idx, states


def clear_tracking(session: VideoSession) -> list[int]:
    """Drop every object's tracked-frame outputs and opt-in mode state; objects, prompts and
    the outputs of prompted frames stay.

    Returns:
        the frames that still hold an output of some object, ascending.
    """
    for track in session.objects.values():
        track.non_cond_outputs.clear()
        track.tracked.clear()
        track.selection = None
    return sorted(
        {
            f
            for t in session.objects.values()
            for d in (t.cond_outputs, t.temp_cond_outputs, t.temp_non_cond_outputs)
            for f in d
        }
    )
