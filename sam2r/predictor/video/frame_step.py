"""One frame of one object: read the object's memory, run the SAM heads, write its memory.

    state = run_frame(model, session, track, frame_idx, is_init=False, reverse=False,
                      encode_memory=True, fill_hole_area=8)

This is the per-frame engine of `sam2r.predictor.video.VideoPredictor`: image features come
from the session's cache (or the image encoder), the frame attends to the memories and object
pointers chosen by `sam2r.predictor.video.memory.plan_memory`, and the output is a `FrameState`
stored as the official `sam2==1.1.0` predictor stores it (bfloat16 memories, hole-filled
low-res masks). The model does the math through its public steps.

What is left to others: which frames run and in which mode, and where the returned state is
filed (`sam2r.predictor.video.tracking`, `sam2r.predictor.video.bank`); turning states into
user-facing masks (`sam2r.predictor.video.results`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sam2r.model.sam2 import ImageFeatures, SAM2Model
from sam2r.ops.masks import fill_holes_in_mask_scores
from sam2r.predictor.video.memory import plan_memory
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

if TYPE_CHECKING:
    from sam2r.predictor.video.selection import MemorySelection


def frame_features(model: SAM2Model, session: VideoSession, frame_idx: int) -> ImageFeatures:
    """The image features of a frame, from the session's cache or the image encoder."""
    feats = session.cached_features(frame_idx)
    if feats is None:
        image = session.frames.model_input(frame_idx, session.image_size)
        feats = session.precision.run(model.encode_image, image.unsqueeze(0).to(model.device))
        session.cache_features(frame_idx, feats)
    return feats


def run_frame(
    model: SAM2Model,
    session: VideoSession,
    track: ObjectTrack,
    frame_idx: int,
    *,
    is_init: bool,
    reverse: bool,
    encode_memory: bool,
    fill_hole_area: int,
    points: PointPrompt | None = None,
    mask: Tensor | None = None,
    prev_logits: Tensor | None = None,
    selection: MemorySelection | None = None,
    reads_only: bool = False,
) -> FrameState:
    """Segment one object on one frame (memory read, SAM heads, optionally memory write).

    Args:
        model: the predictor's model.
        session: the video session (features cache, storage device, spill pool).
        track: the object; its stored outputs are the memory read when not `is_init`.
        frame_idx: the frame.
        is_init: an initial prompt: the frame reads no memory (like an image prompt).
        reverse: the direction the frame is tracked in (for the memory plan).
        encode_memory: also run the memory encoder on the output (else the state has none).
        fill_hole_area: fill holes of up to this many low-res pixels (0: off).
        points: clicks and box corners, (1, P, 2) / (1, P) in model-input pixels.
        mask: a (1, 1, S, S) mask prompt, taken as the output itself.
        prev_logits: (1, 1, S/4, S/4) logits of the previous mask, refined by `points`.
        selection: an opt-in memory mode for a tracked frame (None: the official memory):
            it plans the memory read, chooses the candidate and files the output.
        reads_only: the mode only plans the memory read (a correction on a tracked frame: its
            candidate is chosen and its output filed as a prompt's).

    Returns:
        the object's `FrameState` on the frame, attached to the session's spill pool.
    """
    feats = frame_features(model, session, frame_idx)
    if mask is not None:
        out = model.mask_as_output(feats.embed, feats.high_res, mask)
    else:
        if is_init:
            pix = model.no_memory(feats)
        else:
            pix = condition_on_memory(model, session, track, feats, frame_idx, reverse, selection)
        num_points = 0 if points is None else points.labels.shape[1]
        out = model.decode_frame(
            pix,
            feats.high_res,
            None if points is None else points.coords,
            None if points is None else points.labels,
            mask_input=prev_logits,
            multimask_output=model.use_multimask(is_init, num_points),
            select=None if selection is None or reads_only else selection.chooser(track, model.cfg),
        )
    maskmem = None
    if encode_memory:
        maskmem = encode_mask_memory(
            model,
            session,
            feats,
            out.high_res_masks,
            out.object_score_logits,
            from_points=points is not None,
        )
    low_res = out.low_res_masks
    if fill_hole_area > 0:
        low_res = fill_holes_in_mask_scores(low_res, fill_hole_area)
    state = FrameState(
        low_res_masks=low_res.to(session.storage_device),
        obj_ptr=out.obj_ptr,
        object_score_logits=out.object_score_logits,
        maskmem_features=maskmem,
    ).attach(session.pool)
    if selection is not None and mask is None and not reads_only:
        selection.observe(track, frame_idx, out, state, model.cfg)
    return state


def condition_on_memory(
    model: SAM2Model,
    session: VideoSession,
    track: ObjectTrack,
    feats: ImageFeatures,
    frame_idx: int,
    reverse: bool,
    selection: MemorySelection | None = None,
) -> Tensor:
    """(1, C, h, w) features of the frame after attending to the object's memory (the
    official plan, or that of an opt-in `selection` mode)."""
    cfg, device = model.cfg, model.device
    if feats.memory_queries is None:
        # computed once per frame and cached with its features: every object starts from it
        feats = session.precision.run(model.with_memory_queries, feats)
        session.cache_features(frame_idx, feats)
    if selection is not None:
        plan = selection.plan(frame_idx, reverse, track, session.memory_horizon, cfg)
    else:
        plan = plan_memory(
            frame_idx,
            reverse,
            track.cond_outputs,
            track.non_cond_outputs,
            session.memory_horizon,
            num_maskmem=cfg.num_maskmem,
            stride=cfg.memory_temporal_stride_for_eval,
            max_cond_frames=cfg.max_cond_frames_in_attn,
            max_obj_ptrs=cfg.max_obj_ptrs_in_encoder,
            signed_ptr_distance=cfg.use_signed_tpos_enc_to_obj_ptrs,
        )
    tokens, pos = [], []
    for t_pos, state in plan.spatial:
        assert state.maskmem_features is not None and session.maskmem_pos is not None
        tok, p = model.spatial_memory_tokens(
            state.maskmem_features.to(device), session.maskmem_pos, t_pos
        )
        tokens.append(tok)
        pos.append(p)
    num_ptr_tokens = 0
    if plan.pointers:
        ptrs = torch.stack([s.obj_ptr.to(device) for _, s in plan.pointers])  # (N, 1, C)
        dist = torch.tensor([d for d, _ in plan.pointers])  # int64, as the official code
        # a one-frame video would divide the distances by 0
        tok, p = model.pointer_tokens(ptrs, dist, max(plan.max_ptrs, 2))
        tokens.append(tok)
        pos.append(p)
        num_ptr_tokens = tok.shape[1]
    memory = torch.cat(tokens, dim=1)  # (1, M, mem_dim)
    memory_pos = torch.cat(pos, dim=1)
    return session.precision.run(
        model.condition_on_memory, feats, memory, memory_pos, num_ptr_tokens
    )


def encode_mask_memory(
    model: SAM2Model,
    session: VideoSession,
    feats: ImageFeatures,
    high_res_masks: Tensor,
    object_score_logits: Tensor,
    from_points: bool,
) -> Tensor:
    """(1, mem_dim, h, w) bfloat16 memory of a mask, as the official code stores it.

    The first call of a session also stores the (shared) memory position encoding.
    """
    mem = model.encode_memory(feats.embed, high_res_masks, object_score_logits, from_points)
    if session.maskmem_pos is None:
        session.maskmem_pos = mem.pos[:1].clone()
    return mem.features.to(torch.bfloat16).to(session.storage_device)
