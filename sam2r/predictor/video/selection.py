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
* re-detection (both modes): a frame whose object score is below 0 adds neither a memory nor a
  pointer; the object keeps its last good memories and pointers (and, in `motion`, the filter
  stops extrapolating after `lost_patience` such frames), so it is found again when it comes
  back instead of being remembered as absent.

Everything an object keeps is in a bounded `ObjectMemory` (deques of at most `num_maskmem - 1`
memories, `max_obj_ptrs_in_encoder - 1` pointers and `distractor_slots` distractor frames),
stored on its `ObjectTrack.selection`, so streams stay bounded: the official `prune` of old
outputs is unchanged, and these deques hold the few states they still read.

What is left to others: running the heads (`frame_step`, which calls `chooser`, `observe` and
`plan` when a mode is set), filing outputs (`bank`), the official selection (`memory`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from sam2r.predictor.video.kalman import BoxKalman, box_iou
from sam2r.predictor.video.memory import MemoryPlan, select_cond_frames
from sam2r.predictor.video.session import FrameState, ObjectTrack

if TYPE_CHECKING:
    from sam2r.config import SAM2Config
    from sam2r.model.sam2 import FrameOutput

MEMORY_MODES = ("official", "motion", "distractor")


def mask_boxes(masks: Tensor) -> np.ndarray:
    """(M, 4) float64 boxes x0, y0, x1, y1 (pixel edges) of (M, h, w) masks > 0; 0s if empty."""
    m = masks > 0
    rows, cols = m.any(dim=2), m.any(dim=1)  # (M, h), (M, w)
    h, w = m.shape[1:]
    ar_h = torch.arange(h, device=m.device)
    ar_w = torch.arange(w, device=m.device)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values + 1
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).cpu().numpy().astype(np.float64)
    boxes[~rows.any(dim=1).cpu().numpy()] = 0.0
    return boxes


@dataclass
class Choice:
    """What `chooser` saw and decided on one frame of one object."""

    index: int  # the candidate kept
    ious: np.ndarray  # (M,) predicted IoUs
    boxes: np.ndarray  # (M, 4) candidate boxes (low-res pixels)
    motion: np.ndarray | None  # (M,) IoU with the Kalman prediction; None: not trusted yet
    distractor: bool  # another candidate is good and lies apart from the kept one


@dataclass(eq=False)
class ObjectMemory:
    """One object's state under an opt-in mode (all bounded)."""

    memories: deque[tuple[int, FrameState]]  # admitted tracked frames, oldest first
    pointers: deque[tuple[int, FrameState]]  # frames where the object was present
    distractors: deque[tuple[int, FrameState]]  # admitted frames that showed a distractor
    kalman: BoxKalman | None = None  # motion mode only
    lost: int = 0  # consecutive frames with object score below 0
    choice: Choice | None = field(default=None, repr=False)  # of the frame being run


@dataclass(frozen=True)
class MemorySelection:
    """An opt-in memory mode and its thresholds.

    Args:
        mode: "motion" or "distractor" ("official" is no `MemorySelection` at all).
        motion_weight: weight of the motion score against the predicted IoU (motion mode).
        mask_threshold: a frame is remembered only if its kept mask's predicted IoU is above.
        object_threshold: ... and its object score logit is above.
        motion_threshold: ... and (motion mode, filter warm) its motion score is above.
        warmup: boxes the Kalman filter must have seen before its prediction is trusted.
        lost_patience: frames below object score 0 after which the filter stops extrapolating.
        distractor_iou: a second candidate with predicted IoU at least this ...
        distractor_overlap: ... and at most this fraction of it inside the kept mask is a
            distractor.
        distractor_slots: frames kept in the distractor bank.
        distractor_gap: frames between two entries of the distractor bank, at least.
    """

    mode: str
    motion_weight: float = 0.25
    mask_threshold: float = 0.5
    object_threshold: float = 0.0
    motion_threshold: float = 0.0
    warmup: int = 3
    lost_patience: int = 3
    distractor_iou: float = 0.5
    distractor_overlap: float = 0.3
    distractor_slots: int = 2
    distractor_gap: int = 5

    def __post_init__(self) -> None:
        if self.mode not in MEMORY_MODES[1:]:
            raise ValueError(
                f"memory mode {self.mode!r} is not an opt-in mode; choose one of {MEMORY_MODES}"
            )
        if not 0.0 <= self.motion_weight <= 1.0:
            raise ValueError(f"motion_weight must be in [0, 1], got {self.motion_weight}")
        for name in ("warmup", "lost_patience", "distractor_slots", "distractor_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    # ------------------------------------------------------------------------------------------
    # per-object state
    # ------------------------------------------------------------------------------------------
    def state(self, track: ObjectTrack, cfg: SAM2Config) -> ObjectMemory:
        """The object's `ObjectMemory`, created on first use."""
        ms = track.selection
        if ms is None:
            ms = track.selection = ObjectMemory(
                memories=deque(maxlen=max(cfg.num_maskmem - 1, 0)),
                pointers=deque(maxlen=max(cfg.max_obj_ptrs_in_encoder - 1, 0)),
                distractors=deque(maxlen=self.distractor_slots),
            )
        return ms

    # ------------------------------------------------------------------------------------------
    # the write side: candidate choice and admission
    # ------------------------------------------------------------------------------------------
    def chooser(self, track: ObjectTrack, cfg: SAM2Config) -> Callable[[Tensor, Tensor], Tensor]:
        """Start a tracked frame of the object; returns the candidate chooser for
        `SAM2Model.decode_frame(select=...)`, which records its `Choice` on the object."""
        ms = self.state(track, cfg)
        ms.choice = None
        predicted = None
        if self.mode == "motion" and ms.kalman is not None:
            predicted = ms.kalman.predict()
            if ms.kalman.updates < self.warmup:
                predicted = None

        def choose(multimasks: Tensor, iou: Tensor) -> Tensor:
            ms.choice = self.choose(multimasks[0], iou[0], predicted)
            return torch.tensor([ms.choice.index], device=iou.device)

        return choose

    def choose(self, masks: Tensor, iou: Tensor, predicted: np.ndarray | None) -> Choice:
        """Pick one of M candidates.

        Args:
            masks: (M, h, w) candidate logits (> 0: object).
            iou: (M,) predicted IoUs.
            predicted: (4,) the Kalman filter's box, or None (choose by IoU alone).
        """
        ious = iou.detach().float().cpu().numpy().astype(np.float64)
        boxes = mask_boxes(masks)
        motion = None
        score = ious
        if predicted is not None:
            motion = box_iou(boxes, predicted[None, :])
            score = (1 - self.motion_weight) * ious + self.motion_weight * motion
        best = int(np.argmax(score))
        return Choice(best, ious, boxes, motion, self._has_distractor(masks, ious, best))

    def _has_distractor(self, masks: Tensor, ious: np.ndarray, best: int) -> bool:
        if self.mode != "distractor" or masks.shape[0] < 2:
            return False
        m = masks > 0
        kept = m[best]
        for j in range(m.shape[0]):
            area = int(m[j].sum())
            if j == best or area == 0 or ious[j] < self.distractor_iou:
                continue
            inside = int((m[j] & kept).sum()) / area
            if inside <= self.distractor_overlap:
                return True
        return False

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
        score = float(out.object_score_logits.reshape(-1)[0])
        box = choice.boxes[choice.index]
        present = score > 0 and box[2] > box[0]
        motion_ok = True
        if self.mode == "motion" and choice.motion is not None:
            motion_ok = bool(choice.motion[choice.index] > self.motion_threshold)
        admit = (
            present
            and score > self.object_threshold
            and choice.ious[choice.index] > self.mask_threshold
            and motion_ok
        )
        if present:
            ms.lost = 0
            ms.pointers.append((frame_idx, state))
            if self.mode == "motion":
                if ms.kalman is None or ms.kalman.updates == 0:
                    ms.kalman = BoxKalman.start(box)
                else:
                    ms.kalman.update(box)
        else:
            ms.lost += 1
            if ms.kalman is not None and ms.lost >= self.lost_patience:
                ms.kalman.stop()
        if admit:
            ms.memories.append((frame_idx, state))
            if choice.distractor and (
                not ms.distractors or abs(frame_idx - ms.distractors[-1][0]) >= self.distractor_gap
            ):
                ms.distractors.append((frame_idx, state))

    def observe_prompt(
        self, track: ObjectTrack, frame_idx: int, state: FrameState, cfg: SAM2Config
    ) -> None:
        """A prompted frame passed by propagation: (re)start the filter on its mask."""
        del frame_idx
        ms = self.state(track, cfg)
        ms.lost = 0
        if self.mode == "motion":
            box = mask_boxes(state.low_res_masks[0])[0]
            ms.kalman = BoxKalman.start(box) if box[2] > box[0] else None

    # ------------------------------------------------------------------------------------------
    # the read side
    # ------------------------------------------------------------------------------------------
    def plan(
        self,
        frame_idx: int,
        reverse: bool,
        track: ObjectTrack,
        num_frames: int,
        cfg: SAM2Config,
    ) -> MemoryPlan:
        """The memory one tracked frame reads under this mode.

        Prompted frames are read as in the official plan (slot 0, pointers with their signed
        distance); then the distractor bank (slot 0, as anchors); then the admitted frames,
        newest at slot `num_maskmem - 1` whatever their age; then the pointers of frames where
        the object was present, newest first, at their distance (capped at `max_ptrs - 1`, the
        furthest the model was trained on).
        """
        ms = self.state(track, cfg)

        def before(t: int) -> bool:
            return t > frame_idx if reverse else t < frame_idx

        cond = track.cond_outputs
        selected, _ = select_cond_frames(frame_idx, list(cond), cfg.max_cond_frames_in_attn)
        spatial: list[tuple[int, FrameState]] = [
            (0, cond[t]) for t in selected if cond[t].has_memory
        ]
        spatial += [(0, s) for t, s in ms.distractors if before(t) and s.has_memory]
        # oldest first; appended in tracking order, sorted in case a stream was re-prompted
        recent = [(t, s) for t, s in ms.memories if before(t) and s.has_memory]
        recent.sort(key=lambda ts: -abs(frame_idx - ts[0]))
        recent = (
            recent[max(len(recent) - (cfg.num_maskmem - 1), 0) :] if cfg.num_maskmem > 1 else []
        )
        first_slot = cfg.num_maskmem - len(recent)
        spatial += [(first_slot + i, s) for i, (_, s) in enumerate(recent)]

        max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
        sign = -1 if reverse else 1
        pointers: list[tuple[int, FrameState]] = []
        for t in selected:
            if (t >= frame_idx) if reverse else (t <= frame_idx):
                d = (frame_idx - t) * sign
                pointers.append((d if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(d), cond[t]))
        past = [(t, s) for t, s in ms.pointers if before(t) and t not in cond]
        past.sort(key=lambda ts: -abs(frame_idx - ts[0]))
        for t, s in reversed(past[max(len(past) - (max_ptrs - 1), 0) :] if max_ptrs > 1 else []):
            pointers.append((min(abs(frame_idx - t), max(max_ptrs - 1, 1)), s))
        return MemoryPlan(spatial, pointers, max_ptrs)

    def reset(self, track: ObjectTrack) -> None:
        """Forget the object's mode state (a new propagation starts from its prompts)."""
        track.selection = None


def make_selection(memory: str | MemorySelection) -> MemorySelection | None:
    """The policy of a `memory=` argument: None for "official", else a `MemorySelection`."""
    if isinstance(memory, MemorySelection):
        return memory
    if not isinstance(memory, str) or memory not in MEMORY_MODES:
        raise ValueError(
            f"memory must be one of {MEMORY_MODES} (or a MemorySelection), got {memory!r}"
        )
    return None if memory == "official" else MemorySelection(memory)
