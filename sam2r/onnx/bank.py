"""The memory bank of the ONNX tracker, in plain Python and numpy: what one object keeps per
frame and which stored frames a frame reads.

It follows the torch video predictor's bank (`sam2r.predictor.video.bank` and `.memory`, the
official `sam2==1.1.0` rules), restated here because those modules import torch:

* a `Track` keeps one object's prompts and `State`s per frame: `cond` (conditioning, prompted
  frames), `non_cond` (tracked frames), and the pending outputs of prompts made since the last
  propagation (`temp_cond` / `temp_non_cond`), which get their memory when tracking starts;
* `plan_memory`: the spatial memories (conditioning frames at temporal slot 0, the last
  `num_maskmem - 1` tracked frames at slots 1..) and object pointers (with their temporal
  distances) one frame reads;
* `plan_selection`: the same under an opt-in memory mode, by the rules the torch predictor
  uses (`sam2r.predictor.video.policy`, numpy only, shared rather than restated);
* `interaction_mode`, `clear_prompts`, `prune`: how a prompt on a frame runs, what clearing
  a frame's prompts leaves, and what a stream can forget.

What is left to others: running the graphs and ordering the work (`sam2r.onnx.tracker`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2r.predictor.video.policy import MemoryPolicy, ObjectMemory


@dataclass(eq=False)
class State:
    """One object's output on one frame."""

    low_res: np.ndarray  # (1, 1, S/4, S/4) float32 mask logits (after hole filling)
    obj_ptr: np.ndarray  # (C,) object pointer
    score: float  # object score logit, > 0 where the object is present
    maskmem: np.ndarray | None = None  # (mem_dim, h, w) float32 holding bfloat16 values


@dataclass(eq=False)
class Track:
    """Prompts and outputs of one object; frame dicts keep insertion order (conditioning
    frames are read in the order they were added)."""

    obj_id: Hashable
    points: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (P,2),(P,)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (S, S) float32 mask
    cond: dict[int, State] = field(default_factory=dict)
    non_cond: dict[int, State] = field(default_factory=dict)
    temp_cond: dict[int, State] = field(default_factory=dict)
    temp_non_cond: dict[int, State] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse
    selection: ObjectMemory[State] | None = None  # state of an opt-in memory mode, else None

    def temp(self, is_cond: bool) -> dict[int, State]:
        return self.temp_cond if is_cond else self.temp_non_cond

    def latest(self, frame_idx: int, is_cond: bool) -> State | None:
        """The newest output on a frame: a pending one of the given kind, else a merged one."""
        for d in (self.temp(is_cond), self.cond, self.non_cond):
            if frame_idx in d:
                return d[frame_idx]
        return None

    def prompted_frames(self) -> list[int]:
        """Frames with clicks, a box or a mask for this object, in ascending order."""
        return sorted(set(self.points) | set(self.masks))


def interaction_mode(track: Track, frame_idx: int) -> tuple[bool, bool]:
    """(initial prompt, reverse): a prompt on a frame the object was tracked on corrects it
    (reading the memory, in the direction it was tracked); elsewhere it starts afresh."""
    if frame_idx in track.tracked and track.cond:
        return False, track.tracked[frame_idx]
    return True, False


def prompt_is_cond(track: Track, frame_idx: int, cfg: dict[str, Any]) -> bool:
    is_init, _ = interaction_mode(track, frame_idx)
    return is_init or bool(cfg["add_all_frames_to_correct_as_cond"])


@dataclass
class Plan:
    """What one frame of one object reads."""

    spatial: list[tuple[int, State]]  # (temporal slot, output)
    pointers: list[tuple[int, State]]  # (temporal distance, output)
    max_ptrs: int  # normalises the distances

    def key(self) -> tuple[Any, ...]:
        """Objects with equal keys can attend in one batch."""
        return (
            tuple(t for t, _ in self.spatial),
            tuple(d for d, _ in self.pointers),
            self.max_ptrs,
        )


def _select_cond(frame_idx: int, frames: list[int], limit: int) -> tuple[list[int], list[int]]:
    """Conditioning frames read (closest before, closest at/after, then by distance) and not."""
    if limit == -1 or len(frames) <= limit:
        return list(frames), []
    chosen: list[int] = []
    before = [t for t in frames if t < frame_idx]
    after = [t for t in frames if t >= frame_idx]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    rest = sorted((t for t in frames if t not in chosen), key=lambda t: abs(t - frame_idx))
    chosen += rest[: limit - len(chosen)]
    return chosen, [t for t in frames if t not in chosen]


def _previous(frame_idx: int, steps_back: int, stride: int, reverse: bool) -> int:
    """The tracked frame `steps_back` memory slots back (1: the adjacent one)."""
    if steps_back == 1:
        return frame_idx + 1 if reverse else frame_idx - 1
    if reverse:
        return -(-(frame_idx + 2) // stride) * stride + (steps_back - 2) * stride
    return ((frame_idx - 2) // stride) * stride - (steps_back - 2) * stride


def plan_memory(
    track: Track, frame_idx: int, reverse: bool, num_frames: int, cfg: dict[str, Any]
) -> Plan:
    """The memories and pointers of `track` that `frame_idx` reads (not an initial prompt)."""
    k = int(cfg["num_maskmem"])
    chosen, left = _select_cond(frame_idx, list(track.cond), int(cfg["max_cond_frames_in_attn"]))
    left_out = {t: track.cond[t] for t in left}
    spatial = [(0, track.cond[t]) for t in chosen if track.cond[t].maskmem is not None]
    stride = int(cfg["memory_temporal_stride_for_eval"])
    for slot in range(1, k):
        t = _previous(frame_idx, k - slot, stride, reverse)
        out = track.non_cond.get(t, left_out.get(t))
        if out is not None and out.maskmem is not None:
            spatial.append((slot, out))

    max_ptrs = min(num_frames, int(cfg["max_obj_ptrs_in_encoder"]))
    signed = bool(cfg["use_signed_tpos_enc_to_obj_ptrs"])
    sign = -1 if reverse else 1
    pointers: list[tuple[int, State]] = []
    for t in chosen:
        if (t >= frame_idx) if reverse else (t <= frame_idx):
            d = (frame_idx - t) * sign if signed else abs(frame_idx - t)
            pointers.append((d, track.cond[t]))
    for step in range(1, max_ptrs):
        t = frame_idx + step if reverse else frame_idx - step
        if t < 0 or t >= num_frames:
            break
        out = track.non_cond.get(t, left_out.get(t))
        if out is not None:
            pointers.append((step, out))
    return Plan(spatial, pointers, max_ptrs)


def object_memory(policy: MemoryPolicy, track: Track, cfg: dict[str, Any]) -> ObjectMemory[State]:
    """The track's state under an opt-in memory mode, created on first use."""
    if track.selection is None:
        track.selection = policy.new_memory(
            int(cfg["num_maskmem"]), int(cfg["max_obj_ptrs_in_encoder"])
        )
    return track.selection


def plan_selection(
    policy: MemoryPolicy,
    track: Track,
    frame_idx: int,
    reverse: bool,
    num_frames: int,
    cfg: dict[str, Any],
) -> Plan:
    """`plan_memory` under an opt-in memory mode (`MemoryPolicy.read`, as the torch predictor)."""
    chosen, _ = _select_cond(frame_idx, list(track.cond), int(cfg["max_cond_frames_in_attn"]))
    spatial, pointers, max_ptrs = policy.read(
        object_memory(policy, track, cfg),
        frame_idx,
        reverse,
        track.cond,
        chosen,
        lambda s: s.maskmem is not None,
        num_frames=num_frames,
        num_maskmem=int(cfg["num_maskmem"]),
        max_obj_ptrs=int(cfg["max_obj_ptrs_in_encoder"]),
        signed_ptr_distance=bool(cfg["use_signed_tpos_enc_to_obj_ptrs"]),
    )
    return Plan(spatial, pointers, max_ptrs)


def clear_prompts(track: Track, frame_idx: int) -> None:
    """Forget one object's prompts and pending outputs on a frame; a conditioning output there
    stays as a tracked frame's output (no longer marked tracked) until propagation redoes it."""
    track.points.pop(frame_idx, None)
    track.masks.pop(frame_idx, None)
    track.temp_cond.pop(frame_idx, None)
    track.temp_non_cond.pop(frame_idx, None)
    out = track.cond.pop(frame_idx, None)
    if out is not None:
        track.non_cond[frame_idx] = out
        track.tracked.pop(frame_idx, None)


def clear_memory_around(track: Track, frame_idx: int, cfg: dict[str, Any]) -> None:
    """Drop tracked-frame memories near a new prompt (`clear_non_cond_mem_around_input`)."""
    r = int(cfg["memory_temporal_stride_for_eval"]) * int(cfg["num_maskmem"])
    for t in range(frame_idx - r, frame_idx + r + 1):
        track.non_cond.pop(t, None)


def prune(tracks: list[Track], frame_idx: int, cfg: dict[str, Any]) -> None:
    """Forget what no later frame of a stream can read (old tracked outputs, old marks, past
    mask prompts, clicks that corrected frames out of the window)."""
    window = max(
        int(cfg["max_obj_ptrs_in_encoder"]),
        int(cfg["num_maskmem"]) * int(cfg["memory_temporal_stride_for_eval"]) + 2,
    )
    oldest = frame_idx - window
    for track in tracks:
        for d in (track.non_cond, track.tracked):
            for t in [t for t in d if t < oldest]:
                del d[t]
        for t in [t for t in track.masks if t < frame_idx]:
            del track.masks[t]
        for t in [t for t in track.points if t < oldest and t not in track.cond]:
            del track.points[t]
