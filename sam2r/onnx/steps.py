"""One frame of the ONNX tracker, graph by graph: the image features (cached in the session),
the prompt decoder with the choice among its candidates, a mask prompt taken as the output,
memory attention over a planned read, and the memory encoder with the bfloat16 rounding of
what it stores. Each function is one step of `SAM2Model` (named in its docstring) on the
exported graphs, and takes the model and what it feeds the graph explicitly.

numpy + onnxruntime only (no torch). What is left to others: which stored frames a frame reads
(`sam2r.onnx.bank`), what is run on which frame and where each output is filed
(`sam2r.onnx.tracker`), the rules of the opt-in memory modes (`sam2r.predictor.video.policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sam2r.onnx.bank import Plan, Track, object_memory
from sam2r.onnx.image import select_masks
from sam2r.onnx.numpy_ops import preprocess_frame, resize_bilinear_aa, to_bfloat16
from sam2r.onnx.runtime import OnnxModel
from sam2r.onnx.session import NO_OBJ_SCORE, OnnxSession
from sam2r.predictor.video.policy import Choice, MemoryPolicy

# (B, M, h, w) candidate logits, (B, M) predicted IoUs -> (B,) indices of the candidates kept
Selector = Callable[[np.ndarray, np.ndarray], np.ndarray]


def no_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompts of n objects without clicks: (n, 1, 2) zero coordinates and (n, 1) labels -1,
    the padding point the decoder graph reads in place of a click."""
    return np.zeros((n, 1, 2), np.float32), -np.ones((n, 1), np.int64)


def features(model: OnnxModel, session: OnnxSession, frame_idx: int) -> dict[str, np.ndarray]:
    """The image encoder's outputs for one frame (`OnnxModel.encode_image`), from the session's
    cache of the `cache_size` most recently used frames or computed and cached."""
    feats = session.features.get(frame_idx)
    if feats is None:
        x = preprocess_frame(session.frames.frame(frame_idx), model.image_size)
        feats = model.encode_image(x)
        session.features[frame_idx] = feats
        while len(session.features) > session.cache_size:
            session.features.popitem(last=False)
    session.features.move_to_end(frame_idx)
    return feats


def multimask(cfg: dict[str, Any], is_init: bool, num_points: int) -> bool:
    """Whether the decoder outputs several candidates (`SAM2Model`'s multimask rule): on an
    initial prompt, or on every frame with `multimask_output_for_tracking`, for a number of
    clicks within the config's bounds."""
    return bool(
        cfg["multimask_output_in_sam"]
        and (is_init or cfg["multimask_output_for_tracking"])
        and cfg["multimask_min_pt_num"] <= num_points <= cfg["multimask_max_pt_num"]
    )


def decode(
    model: OnnxModel,
    pix: np.ndarray,
    feats: dict[str, np.ndarray],
    coords: np.ndarray,
    labels: np.ndarray,
    mask_input: np.ndarray | None,
    multimask: bool,
    select: Selector | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`SAM2Model.decode_frame` for B objects: low-res logits (B, 1, S/4, S/4) (-1024 where
    the object is absent), pointers (B, C), object scores (B, 1), and the predicted IoUs
    (B, M) of the M candidates (M = 1 without `multimask`). With `multimask`, `select`
    picks the candidate kept instead of the best predicted IoU."""
    out = model.decode(pix, feats, coords, labels, mask_input)
    masks, iou, token = select_masks(out["masks"], out["iou"], multimask, model.config)
    score = out["object_score_logits"]
    masks = np.where((score > 0)[:, :, None, None], masks, np.float32(NO_OBJ_SCORE))
    rows = np.arange(masks.shape[0])
    if multimask:
        best = np.argmax(iou, axis=1) if select is None else select(masks, iou)
        masks = masks[rows, best][:, None]
        token = best + 1  # the multimask tokens follow the single-mask token 0
    return masks.astype(np.float32), out["obj_ptr"][rows, token], score, iou


def mask_as_output(
    model: OnnxModel, feats: dict[str, np.ndarray], mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`SAM2Model.mask_as_output`: a (1, 1, S, S) mask prompt as the output (+-10 logits)."""
    side = model.image_size // 4
    low = resize_bilinear_aa(mask * np.float32(20.0) - np.float32(10.0), (side, side))
    coords, labels = no_points(1)
    small = model.mask_downsample(mask)
    _, ptr, _, _ = decode(model, feats["image_embed"], feats, coords, labels, small, False)
    present = np.float32(1.0 if bool((mask > 0).any()) else 0.0)
    ptr = present * ptr + (1 - present) * model.no_obj_ptr
    score = np.array([[20.0 * present - 10.0]], np.float32)
    return low.astype(np.float32), ptr.astype(np.float32), score


def condition(
    model: OnnxModel, session: OnnxSession, feats: dict[str, np.ndarray], plans: list[Plan]
) -> np.ndarray:
    """(B, C, h, w) features after memory attention, for B plans of the same layout."""
    assert session.maskmem_pos is not None
    first = plans[0]
    memory = np.stack([np.stack([s.maskmem for _, s in p.spatial]) for p in plans])
    slots = np.array([t for t, _ in first.spatial], np.int64)
    c = model.hidden_dim
    if first.pointers:
        ptrs = np.stack([np.stack([s.obj_ptr for _, s in p.pointers]) for p in plans])
    else:
        ptrs = np.zeros((len(plans), 0, c), np.float32)
    max_ptrs = max(first.max_ptrs, 2)  # a one-frame video would divide by 0
    dist = np.array([d for d, _ in first.pointers], np.float32) / np.float32(max_ptrs - 1)
    return model.attend_memory(feats, memory, session.maskmem_pos, slots, ptrs, dist)


def encode(
    model: OnnxModel,
    session: OnnxSession,
    feats: dict[str, np.ndarray],
    low_res: np.ndarray,
    score: np.ndarray,
    from_points: bool,
) -> np.ndarray:
    """(B, mem_dim, h, w) memories of B masks, rounded to bfloat16 as the official code
    stores them; the first call keeps the shared position encoding."""
    mem, pos = model.encode_memory(feats, low_res, score, from_points)
    if session.maskmem_pos is None:
        session.maskmem_pos = pos
    return to_bfloat16(mem)


def chooser(
    policy: MemoryPolicy,
    tracks: list[Track],
    choices: list[Choice | None],
    cfg: dict[str, Any],
) -> Selector:
    """Start a tracked frame of B objects (their Kalman filters move on); returns the
    candidate selector for `decode`, which records each object's `Choice` in `choices`."""
    predicted = [policy.start_frame(object_memory(policy, t, cfg)) for t in tracks]

    def select(masks: np.ndarray, iou: np.ndarray) -> np.ndarray:
        for j, box in enumerate(predicted):
            choices[j] = policy.pick(masks[j] > 0, iou[j].astype(np.float64), box)
        return np.array([c.index for c in choices if c is not None], np.int64)

    return select
