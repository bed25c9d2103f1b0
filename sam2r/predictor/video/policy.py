"""The rules of the opt-in memory modes, in numpy: which candidate mask a tracked frame keeps,
which frames an object remembers, what it keeps while lost, and what a frame reads.

    policy = MemoryPolicy("motion")                 # or "distractor"; the knobs as keywords
    ms = policy.new_memory(num_maskmem=7, max_obj_ptrs=16)
    predicted = policy.start_frame(ms)              # Kalman prediction, or None
    choice = policy.pick(candidates > 0, ious, predicted)
    policy.file(ms, frame_idx, choice, object_score, state)

The modes themselves are described in `sam2r.predictor.video.selection`, which drives these
rules from the torch video predictor (`MemorySelection` is a `MemoryPolicy` with the torch
adapters). The ONNX tracker (`sam2r.onnx.tracker`) drives the same rules from numpy arrays:
this module and `kalman` import numpy only, so the torch-free runtime shares them instead of
restating them. A stored output is any object (`FrameState` in torch, `sam2r.onnx.bank.State`
in the ONNX tracker); the rules only keep references to it.

What is left to others: running the heads and turning candidates into numpy (the two drivers),
the official memory (`sam2r.predictor.video.memory`, `sam2r.onnx.bank`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

import numpy as np

from sam2r.predictor.video.kalman import BoxKalman, box_iou

MEMORY_MODES = ("official", "motion", "distractor")

S = TypeVar("S")  # a stored output of one object on one frame


def candidate_boxes(masks: np.ndarray) -> np.ndarray:
    """(M, 4) float64 boxes x0, y0, x1, y1 (pixel edges) of (M, h, w) bool masks; 0s if empty."""
    m = np.asarray(masks, dtype=bool)
    rows, cols = m.any(axis=2), m.any(axis=1)  # (M, h), (M, w)
    h, w = m.shape[1:]
    y0 = np.where(rows, np.arange(h), h).min(axis=1)
    y1 = np.where(rows, np.arange(h), -1).max(axis=1) + 1
    x0 = np.where(cols, np.arange(w), w).min(axis=1)
    x1 = np.where(cols, np.arange(w), -1).max(axis=1) + 1
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float64)
    boxes[~rows.any(axis=1)] = 0.0
    return boxes


@dataclass
class Choice:
    """What `pick` saw and decided on one frame of one object."""

    index: int  # the candidate kept
    ious: np.ndarray  # (M,) predicted IoUs
    boxes: np.ndarray  # (M, 4) candidate boxes (low-res pixels)
    motion: np.ndarray | None  # (M,) IoU with the Kalman prediction; None: not trusted yet
    distractor: bool  # another candidate is good and lies apart from the kept one


@dataclass(eq=False)
class ObjectMemory(Generic[S]):
    """One object's state under an opt-in mode (all bounded)."""

    memories: deque[tuple[int, S]]  # admitted tracked frames, oldest first
    pointers: deque[tuple[int, S]]  # frames where the object was present
    distractors: deque[tuple[int, S]]  # admitted frames that showed a distractor
    absent: deque[tuple[int, S]] = field(default_factory=lambda: deque(maxlen=0))  # frames
    # since the object was lost and no frame was admitted (the newest `absent_slots`)
    kalman: BoxKalman | None = None  # motion mode only
    lost: int = 0  # consecutive frames with object score below 0
    choice: Choice | None = field(default=None, repr=False)  # of the frame being run


@dataclass(frozen=True)
class MemoryPolicy:
    """An opt-in memory mode and its thresholds.

    Args:
        mode: "motion" or "distractor" ("official" is no policy at all).
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
        absent_slots: from the frame the object is lost until a frame is admitted again, its
            newest frames (at most this many: the lost ones, then those where it is seen
            again but not admitted yet) take the place of its oldest good memories, as the
            official memory would hold them; they are forgotten as soon as a frame is
            admitted, so the object found again is remembered by its good frames at once. 6
            (every recent slot of the released configs) was best on training-split occlusion
            clips with the bundled model; 0 keeps only good memories (a hidden object is then
            often "found" on what hides it). Without the frames seen again, a model whose
            predicted IoU stays under `mask_threshold` after a re-appearance read the same
            lost frames for ever.
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
    absent_slots: int = 6

    def __post_init__(self) -> None:
        if self.mode not in MEMORY_MODES[1:]:
            raise ValueError(
                f"memory mode {self.mode!r} is not an opt-in mode; choose one of {MEMORY_MODES}"
            )
        if not 0.0 <= self.motion_weight <= 1.0:
            raise ValueError(f"motion_weight must be in [0, 1], got {self.motion_weight}")
        for name in (
            "warmup",
            "lost_patience",
            "distractor_slots",
            "distractor_gap",
            "absent_slots",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def knobs(self) -> dict[str, Any]:
        """The mode and thresholds as keywords (to build another policy class from them)."""
        return {f.name: getattr(self, f.name) for f in fields(MemoryPolicy)}

    def new_memory(self, num_maskmem: int, max_obj_ptrs: int) -> ObjectMemory[Any]:
        """An empty `ObjectMemory` bounded as the model reads: `num_maskmem - 1` memories,
        `max_obj_ptrs - 1` pointers, `distractor_slots` distractor frames, `absent_slots` lost
        frames."""
        return ObjectMemory(
            memories=deque(maxlen=max(num_maskmem - 1, 0)),
            pointers=deque(maxlen=max(max_obj_ptrs - 1, 0)),
            distractors=deque(maxlen=self.distractor_slots),
            absent=deque(maxlen=self.absent_slots),
        )

    # ------------------------------------------------------------------------------------------
    # the write side: candidate choice and admission
    # ------------------------------------------------------------------------------------------
    def start_frame(self, ms: ObjectMemory[Any]) -> np.ndarray | None:
        """Start a tracked frame of the object: move its filter one frame on; returns the
        (4,) predicted box once the filter is trusted (motion mode), else None."""
        ms.choice = None
        if self.mode != "motion" or ms.kalman is None:
            return None
        predicted = ms.kalman.predict()
        return predicted if ms.kalman.updates >= self.warmup else None

    def pick(self, masks: np.ndarray, ious: np.ndarray, predicted: np.ndarray | None) -> Choice:
        """Pick one of M candidates.

        Args:
            masks: (M, h, w) bool candidate masks.
            ious: (M,) float64 predicted IoUs.
            predicted: (4,) the Kalman filter's box, or None (choose by IoU alone).
        """
        boxes = candidate_boxes(masks)
        motion = None
        score = ious
        if predicted is not None:
            motion = box_iou(boxes, predicted[None, :])
            score = (1 - self.motion_weight) * ious + self.motion_weight * motion
        best = int(np.argmax(score))
        return Choice(best, ious, boxes, motion, self._has_distractor(masks, ious, best))

    def _has_distractor(self, masks: np.ndarray, ious: np.ndarray, best: int) -> bool:
        if self.mode != "distractor" or masks.shape[0] < 2:
            return False
        flat = masks.reshape(masks.shape[0], -1)
        areas = flat.sum(axis=1)  # (M,)
        inside = (flat & flat[best]).sum(axis=1)  # (M,) pixels inside the kept mask
        for j in range(flat.shape[0]):
            if j == best or areas[j] == 0 or ious[j] < self.distractor_iou:
                continue
            if int(inside[j]) / int(areas[j]) <= self.distractor_overlap:
                return True
        return False

    def file(self, ms: ObjectMemory[S], frame_idx: int, choice: Choice, score: float, state: S):
        """File a tracked frame's output (after the heads ran): the pointer if the object is
        present, the memory if it passes the thresholds, the distractor bank if it showed one,
        the lost frames (then those not admitted) until a frame is admitted; the filter
        follows the kept box and stops after `lost_patience` frames lost."""
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
            ms.absent.clear()
            ms.memories.append((frame_idx, state))
            if choice.distractor and (
                not ms.distractors or abs(frame_idx - ms.distractors[-1][0]) >= self.distractor_gap
            ):
                ms.distractors.append((frame_idx, state))
        elif not present or ms.absent:
            # lost, or seen again but not admitted yet: read as the official memory would
            # (a no-op when absent_slots is 0)
            ms.absent.append((frame_idx, state))

    def start_pass(self, ms: ObjectMemory[Any], start: int, reverse: bool) -> None:
        """A new propagation pass visits `start` first. One that goes on where the last one
        stopped (the newest frame filed is the one just before `start` in its direction) keeps
        the mode's state, filter included, so tracking in chunks gives what one pass gives. Any
        other starts again from the prompts: the bounded state then holds the last pass's
        newest frames, far from `start` (a reverse pass after a forward one, a pass again
        from a corrected frame), which the read would take for the most recent ones."""
        step = -1 if reverse else 1
        filed = [t for q in (ms.memories, ms.pointers, ms.absent) for t, _ in q]
        newest = (min(filed) if reverse else max(filed)) if filed else None
        if newest is not None and newest == start - step:
            return
        for q in (ms.memories, ms.pointers, ms.distractors, ms.absent):
            q.clear()
        ms.kalman = None
        ms.lost = 0

    def new_pass(self, tracks: Iterable[Any], order: list[int], reverse: bool) -> None:
        """`start_pass` for every track (`.selection`, torch or ONNX) that has mode state, when
        a propagation visits the frames `order`."""
        if not order:
            return
        for track in tracks:
            if track.selection is not None:
                self.start_pass(track.selection, order[0], reverse)

    def restart(self, ms: ObjectMemory[Any], mask: np.ndarray) -> None:
        """A prompted frame passed by propagation: (re)start the filter on its (h, w) bool mask."""
        ms.lost = 0
        ms.absent.clear()
        if self.mode == "motion":
            box = candidate_boxes(mask[None])[0]
            ms.kalman = BoxKalman.start(box) if box[2] > box[0] else None

    # ------------------------------------------------------------------------------------------
    # the read side
    # ------------------------------------------------------------------------------------------
    def read(
        self,
        ms: ObjectMemory[S],
        frame_idx: int,
        reverse: bool,
        cond: Mapping[int, S],
        selected: list[int],
        has_memory: Callable[[S], bool],
        *,
        num_frames: int,
        num_maskmem: int,
        max_obj_ptrs: int,
        signed_ptr_distance: bool,
    ) -> tuple[list[tuple[int, S]], list[tuple[int, S]], int]:
        """The memory one tracked frame reads under this mode: (spatial (slot, output) list,
        pointers (distance, output) list, max_ptrs).

        Prompted frames are read as in the official plan (the `selected` ones of `cond` at
        slot 0, pointers with their signed distance); then the distractor bank (slot 0, as
        anchors); then the admitted frames, newest at slot `num_maskmem - 1` whatever their
        age, the frames filed as lost since the last of them (if any) taking the slots of the
        oldest, in time order; then the pointers of frames where the object was present,
        newest first, at their distance (capped at `max_ptrs - 1`, the furthest the model was
        trained on).
        """

        def before(t: int) -> bool:
            return t > frame_idx if reverse else t < frame_idx

        spatial: list[tuple[int, S]] = [(0, cond[t]) for t in selected if has_memory(cond[t])]
        spatial += [(0, s) for t, s in ms.distractors if before(t) and has_memory(s)]
        slots = max(num_maskmem - 1, 0)
        gone = [(t, s) for t, s in ms.absent if before(t) and has_memory(s)]
        gone = gone[max(len(gone) - slots, 0) :]
        # oldest first; appended in tracking order, sorted in case a stream was re-prompted
        recent = [(t, s) for t, s in ms.memories if before(t) and has_memory(s)]
        recent.sort(key=lambda ts: -abs(frame_idx - ts[0]))
        room = slots - len(gone)
        recent = recent[max(len(recent) - room, 0) :]
        recent = sorted(recent + gone, key=lambda ts: -abs(frame_idx - ts[0]))
        first_slot = num_maskmem - len(recent)
        spatial += [(first_slot + i, s) for i, (_, s) in enumerate(recent)]

        max_ptrs = min(num_frames, max_obj_ptrs)
        sign = -1 if reverse else 1
        pointers: list[tuple[int, S]] = []
        for t in selected:
            if (t >= frame_idx) if reverse else (t <= frame_idx):
                d = (frame_idx - t) * sign
                pointers.append((d if signed_ptr_distance else abs(d), cond[t]))
        past = [(t, s) for t, s in ms.pointers if before(t) and t not in cond]
        past.sort(key=lambda ts: -abs(frame_idx - ts[0]))
        for t, s in reversed(past[max(len(past) - (max_ptrs - 1), 0) :] if max_ptrs > 1 else []):
            pointers.append((min(abs(frame_idx - t), max(max_ptrs - 1, 1)), s))
        return spatial, pointers, max_ptrs


def make_policy(memory: str | MemoryPolicy) -> MemoryPolicy | None:
    """The policy of a `memory=` argument: None for "official", else a `MemoryPolicy`."""
    if isinstance(memory, MemoryPolicy):
        return memory
    if not isinstance(memory, str) or memory not in MEMORY_MODES:
        raise ValueError(
            f"memory must be one of {MEMORY_MODES} (or a MemoryPolicy), got {memory!r}"
        )
    return None if memory == "official" else MemoryPolicy(memory)


def memory_settings(policy: MemoryPolicy | None) -> dict[str, Any]:
    """The memory mode and its thresholds as plain values ({"mode": "official"} for None), as
    session files store them."""
    return {"mode": "official"} if policy is None else policy.knobs()


def check_memory_settings(
    saved: dict[str, Any], ours: dict[str, Any], holder: str, load_with: str, kind: str
) -> None:
    """Refuse a session file saved under another memory mode or thresholds (`ValueError` naming
    both; `holder` is "predictor" or "tracker", `load_with` the constructor call to use with
    `{mode}` in it, `kind` the policy class to name)."""
    if saved["mode"] != ours["mode"]:
        raise ValueError(
            f"the session was saved with memory={saved['mode']!r}, this {holder} uses "
            f"memory={ours['mode']!r}; the memory mode decides what every later frame reads. "
            f"Load it with {load_with.format(mode=repr(saved['mode']))}"
        )
    differ = sorted(k for k in saved.keys() | ours.keys() if saved.get(k) != ours.get(k))
    if differ:
        raise ValueError(
            f"the session was saved with memory={saved['mode']!r} and "
            + ", ".join(f"{k}={saved.get(k)!r}" for k in differ)
            + f"; this {holder} has "
            + ", ".join(f"{k}={ours.get(k)!r}" for k in differ)
            + f". Load it with a {holder} of the same {kind}"
        )


def check_mode_to_save(tracks: Iterable[Any], official: bool, holder: str, save_with: str) -> None:
    """Refuse to save, with the official memory, a session an opt-in mode tracked (its tracks'
    `selection` state would be written under memory="official"); `holder` is "predictor" or
    "tracker", `save_with` the constructor call to use."""
    if official and any(t.selection is not None for t in tracks):
        raise ValueError(
            "this session holds the state of an opt-in memory mode (memory='motion' or "
            f"'distractor') but is saved by a {holder} with memory='official'; save it with "
            f"the {save_with} that tracked it"
        )
