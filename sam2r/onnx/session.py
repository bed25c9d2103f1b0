"""The ONNX tracker's session state and its edges: the typed session and results, checking
frame indices and prompts, and turning stored outputs into the masks handed back.

numpy only. What is left to others: the memory bank (`sam2r.onnx.bank`), running the graphs
(`sam2r.onnx.steps`), ordering the work (`sam2r.onnx.tracker`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2r.onnx.bank import State, Track
from sam2r.onnx.frames import Frames, LiveFrames
from sam2r.onnx.numpy_ops import resize_bilinear_aa, upsample_bilinear
from sam2r.predictor.video.ids import check_obj_id, unknown_id

NO_OBJ_SCORE = -1024.0  # mask logit of every pixel where the object is absent


@dataclass
class OnnxFrameResult:
    """Masks of every object on one frame (numpy)."""

    frame_idx: int
    obj_ids: list[Hashable]  # row i of `masks` belongs to obj_ids[i]
    masks: np.ndarray  # (num_obj, 1, H, W) float32 logits at video resolution (> 0: object)
    object_score_logits: np.ndarray  # (num_obj,) > 0 where present; -1024 where no output

    def binary_masks(self, threshold: float = 0.0) -> np.ndarray:
        """(num_obj, H, W) bool masks."""
        return self.masks[:, 0] > threshold


@dataclass(eq=False)
class OnnxSession:
    """One video (or stream) being segmented: frames, objects, cached image features."""

    frames: Frames | LiveFrames
    objects: dict[Hashable, Track] = field(default_factory=dict)
    live: bool = False
    maskmem_pos: np.ndarray | None = None  # (1, mem_dim, h, w), the same for every memory
    cache_size: int = 4
    features: OrderedDict[int, dict[str, np.ndarray]] = field(default_factory=OrderedDict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def memory_horizon(self) -> int:
        """The video length the bank assumes: unbounded for a stream."""
        return 1 << 30 if self.live else self.num_frames

    @property
    def obj_ids(self) -> list[Hashable]:
        return list(self.objects)

    def close(self) -> None:
        """Drop the cached image features (as `VideoSession.close`; the frames are read from
        their source on demand, so there is nothing else to release)."""
        self.features.clear()


# ------------------------------------------------------------------------------------------
def check_frame(session: OnnxSession, frame_idx: Any) -> int:
    """The frame index as an int, checked against the session (and held, for a stream)."""
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)):
        raise TypeError(f"frame_idx must be an int, got {type(frame_idx).__name__}")
    if not 0 <= frame_idx < session.num_frames:
        raise ValueError(
            f"frame_idx {frame_idx} is out of range: the video has {session.num_frames} frames"
        )
    if session.live:
        session.frames.frame(int(frame_idx))  # raises for frames no longer held
    return int(frame_idx)


def get_track(session: OnnxSession, obj_id: Any) -> Track:
    """The track of a known object (ValueError naming the known ids otherwise)."""
    obj_id = check_obj_id(obj_id)
    if obj_id not in session.objects:
        raise unknown_id(obj_id, session.objects)
    return session.objects[obj_id]


def point_prompt(
    session: OnnxSession,
    image_size: int,
    points: Any,
    labels: Any,
    box: Any,
    clear_old_points: bool,
    normalize: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(P, 2) float32 model-input coordinates and (P,) int64 labels, box corners first."""
    if (points is None) != (labels is None):
        raise ValueError("points and labels must be given together (one label per point)")
    if points is None and box is None:
        raise ValueError("give points and labels, a box, or both")
    coords = np.zeros((0, 2), np.float32)
    labs = np.zeros((0,), np.int64)
    if points is not None:
        coords = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        labs = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labs) != len(coords) or len(coords) == 0:
            raise ValueError(
                f"{len(coords)} points and {len(labs)} labels: give one label per point"
            )
    if box is not None:
        if not clear_old_points:
            raise ValueError("a box must be the first prompt of a frame: clear_old_points")
        b = np.asarray(box, dtype=np.float32).reshape(2, 2)
        coords = np.concatenate([b, coords])
        labs = np.concatenate([np.array([2, 3], np.int64), labs])
    if normalize:
        h, w = session.frames.hw
        coords = coords / np.array([w, h], np.float32)
    return (coords * np.float32(image_size)).astype(np.float32), labs


def frame_result(
    session: OnnxSession, frame_idx: int, states: list[State | None], non_overlap: bool
) -> OnnxFrameResult:
    """Upsample each object's low-res logits to the video size (-1024 without output)."""
    h, w = session.frames.hw
    n = len(states)
    masks = np.full((n, 1, h, w), NO_OBJ_SCORE, np.float32)
    scores = np.full((n,), NO_OBJ_SCORE, np.float32)
    rows = [i for i, s in enumerate(states) if s is not None]
    if rows:
        low = np.concatenate([states[i].low_res for i in rows])  # type: ignore[union-attr]
        if low.shape[-2:] != (h, w):
            low = upsample_bilinear(low, (h, w))
        masks[rows] = low
        scores[rows] = [states[i].score for i in rows]  # type: ignore[union-attr]
    if non_overlap and n > 1:
        winner = np.argmax(masks, axis=0)[None]  # (1, 1, H, W)
        idx = np.arange(n).reshape(-1, 1, 1, 1)
        masks = np.where(winner == idx, masks, np.minimum(masks, -10.0)).astype(np.float32)
    return OnnxFrameResult(frame_idx, session.obj_ids, masks, scores)


def mask_prompt(session: OnnxSession, s: int, mask: Any) -> np.ndarray:
    """A mask prompt (H, W) at video size (or s x s) as the (1, 1, s, s) float32 model input:
    antialiased bilinear resize, then >= 0.5 (as the torch predictor)."""
    m = np.asarray(mask).astype(bool)
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2 or m.shape not in (session.frames.hw, (s, s)):
        raise ValueError(
            f"mask must have the video's size {session.frames.hw} (or ({s}, {s})), "
            f"got shape {m.shape}"
        )
    m = m.astype(np.float32)[None, None]
    if m.shape[-2:] != (s, s):
        m = (resize_bilinear_aa(m, (s, s)) >= 0.5).astype(np.float32)
    return m
