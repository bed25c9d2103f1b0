"""The image predictor on ONNX Runtime: embed an image once, predict masks from points, boxes
and masks, with numpy and onnxruntime only (no torch).

    predictor = OnnxImagePredictor("exported/")
    predictor.set_image(rgb)                                   # uint8 (H, W, 3)
    pred = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
    pred.masks, pred.scores, pred.low_res_logits                # as sam2r.ImagePredictor

It follows `sam2r.ImagePredictor` (same preprocessing, coordinate mapping, mask selection and
post-processing); results agree with it to float rounding. One difference: a prompt with a mask
and no clicks or box is decoded with the padding point the graph always appends (as SAM's own
ONNX export does), where the torch predictor decodes it with no point tokens at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from sam2r.onnx.numpy_ops import (
    preprocess_image,
    small_components,
    stability_scores,
    to_rgb,
    upsample_bilinear,
)
from sam2r.onnx.runtime import OnnxModel


@dataclass
class OnnxImagePrediction:
    """Masks for one prompt set (M, ...) or N prompt sets (N, M, ...), M = 3 or 1."""

    masks: np.ndarray  # (M, H, W) bool, or float32 logits with return_logits
    scores: np.ndarray  # (M,) predicted IoU
    low_res_logits: np.ndarray  # (M, S/4, S/4) float32 logits clamped to +-32


def select_masks(
    masks: np.ndarray, iou: np.ndarray, multimask: bool, cfg: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The masks asked for, from the decoder's 4: (masks (N, M, h, w), iou (N, M), token (N,)).

    `token` is the index (0..3) of the mask token whose object pointer goes with the output: the
    best multimask token, or the single-mask token 0 (also when the dynamic fallback replaced
    the single mask by the best multimask output, as the model does).
    """
    n = masks.shape[0]
    rows = np.arange(n)
    best = 1 + np.argmax(iou[:, 1:], axis=1)
    if multimask:
        return masks[:, 1:], iou[:, 1:], best
    single, single_iou = masks[:, :1], iou[:, :1]
    if cfg["dynamic_multimask_via_stability"]:
        stable = stability_scores(single[:, 0], cfg["dynamic_multimask_stability_delta"])
        stable = stable >= cfg["dynamic_multimask_stability_thresh"]  # (N,)
        single = np.where(stable[:, None, None, None], single, masks[rows, best][:, None])
        single_iou = np.where(stable[:, None], single_iou, iou[rows, best][:, None])
    return single, single_iou, np.zeros(n, dtype=np.int64)


class OnnxImagePredictor:
    """Predict masks on an image with an exported model.

    Args:
        model: a folder written by `sam2r.onnx.export`, or an `OnnxModel`.
        mask_threshold: logit above which a pixel is foreground in boolean masks.
        max_hole_area: fill holes of up to this many low-res pixels (0 = off).
        max_sprinkle_area: remove specks of up to this many low-res pixels (0 = off).
        num_threads: onnxruntime intra-op threads (None: all cores).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | OnnxModel,
        mask_threshold: float = 0.0,
        max_hole_area: int = 0,
        max_sprinkle_area: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads)
        self.mask_threshold = float(mask_threshold)
        for name, v in (("max_hole_area", max_hole_area), ("max_sprinkle_area", max_sprinkle_area)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name} must be a number >= 0 (0 = off), got {v!r}")
        self.max_hole_area = int(max_hole_area)
        self.max_sprinkle_area = int(max_sprinkle_area)
        self._feats: dict[str, np.ndarray] | None = None
        self._hw: tuple[int, int] | None = None

    def set_image(self, image: np.ndarray | Image.Image) -> None:
        """Embed an image: uint8 (H, W, 3) RGB array or PIL image."""
        rgb = to_rgb(image)
        self._hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        self._feats = self.model.encode_image(preprocess_image(rgb, self.model.image_size))

    def reset(self) -> None:
        self._feats, self._hw = None, None

    def predict(
        self,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> OnnxImagePrediction:
        """Predict masks for the image set with `set_image` (arguments as
        `sam2r.ImagePredictor.predict`: (P, 2) / (N, P, 2) clicks, (4,) / (N, 4) boxes,
        (1, S/4, S/4) / (N, 1, S/4, S/4) mask logits)."""
        if self._feats is None or self._hw is None:
            raise RuntimeError("no image is set: call set_image(image) first")
        coords, labels = self._prompts(point_coords, point_labels, box, normalize_coords)
        s = self.model.image_size
        masks_in = None
        if mask_input is not None:
            masks_in = np.asarray(mask_input, dtype=np.float32)
            if masks_in.ndim == 3:
                masks_in = masks_in[None]
            if masks_in.ndim != 4 or masks_in.shape[1:] != (1, s // 4, s // 4):
                raise ValueError(
                    f"mask_input must be low-res logits of shape (1, {s // 4}, {s // 4}) or "
                    f"(N, 1, {s // 4}, {s // 4}), got {masks_in.shape}"
                )
            if coords.shape[0] == 1 and masks_in.shape[0] > 1:
                coords = np.repeat(coords, masks_in.shape[0], axis=0)
                labels = np.repeat(labels, masks_in.shape[0], axis=0)
        out = self.model.decode(
            self._feats["image_embed_no_mem"], self._feats, coords, labels, masks_in
        )
        masks, iou, _ = select_masks(out["masks"], out["iou"], multimask_output, self.model.config)
        hi = self._postprocess(masks)
        if not return_logits:
            hi = hi > self.mask_threshold
        low = np.clip(masks, -32.0, 32.0)
        if masks.shape[0] == 1:  # one prompt set: drop the leading axis
            hi, iou, low = hi[0], iou[0], low[0]
        return OnnxImagePrediction(hi, iou.astype(np.float32), low.astype(np.float32))

    def _postprocess(self, masks: np.ndarray) -> np.ndarray:
        """Holes / sprinkles on the low-res logits (found on the input, as the torch path),
        then bilinear upsampling to the image size."""
        t = self.mask_threshold
        out = masks
        n, m, h, w = masks.shape
        if self.max_hole_area > 0:
            holes = small_components((masks <= t).reshape(n * m, h, w), self.max_hole_area)
            out = np.where(holes.reshape(masks.shape), np.float32(t + 10.0), out)
        if self.max_sprinkle_area > 0:
            specks = small_components((masks > t).reshape(n * m, h, w), self.max_sprinkle_area)
            out = np.where(specks.reshape(masks.shape), np.float32(t - 10.0), out)
        assert self._hw is not None
        return upsample_bilinear(out.astype(np.float32), self._hw)

    def _prompts(
        self, point_coords: Any, point_labels: Any, box: Any, normalize: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, P, 2) coordinates in model-input pixels and (N, P) labels, boxes first as two
        points labelled 2, 3 (no prompt: an empty (1, 0) set)."""
        if (point_coords is None) != (point_labels is None):
            raise ValueError("pass point_coords and point_labels together (one label per point)")
        assert self._hw is not None
        h, w = self._hw
        scale = np.array([w, h], np.float32) if normalize else np.ones(2, np.float32)
        s = np.float32(self.model.image_size)
        coords = np.zeros((1, 0, 2), np.float32)
        labels = np.zeros((1, 0), np.int64)
        if point_coords is not None:
            coords = np.asarray(point_coords, dtype=np.float32)
            labels = np.asarray(point_labels).astype(np.int64)
            if coords.ndim == 2:
                coords = coords[None]
            if labels.ndim == 1:
                labels = labels[None]
            if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(
                    f"point_coords must be (P, 2) or (N, P, 2) with labels (P,) or (N, P), got "
                    f"{coords.shape} and {labels.shape}"
                )
            bad = set(np.unique(labels).tolist()) - {-1, 0, 1, 2, 3}
            if bad:
                raise ValueError(f"point_labels must be 1 or 0, got {sorted(bad)}")
            coords = coords / scale * s
        if box is not None:
            b = np.asarray(box, dtype=np.float32).reshape(-1, 4)
            if bool(((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any()):
                raise ValueError(f"box must be x0, y0, x1, y1 with x0 <= x1, y0 <= y1: {b}")
            corners = b.reshape(-1, 2, 2) / scale * s
            if coords.shape[0] == 1 and corners.shape[0] > 1:
                coords = np.repeat(coords, corners.shape[0], axis=0)
                labels = np.repeat(labels, corners.shape[0], axis=0)
            if coords.shape[0] != corners.shape[0]:
                raise ValueError(
                    f"{corners.shape[0]} boxes and {coords.shape[0]} point sets: give one point "
                    "set per box, or one shared by all"
                )
            box_labels = np.tile(np.array([[2, 3]], np.int64), (corners.shape[0], 1))
            coords = np.concatenate([corners, coords], axis=1)
            labels = np.concatenate([box_labels, labels], axis=1)
        return coords.astype(np.float32), labels
