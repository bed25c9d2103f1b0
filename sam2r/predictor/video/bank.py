"""Filing each object's outputs in its memory bank: the write side of the bank.

An `ObjectTrack` keeps its outputs in four dicts (see `sam2r.predictor.video.session`): outputs of
frames prompted since the last propagation wait in `temp_cond_outputs` /
`temp_non_cond_outputs`, are committed (memories encoded) into `cond_outputs` /
`non_cond_outputs` when propagation starts, and tracked frames add to `non_cond_outputs`. This
module holds those moves, following the official `sam2==1.1.0` predictor:

* `interaction_mode` / `prompt_is_cond`: how a prompt on a frame runs and where it is filed;
* `prompt_step`: one object's output on a prompted frame, kept pending;
* `commit_prompts`: pending outputs into the bank, with their memories encoded;
* `track_step`: one object's output on a propagated frame, filed as a tracked frame;
* `clear_prompts`, `clear_memory_around`, `prune`: what is dropped, and when.

What is left to others: which stored frames a frame reads (`sam2r.predictor.video.memory`, the read
side), running the model on a frame (`sam2r.predictor.video.frame_step`), the order of frames and
objects, input checks and results (`sam2r.predictor.video.VideoPredictor`, the only caller).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor

from sam2r.config import SAM2Config
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video.frame_step import encode_mask_memory, frame_features, run_frame
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

if TYPE_CHECKING:
    from sam2r.predictor.video.selection import MemorySelection


def interaction_mode(track: ObjectTrack, frame_idx: int) -> tuple[bool, bool]:
    """(is an initial prompt, tracked in reverse) for a prompt on a frame.

    A prompt on a frame the object was tracked on corrects that frame (it reads the memory, in
    the direction the frame was tracked); on any other frame it starts like an image prompt.
    """
    if frame_idx in track.tracked and track.cond_outputs:
        return False, track.tracked[frame_idx]
    return True, False


def prompt_is_cond(track: ObjectTrack, frame_idx: int, cfg: SAM2Config) -> bool:
    """Whether a prompt on this frame makes it a conditioning frame of the object."""
    is_init, _ = interaction_mode(track, frame_idx)
    return is_init or cfg.add_all_frames_to_correct_as_cond


def prompt_step(
    model: SAM2Model,
    session: VideoSession,
    track: ObjectTrack,
    frame_idx: int,
    *,
    fill_hole_area: int,
    points: PointPrompt | None = None,
    mask: Tensor | None = None,
    prev_logits: Tensor | None = None,
    selection: MemorySelection | None = None,
) -> bool:
    """Segment a prompted frame of one object and keep the output pending until the next
    propagation (no memory is encoded yet); returns whether it is a conditioning output.

    Args:
        fill_hole_area, points, mask, prev_logits: as for `run_frame`.
        selection: the predictor's opt-in memory mode: a correction on a frame the object was
            tracked on reads the memory that mode kept in its last propagation (the official
            memory when there is none yet); the mode's state is not changed.
    """
    is_init, reverse = interaction_mode(track, frame_idx)
    is_cond = prompt_is_cond(track, frame_idx, model.cfg)
    state = run_frame(
        model,
        session,
        track,
        frame_idx,
        is_init=is_init,
        reverse=reverse,
        encode_memory=False,
        fill_hole_area=fill_hole_area,
        points=points,
        mask=mask,
        prev_logits=prev_logits,
        selection=selection if not is_init and track.selection is not None else None,
        reads_only=True,
    )
    track.temp_outputs(is_cond)[frame_idx] = state
    return is_cond


def commit_prompts(model: SAM2Model, session: VideoSession) -> None:
    """Merge pending prompt outputs into the memory bank, encoding their memories.

    The memory encoder runs here rather than on every click, so that a frame clicked many
    times is encoded once, with its final mask.

    Raises:
        RuntimeError: no object, or an object with no prompt to start tracking from.
    """
    if not session.objects:
        raise RuntimeError("no object has prompts: add points, a box or a mask first")
    for track in session.objects.values():
        if not track.cond_outputs and not track.temp_cond_outputs:
            raise RuntimeError(
                f"object {track.obj_id!r} has no prompt on an untracked frame to start from; "
                "add points, a box or a mask for it (or remove it)"
            )
    for track in session.objects.values():
        for is_cond in (False, True):
            pending = track.temp_outputs(is_cond)
            target = track.cond_outputs if is_cond else track.non_cond_outputs
            for frame_idx, state in pending.items():
                if not state.has_memory:
                    high_res = F.interpolate(
                        state.low_res_masks.to(model.device),
                        size=(session.image_size, session.image_size),
                        mode="bilinear",
                        align_corners=False,
                    )
                    feats = frame_features(model, session, frame_idx)
                    state.maskmem_features = encode_mask_memory(
                        model, session, feats, high_res, state.object_score_logits, from_points=True
                    )
                target[frame_idx] = state
                if model.cfg.clear_non_cond_mem_around_input:
                    clear_memory_around(track, frame_idx, model.cfg)
            pending.clear()
        for frame_idx in track.cond_outputs:
            track.non_cond_outputs.pop(frame_idx, None)


def track_step(
    model: SAM2Model,
    session: VideoSession,
    track: ObjectTrack,
    frame_idx: int,
    reverse: bool,
    fill_hole_area: int,
    selection: MemorySelection | None = None,
) -> FrameState:
    """One object's output on a propagated frame, marking the frame tracked.

    A prompted (conditioning) frame keeps its output; any other frame is segmented from the
    object's memory and filed as a tracked frame, with its memory encoded. An opt-in memory
    `selection` (None: official) also sees every frame (`sam2r.predictor.video.selection`).
    """
    state = track.cond_outputs.get(frame_idx)
    if state is not None:  # a prompted frame: its output is already there
        if model.cfg.clear_non_cond_mem_around_input:
            clear_memory_around(track, frame_idx, model.cfg)
        if selection is not None:
            selection.observe_prompt(track, frame_idx, state, model.cfg)
    else:
        state = run_frame(
            model,
            session,
            track,
            frame_idx,
            is_init=False,
            reverse=reverse,
            encode_memory=True,
            fill_hole_area=fill_hole_area,
            selection=selection,
        )
        track.non_cond_outputs[frame_idx] = state
    track.tracked[frame_idx] = reverse
    return state


def clear_prompts(track: ObjectTrack, frame_idx: int) -> None:
    """Forget one object's prompts and pending outputs on a frame.

    A conditioning output there is kept as a tracked frame's output.
    """
    track.points.pop(frame_idx, None)
    track.masks.pop(frame_idx, None)
    track.temp_cond_outputs.pop(frame_idx, None)
    track.temp_non_cond_outputs.pop(frame_idx, None)
    out = track.cond_outputs.pop(frame_idx, None)
    if out is not None:
        # no longer a prompted frame: keep its output as a tracked frame's
        track.non_cond_outputs[frame_idx] = out
        track.tracked.pop(frame_idx, None)


def clear_memory_around(track: ObjectTrack, frame_idx: int, cfg: SAM2Config) -> None:
    """Drop tracked-frame memories near a new prompt (they may contradict it)."""
    r = cfg.memory_temporal_stride_for_eval * cfg.num_maskmem
    for t in range(frame_idx - r, frame_idx + r + 1):
        track.non_cond_outputs.pop(t, None)


def prune(session: VideoSession, frame_idx: int, cfg: SAM2Config) -> None:
    """Drop what no later frame of a stream can read: tracked outputs out of the memory
    window, old direction marks, and mask prompts of past frames."""
    window = max(
        cfg.max_obj_ptrs_in_encoder, cfg.num_maskmem * cfg.memory_temporal_stride_for_eval + 2
    )
    oldest = frame_idx - window
    for track in session.objects.values():
        for d in (track.non_cond_outputs, track.tracked):
            for t in [t for t in d if t < oldest]:
                del d[t]
        for t in [t for t in track.masks if t < frame_idx]:
            del track.masks[t]
        for t in [t for t in track.points if t < oldest and t not in track.cond_outputs]:
            del track.points[t]  # clicks that corrected a frame out of the window
