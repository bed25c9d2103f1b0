"""The memory bank of the ONNX tracker, in plain Python and numpy: what one object keeps per
frame and which stored frames a frame reads.

It follows the torch video predictor's bank (`sam2r.predictor.video.bank` and `.memory`, the
official `sam2==1.1.0` rules): which frames are read is planned by the torch predictor's own
plain-Python functions (`sam2r.predictor.video.memory`, `.policy`); the filing is restated
here, on this module's `Track` (those of `.bank` work on torch tensors):

* a `Track` keeps one object's prompts and `State`s per frame, in fields named as the torch
  `ObjectTrack`'s: `cond_outputs` (conditioning, prompted frames), `non_cond_outputs` (tracked
  frames), and the pending outputs of prompts made since the last propagation
  (`temp_cond_outputs` / `temp_non_cond_outputs`), which get their memory when tracking starts;
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

from sam2r.predictor.video.memory import plan_memory as official_plan
from sam2r.predictor.video.memory import select_cond_frames
from sam2r.predictor.video.policy import MemoryPolicy, ObjectMemory


@dataclass(eq=False)
class State:
    """One object's output on one frame."""

    low_res: np.ndarray  # (1, 1, S/4, S/4) float32 mask logits (after hole filling)
    obj_ptr: np.ndarray  # (C,) object pointer
    score: float  # object score logit, > 0 where the object is present
    maskmem: np.ndarray | None = None  # (mem_dim, h, w) float32 holding bfloat16 values

    @property
    def has_memory(self) -> bool:
        """Whether the memory encoder has run for this output."""
        return self.maskmem is not None


@dataclass(eq=False)
class Track:
    """Prompts and outputs of one object; frame dicts keep insertion order (conditioning
    frames are read in the order they were added)."""

    obj_id: Hashable
    points: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (P,2),(P,)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (S, S) float32 mask
    cond_outputs: dict[int, State] = field(default_factory=dict)
    non_cond_outputs: dict[int, State] = field(default_factory=dict)
    temp_cond_outputs: dict[int, State] = field(default_factory=dict)
    temp_non_cond_outputs: dict[int, State] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse
    selection: ObjectMemory[State] | None = None  # state of an opt-in memory mode, else None

    def temp_outputs(self, is_cond: bool) -> dict[int, State]:
        return self.temp_cond_outputs if is_cond else self.temp_non_cond_outputs

    def latest_output(self, frame_idx: int, is_cond: bool) -> State | None:
        """The newest output on a frame: a pending one of the given kind, else a merged one."""
        for d in (self.temp_outputs(is_cond), self.cond_outputs, self.non_cond_outputs):
            if frame_idx in d:
                return d[frame_idx]
        return None

    def prompted_frames(self) -> list[int]:
        """Frames with clicks, a box or a mask for this object, in ascending order."""
        return sorted(set(self.points) | set(self.masks))


def interaction_mode(track: Track, frame_idx: int) -> tuple[bool, bool]:
    """(initial prompt, reverse): a prompt on a frame the object was tracked on corrects it
    (reading the memory, in the direction it was tracked); elsewhere it starts afresh."""
    if frame_idx in track.tracked and track.cond_outputs:
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


def plan_memory(
    track: Track, frame_idx: int, reverse: bool, num_frames: int, cfg: dict[str, Any]
) -> Plan:
    """The memories and pointers of `track` that `frame_idx` reads (not an initial prompt), by
    the torch predictor's own rules (`sam2r.predictor.video.memory`, plain Python)."""
    plan = official_plan(
        frame_idx,
        reverse,
        track.cond_outputs,
        track.non_cond_outputs,
        num_frames,
        num_maskmem=int(cfg["num_maskmem"]),
        stride=int(cfg["memory_temporal_stride_for_eval"]),
        max_cond_frames=int(cfg["max_cond_frames_in_attn"]),
        max_obj_ptrs=int(cfg["max_obj_ptrs_in_encoder"]),
        signed_ptr_distance=bool(cfg["use_signed_tpos_enc_to_obj_ptrs"]),
    )
    return Plan(plan.spatial, plan.pointers, plan.max_ptrs)


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
    max_cond = int(cfg["max_cond_frames_in_attn"])
    chosen, _ = select_cond_frames(frame_idx, list(track.cond_outputs), max_cond)
    spatial, pointers, max_ptrs = policy.read(
        object_memory(policy, track, cfg),
        frame_idx,
        reverse,
        track.cond_outputs,
        chosen,
        lambda s: s.has_memory,
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
    track.temp_cond_outputs.pop(frame_idx, None)
    track.temp_non_cond_outputs.pop(frame_idx, None)
    out = track.cond_outputs.pop(frame_idx, None)
    if out is not None:
        track.non_cond_outputs[frame_idx] = out
        track.tracked.pop(frame_idx, None)


def clear_memory_around(track: Track, frame_idx: int, cfg: dict[str, Any]) -> None:
    """Drop tracked-frame memories near a new prompt (`clear_non_cond_mem_around_input`)."""
    r = int(cfg["memory_temporal_stride_for_eval"]) * int(cfg["num_maskmem"])
    for t in range(frame_idx - r, frame_idx + r + 1):
        track.non_cond_outputs.pop(t, None)


def prune(tracks: list[Track], frame_idx: int, cfg: dict[str, Any]) -> None:
    """Forget what no later frame of a stream can read (old tracked outputs, old marks, past
    mask prompts, clicks that corrected frames out of the window)."""
    window = max(
        int(cfg["max_obj_ptrs_in_encoder"]),
        int(cfg["num_maskmem"]) * int(cfg["memory_temporal_stride_for_eval"]) + 2,
    )
    oldest = frame_idx - window
    for track in tracks:
        for d in (track.non_cond_outputs, track.tracked):
            for t in [t for t in d if t < oldest]:
                del d[t]
        for t in [t for t in track.masks if t < frame_idx]:
            del track.masks[t]
        for t in [t for t in track.points if t < oldest and t not in track.cond_outputs]:
            del track.points[t]
