"""Opt-in memory selection: which candidate mask a tracked frame keeps, which frames it
remembers, and what an object keeps while it is lost.

    predictor = VideoPredictor(model, memory="motion")      # or "distractor"; "official" default

The official memory (`sam2r.predictor.video.memory`) reads the last `num_maskmem - 1` tracked
frames whatever they hold, and keeps the candidate mask with the best predicted IoU. SAM 2's
users see where that fails: a lost object fills the bank with "absent" frames and stays lost
when it re-appears; the mask jumps to a look-alike; fast motion picks the wrong candidate. The
two opt-in modes change the policy only, not the model (ideas from the papers, our own code):

* `motion` (SAMURAI, Yang et al. 2024): a constant-velocity Kalman filter on each object's box
  (`sam2r.predictor.video.kalman`). Among the multimask candidates of a tracked frame the one
  with the best `(1 - w) * predicted IoU + w * IoU(candidate box, predicted box)` is kept, once
  the filter has seen `warmup` boxes; a frame enters the memory only when its predicted IoU,
  object score and motion score pass thresholds.
* `distractor` (DAM4SAM, Videnovic et al. 2025): besides the recent memories, a small bank of
  frames where a distractor showed up (a second candidate with a good predicted IoU lying
  mostly outside the chosen mask) is read with the prompted frames, so the memory holds the
  target next to what it is not. Candidates are chosen as in the official code.
* re-detection (both modes): a frame whose object score is below 0 adds no pointer and no
  good memory; the object keeps its last good memories and pointers (and, in `motion`, the
  filter stops extrapolating after `lost_patience` such frames), so it is found again when it
  comes back instead of being remembered as absent only. Its newest `absent_slots` lost frames
  are read in place of the oldest good memories (so it is not "found" on what hides it
  meanwhile) and forgotten once a frame is admitted again.

The rules are numpy only (`sam2r.predictor.video.policy`, `MemoryPolicy`), shared with the
torch-free ONNX tracker; `MemorySelection` is a `MemoryPolicy` that drives them from the torch
predictor's tensors and `FrameState`s.

Everything an object keeps is in a bounded `ObjectMemory` (deques of at most `num_maskmem - 1`
memories, `max_obj_ptrs_in_encoder - 1` pointers, `distractor_slots` distractor frames and
`absent_slots` lost frames),
stored on its `ObjectTrack.selection`, so streams stay bounded: the official `prune` of old
outputs is unchanged, and these deques hold the few states they still read.

What is left to others: the rules (`policy`), running the heads (`frame_step`, which calls
`chooser`, `observe` and `plan` when a mode is set), filing outputs (`bank`), the official
selection (`memory`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from sam2r.predictor.video.memory import MemoryPlan, select_cond_frames
from sam2r.predictor.video.policy import (
    MEMORY_MODES,
    Choice,
    MemoryPolicy,
    ObjectMemory,
    candidate_boxes,
)
from sam2r.predictor.video.session import FrameState, ObjectTrack

if TYPE_CHECKING:
    from sam2r.config import SAM2Config
    from sam2r.model.sam2 import FrameOutput

__all__ = ["MEMORY_MODES", "Choice", "MemorySelection", "ObjectMemory", "make_selection"]


def mask_boxes(masks: Tensor) -> np.ndarray:
    """(M, 4) float64 boxes x0, y0, x1, y1 (pixel edges) of (M, h, w) masks > 0; 0s if empty."""
    return candidate_boxes((masks > 0).cpu().numpy())


@dataclass(frozen=True)
class MemorySelection(MemoryPolicy):
    """An opt-in memory mode and its thresholds (the knobs of `MemoryPolicy`), driven from the
    torch video predictor."""

    def state(self, track: ObjectTrack, cfg: SAM2Config) -> ObjectMemory[FrameState]:
        """The object's `ObjectMemory`, created on first use."""
        ms = track.selection
        if ms is None:
            ms = track.selection = self.new_memory(cfg.num_maskmem, cfg.max_obj_ptrs_in_encoder)
        return ms

    def chooser(self, track: ObjectTrack, cfg: SAM2Config) -> Callable[[Tensor, Tensor], Tensor]:
        """Start a tracked frame of the object; returns the candidate chooser for
        `SAM2Model.decode_frame(select=...)`, which records its `Choice` on the object."""
        ms = self.state(track, cfg)
        predicted = self.start_frame(ms)

        def choose(multimasks: Tensor, iou: Tensor) -> Tensor:
            ms.choice = self.choose(multimasks[0], iou[0], predicted)
            return torch.tensor([ms.choice.index], device=iou.device)

        return choose

    def choose(self, masks: Tensor, iou: Tensor, predicted: np.ndarray | None) -> Choice:
        """Pick one of M candidates (`MemoryPolicy.pick` on tensors).

        Args:
            masks: (M, h, w) candidate logits (> 0: object).
            iou: (M,) predicted IoUs.
            predicted: (4,) the Kalman filter's box, or None (choose by IoU alone).
        """
        ious = iou.detach().float().cpu().numpy().astype(np.float64)
        return self.pick((masks > 0).cpu().numpy(), ious, predicted)

    def observe(
        self,
        track: ObjectTrack,
        frame_idx: int,
        out: FrameOutput,
        state: FrameState,
        cfg: SAM2Config,
    ) -> None:
        """File a tracked frame's output under the mode's rules (after the heads ran)."""
        ms = self.state(track, cfg)
        choice = ms.choice
        if choice is None:  # single-mask output: the chooser was not asked
            choice = self.choose(out.low_res_masks[0], out.iou[0, :1], None)
        ms.choice = None
        self.file(ms, frame_idx, choice, float(out.object_score_logits.reshape(-1)[0]), state)

    def observe_prompt(
        self, track: ObjectTrack, frame_idx: int, state: FrameState, cfg: SAM2Config
    ) -> None:
        """A prompted frame passed by propagation: (re)start the filter on its mask."""
        del frame_idx
        self.restart(self.state(track, cfg), (state.low_res_masks[0, 0] > 0).cpu().numpy())

    def plan(
        self,
        frame_idx: int,
        reverse: bool,
        track: ObjectTrack,
        num_frames: int,
        cfg: SAM2Config,
    ) -> MemoryPlan:
        """The memory one tracked frame reads under this mode (`MemoryPolicy.read`)."""
        cond = track.cond_outputs
        selected, _ = select_cond_frames(frame_idx, list(cond), cfg.max_cond_frames_in_attn)
        spatial, pointers, max_ptrs = self.read(
            self.state(track, cfg),
            frame_idx,
            reverse,
            cond,
            selected,
            lambda s: s.has_memory,
            num_frames=num_frames,
            num_maskmem=cfg.num_maskmem,
            max_obj_ptrs=cfg.max_obj_ptrs_in_encoder,
            signed_ptr_distance=cfg.use_signed_tpos_enc_to_obj_ptrs,
        )
        return MemoryPlan(spatial, pointers, max_ptrs)


def make_selection(memory: str | MemoryPolicy) -> MemorySelection | None:
    """The policy of a `memory=` argument: None for "official", else a `MemorySelection` (a
    numpy-side `MemoryPolicy` keeps its knobs)."""
    if isinstance(memory, MemorySelection):
        return memory
    if isinstance(memory, MemoryPolicy):
        return MemorySelection(**memory.knobs())
    if not isinstance(memory, str) or memory not in MEMORY_MODES:
        raise ValueError(
            f"memory must be one of {MEMORY_MODES} (or a MemorySelection), got {memory!r}"
        )
    return None if memory == "official" else MemorySelection(memory)
