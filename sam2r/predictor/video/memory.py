"""Which stored frames a frame reads as memory: the memory bank's selection rules.

For a frame that is not an initial prompt, one object's memory is

* spatial memories of its conditioning (prompted) frames, all of them or the
  `max_cond_frames` closest in time, each at temporal slot 0;
* spatial memories of the `num_maskmem - 1` previous tracked frames (next frames when tracking
  in reverse), every `stride`-th frame except for the immediately preceding one, at temporal
  slots 1 (oldest) .. num_maskmem - 1 (newest);
* object pointers of the conditioning frames up to the current frame (from it, in reverse) and
  of up to `max_obj_ptrs - 1` previous frames, each with its temporal distance.

This is the selection of the official `SAM2Base._prepare_memory_conditioned_features` in
evaluation mode, written as a pure function of the stored outputs so it can be tested alone.
Turning the selection into tokens is the model's job (`SAM2Model.spatial_memory_tokens`,
`SAM2Model.pointer_tokens`); keeping the frames around is the session's. Plain Python (no
torch): the ONNX tracker plans its memory with the same functions (`sam2r.onnx.bank`); a
stored output only needs `has_memory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sam2r.predictor.video.session import FrameState


@dataclass
class MemoryPlan:
    """The stored outputs one frame reads, in the order they enter the memory."""

    spatial: list[tuple[int, FrameState]]  # (temporal slot, output): 0 for conditioning frames
    pointers: list[tuple[int, FrameState]]  # (temporal distance, output) of object pointers
    max_ptrs: int  # min(num_frames, max_obj_ptrs): normalises the pointer distances


def select_cond_frames(
    frame_idx: int, cond_frames: list[int], max_cond_frames: int
) -> tuple[list[int], list[int]]:
    """Split the conditioning frames into those read and those left out.

    With a limit (`max_cond_frames` != -1, at least 2), the closest conditioning frame before
    `frame_idx`, the closest at or after it, then the others by temporal distance are read.

    Args:
        frame_idx: the current frame.
        cond_frames: conditioning frames in the order they were stored.
        max_cond_frames: how many to read; -1 for all.

    Returns:
        (selected, unselected) frame indices; `selected` in reading order.
    """
    if max_cond_frames == -1 or len(cond_frames) <= max_cond_frames:
        return list(cond_frames), []
    if max_cond_frames < 2:
        raise ValueError(f"max_cond_frames_in_attn must be -1 or >= 2, got {max_cond_frames}")
    selected: list[int] = []
    before = [t for t in cond_frames if t < frame_idx]
    after = [t for t in cond_frames if t >= frame_idx]
    if before:
        selected.append(max(before))
    if after:
        selected.append(min(after))
    rest = sorted((t for t in cond_frames if t not in selected), key=lambda t: abs(t - frame_idx))
    selected += rest[: max_cond_frames - len(selected)]
    return selected, [t for t in cond_frames if t not in selected]


def previous_memory_frame(frame_idx: int, steps_back: int, stride: int, reverse: bool) -> int:
    """The tracked frame read `steps_back` memory slots back (1 = the immediately preceding).

    The preceding frame is always read; further slots step through multiples of `stride`,
    starting from the one nearest to `frame_idx - 2` (`frame_idx + 2` in reverse).
    """
    if steps_back == 1:
        return frame_idx + 1 if reverse else frame_idx - 1
    if reverse:
        nearest = -(-(frame_idx + 2) // stride) * stride  # ceil to a multiple of stride
        return nearest + (steps_back - 2) * stride
    nearest = ((frame_idx - 2) // stride) * stride  # floor to a multiple of stride
    return nearest - (steps_back - 2) * stride


def plan_memory(
    frame_idx: int,
    reverse: bool,
    cond_outputs: Mapping[int, FrameState],
    non_cond_outputs: Mapping[int, FrameState],
    num_frames: int,
    *,
    num_maskmem: int,
    stride: int,
    max_cond_frames: int,
    max_obj_ptrs: int,
    signed_ptr_distance: bool,
) -> MemoryPlan:
    """The memory of one object for a frame that is not an initial prompt.

    Args:
        frame_idx: the current frame.
        reverse: tracking towards earlier frames.
        cond_outputs: the object's conditioning-frame outputs, in storage order.
        non_cond_outputs: its tracked-frame outputs.
        num_frames: frames in the video (bounds the pointer search and normalises distances).
        num_maskmem: memory slots (1 for conditioning frames + num_maskmem - 1 tracked frames).
        stride: `memory_temporal_stride_for_eval`.
        max_cond_frames: `max_cond_frames_in_attn` (-1: all).
        max_obj_ptrs: `max_obj_ptrs_in_encoder`.
        signed_ptr_distance: SAM 2.1 signs the distance of conditioning-frame pointers.
    """
    selected, unselected = select_cond_frames(frame_idx, list(cond_outputs), max_cond_frames)
    left_out = {t: cond_outputs[t] for t in unselected}

    spatial: list[tuple[int, FrameState]] = [
        (0, cond_outputs[t]) for t in selected if cond_outputs[t].has_memory
    ]
    for t_pos in range(1, num_maskmem):  # oldest slot first
        t = previous_memory_frame(frame_idx, num_maskmem - t_pos, stride, reverse)
        out = non_cond_outputs.get(t)
        if out is None:
            out = left_out.get(t)  # a conditioning frame left out above still counts as recent
        if out is not None and out.has_memory:
            spatial.append((t_pos, out))

    max_ptrs = min(num_frames, max_obj_ptrs)
    sign = -1 if reverse else 1
    pointers: list[tuple[int, FrameState]] = []
    for t in selected:  # only pointers from the past (the future, in reverse)
        if (t >= frame_idx) if reverse else (t <= frame_idx):
            d = (frame_idx - t) * sign if signed_ptr_distance else abs(frame_idx - t)
            pointers.append((d, cond_outputs[t]))
    for t_diff in range(1, max_ptrs):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or t >= num_frames:
            break
        out = non_cond_outputs.get(t, left_out.get(t))
        if out is not None:
            pointers.append((t_diff, out))
    return MemoryPlan(spatial, pointers, max_ptrs)
