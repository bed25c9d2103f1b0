"""From the stored outputs of a frame to the `FrameResult` handed to users.

    result = frame_result(session, frame_idx, states, device=device, non_overlap=False)
    result.masks  # (num_obj, 1, H, W) logits at video resolution, -1024 where an object has none

The session stores each object's low-res (S/4) mask logits; a result gathers every object's on
one frame, upsamples them to the video size and, when asked, keeps only the highest-scoring
object at each pixel (the official `_apply_non_overlapping_constraints`). `label_map` turns a
result into one map of object ids (DAVIS PNGs, overlays).

What is left to others: producing the states (`sam2r.predictor.video.frame_step`), choosing which
state of each object a frame reports (`ObjectTrack.latest_output`, `sam2r.predictor.video`),
the `FrameResult` dataclass (`sam2r.predictor.video.session`).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.model.sam2 import NO_OBJ_SCORE
from sam2r.predictor.video.session import FrameResult, FrameState, VideoSession


def frame_result(
    session: VideoSession,
    frame_idx: int,
    states: list[FrameState | None],
    *,
    device: torch.device,
    non_overlap: bool,
) -> FrameResult:
    """Upsample the low-res masks to the video size (-1024 for objects without output).

    Args:
        session: the session (video size, object ids).
        frame_idx: the frame the states belong to.
        states: one per object of `session.obj_ids` (in that order), None where the object has
            no output on the frame; an empty list gives a result without objects.
        device: where the result's tensors go.
        non_overlap: apply `non_overlapping` to the masks.

    Returns:
        masks (N, 1, H, W) float32 logits and object scores (N,) of every object.
    """
    h, w = session.frames.hw
    n = len(states)
    masks = torch.full((n, 1, h, w), NO_OBJ_SCORE, dtype=torch.float32, device=device)
    scores = torch.full((n,), NO_OBJ_SCORE, dtype=torch.float32, device=device)
    rows = [i for i, s in enumerate(states) if s is not None]
    if rows:
        low = torch.cat([states[i].low_res_masks.to(device) for i in rows])  # type: ignore[union-attr]
        if low.shape[-2:] != (h, w):
            low = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        masks[rows] = low
        scores[rows] = torch.cat(
            [states[i].object_score_logits.to(device).view(1) for i in rows]  # type: ignore[union-attr]
        ).float()
    if non_overlap:
        masks = non_overlapping(masks)
    return FrameResult(frame_idx, session.obj_ids, masks, scores)


def non_overlapping(masks: Tensor) -> Tensor:
    """Keep only the highest-scoring object at each pixel: (N, 1, H, W) logits -> same shape.

    Other objects' logits there are lowered to at most -10 (the official
    `_apply_non_overlapping_constraints`).
    """
    if masks.shape[0] <= 1:
        return masks
    winner = torch.argmax(masks, dim=0, keepdim=True)  # (1, 1, H, W)
    rows = torch.arange(masks.shape[0], device=masks.device).view(-1, 1, 1, 1)
    return torch.where(winner == rows, masks, torch.clamp(masks, max=-10.0))


def label_map(masks: Tensor, scores: Tensor, obj_ids: list[Hashable]) -> np.ndarray:
    """(N, 1, H, W) logits, (N,) object scores -> (H, W) uint8 object ids (0: none).

    An object is drawn where its logit is > 0 and its object score is > 0; where several are,
    the one with the highest logit wins.
    """
    n, _, h, w = masks.shape
    if n == 0:
        return np.zeros((h, w), np.uint8)
    logits = masks[:, 0].float()  # (N, H, W)
    present = (logits > 0) & (scores.view(-1, 1, 1) > 0)
    best = torch.where(present, logits, torch.full_like(logits, -torch.inf)).argmax(0)
    ids = torch.tensor([int(i) for i in obj_ids], device=logits.device)
    labels = torch.where(present.any(0), ids[best], torch.zeros_like(best))
    return labels.to(torch.uint8).cpu().numpy()
