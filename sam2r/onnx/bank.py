"""The memory bank of the ONNX tracker, in plain Python and numpy: what one object keeps per
frame and which stored frames a frame reads.

It follows the torch video predictor's bank (the official `sam2==1.1.0` rules) by sharing the
torch predictor's own plain-Python functions rather than restating them: which frames are read
(`sam2r.predictor.video.memory`, `.policy`) and how outputs are filed and dropped
(`sam2r.predictor.video.filing`). This module holds the numpy side:

* a `State` is one object's output on one frame (numpy arrays);
* a `Track` keeps one object's prompts and `State`s per frame, in the fields of the torch
  `ObjectTrack` (both are a `FiledTrack`): `cond_outputs` (conditioning, prompted frames),
  `non_cond_outputs` (tracked frames), and the pending outputs of prompts made since the last
  propagation (`temp_cond_outputs` / `temp_non_cond_outputs`), which get their memory when
  tracking starts;
* `plan_memory`: the spatial memories (conditioning frames at temporal slot 0, the last
  `num_maskmem - 1` tracked frames at slots 1..) and object pointers (with their temporal
  distances) one frame reads;
* `plan_selection`: the same under an opt-in memory mode (`sam2r.predictor.video.policy`).

What is left to others: the filing rules (`sam2r.predictor.video.filing`: how a prompt runs
and where it is filed, committing, `clear_prompts`, `prune`), running the graphs
(`sam2r.onnx.steps`) and ordering the work (`sam2r.onnx.tracker`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2r.predictor.video.filing import FiledTrack
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
class Track(FiledTrack[State]):
    """Prompts and outputs of one object; frame dicts keep insertion order (conditioning
    frames are read in the order they were added). `temp_outputs`, `latest_output` and
    `prompted_frames` come from `FiledTrack`, shared with the torch `ObjectTrack`."""

    obj_id: Hashable
    points: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (P,2),(P,)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (S, S) float32 mask
    cond_outputs: dict[int, State] = field(default_factory=dict)
    non_cond_outputs: dict[int, State] = field(default_factory=dict)
    temp_cond_outputs: dict[int, State] = field(default_factory=dict)
    temp_non_cond_outputs: dict[int, State] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse
    selection: ObjectMemory[State] | None = None  # state of an opt-in memory mode, else None


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
