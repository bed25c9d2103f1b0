"""Filing each object's outputs in its memory bank, on torch tensors: the write side of the bank.

An `ObjectTrack` keeps its outputs in four dicts (see `sam2r.predictor.video.session`): outputs of
frames prompted since the last propagation wait in `temp_cond_outputs` /
`temp_non_cond_outputs`, are committed (memories encoded) into `cond_outputs` /
`non_cond_outputs` when propagation starts, and tracked frames add to `non_cond_outputs`; its
prompts per frame sit beside them (`points`, `masks`). This module runs the model for those
moves, following the official `sam2==1.1.0` predictor:

* `prompt_step`: one object's prompt on a frame, recorded, and its output, kept pending;
* `commit_prompts`: pending outputs into the bank, with their memories encoded;
* `track_step`: one object's output on a propagated frame, filed as a tracked frame.

What is left to others: the rules of the dicts themselves (`sam2r.predictor.video.filing`: how
a prompt runs and where it is filed, committing, what is dropped and when; plain Python,
shared with the ONNX tracker), which stored frames a frame reads
(`sam2r.predictor.video.memory`, the read side), running the model on a frame
(`sam2r.predictor.video.frame_step`), the order of frames and objects
(`sam2r.predictor.video.tracking` and `VideoPredictor`, the only callers), input checks
(`checks`, `prompts`) and results (`results`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video.filing import (
    FilingConfig,
    clear_memory_around,
    commit_pending,
    interaction_mode,
    prompt_is_cond,
)
from sam2r.predictor.video.frame_step import encode_mask_memory, frame_features, run_frame
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

if TYPE_CHECKING:
    from sam2r.predictor.video.selection import MemorySelection


def prompt_step(
    model: SAM2Model,
    session: VideoSession,
    track: ObjectTrack,
    frame_idx: int,
    *,
    fill_hole_area: int,
    points: PointPrompt | None = None,
    append: bool = False,
    mask: Tensor | None = None,
    selection: MemorySelection | None = None,
) -> bool:
    """Record a prompt of one object on a frame, segment the frame and keep the output pending
    until the next propagation (no memory is encoded yet); returns whether it is a conditioning
    output.

    Args:
        points: clicks and / or box corners; they replace the object's clicks on the frame
            (`append`: are added after them) and its mask there, and refine the frame's
            previous output of the object when there is one.
        mask: (1, 1, S, S) mask, taken as the output itself; it replaces the clicks.
        fill_hole_area: as for `run_frame`.
        selection: the predictor's opt-in memory mode: a correction on a frame the object was
            tracked on reads the memory that mode kept in its last propagation (the official
            memory when there is none yet); the mode's state is not changed.
    """
    cfg = FilingConfig.of(model.cfg)
    prev_logits = None
    if mask is not None:
        track.masks[frame_idx] = mask
        track.points.pop(frame_idx, None)
    elif points is not None:
        old = track.points.get(frame_idx)
        if append and old is not None:
            points = PointPrompt(
                torch.cat([old.coords, points.coords], dim=1),
                torch.cat([old.labels, points.labels], dim=1),
            )
        track.points[frame_idx] = points
        track.masks.pop(frame_idx, None)
        # refine the frame's previous mask of this object with the new clicks
        prev = track.latest_output(frame_idx, prompt_is_cond(track, frame_idx, cfg))
        if prev is not None:
            prev_logits = torch.clamp(prev.low_res_masks.to(model.device), -32.0, 32.0)
    is_init, reverse = interaction_mode(track, frame_idx)
    is_cond = prompt_is_cond(track, frame_idx, cfg)
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
        selection=selection if track.selection is not None else None,  # unread when is_init
        reads_only=True,
    )
    track.temp_outputs(is_cond)[frame_idx] = state
    return is_cond


def commit_prompts(model: SAM2Model, session: VideoSession) -> None:
    """Merge pending prompt outputs into the memory bank, encoding their memories
    (`sam2r.predictor.video.filing.commit_pending`, with the model's memory encoder).

    Raises:
        RuntimeError: no object, or an object with no prompt to start tracking from.
    """

    def encode(frame_idx: int, state: FrameState) -> None:
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

    commit_pending(session.objects.values(), encode, FilingConfig.of(model.cfg))


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
            clear_memory_around(track, frame_idx, FilingConfig.of(model.cfg))
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
