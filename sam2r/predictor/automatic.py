"""Automatic mask generation ("everything" mode): segment a whole image from a grid of clicks.

`MaskGenerator` reproduces the official `SAM2AutomaticMaskGenerator` record for record:

1. crops: the whole image, plus `crop_n_layers` layers of overlapping crops (`ops.boxes`);
2. per crop: embed the crop, click every point of the layer's grid (`points_per_batch` at a
   time), keep masks with predicted IoU > `pred_iou_thresh`, optionally refine each mask once by
   prompting with it (`use_m2m`), keep masks with stability >= `stability_score_thresh`, drop
   masks whose box touches a crop edge that is not an image edge, then NMS on the boxes
   (`box_nms_thresh`, best IoU first);
3. NMS across crops preferring smaller crops (`crop_nms_thresh`), then one record per mask.

Where it differs from the official code, the outputs do not:

* the IoU filter runs *before* masks are upsampled: the model's decoder is split
  (`SAM2Model.prompt_tokens` / `masks_from_tokens`), so prompts whose masks all fail the IoU
  filter never go through the mask upscaler, and only surviving masks are upsampled to the crop;
* kept masks are held as low-resolution logits (resolution-independent memory) and upsampled
  again only for the records that survive NMS, instead of RLE-encoding every candidate;
* NMS is a vectorised pure-torch kernel (`ops.boxes`), RLEs are built for the whole batch at
  once (`ops.rle`);
* `min_mask_region_area` fills holes and removes specks of at most that many *low-resolution*
  pixels before upsampling, as the official generator asks its image predictor to do. The
  official code needs its optional CUDA extension for that and silently skips the step without
  it (its docstring's "requires opencv" describes a SAM 1 function that SAM 2 never calls);
  here it always runs, in pure torch (`ops.masks`);
* when no mask survives with `crop_n_layers > 0` the official code raises IndexError; here the
  result is an empty list.

What is left to others: the model (`sam2r.model`), mask encodings (`sam2r.ops.rle`), box
geometry (`sam2r.ops.boxes`), files (`sam2r.io.masks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.model.mask_decoder import DecoderTokens
from sam2r.model.sam2 import SAM2Model
from sam2r.ops import rle as rle_ops
from sam2r.ops.boxes import (
    batched_nms,
    box_area,
    box_xyxy_to_xywh,
    crop_boxes,
    is_box_near_crop_edge,
    layer_point_grids,
    masks_to_boxes,
)
from sam2r.ops.masks import fill_holes_and_remove_sprinkles
from sam2r.ops.transforms import preprocess_image, to_rgb_array, transform_coords
from sam2r.predictor.precision import Precision, resolve_precision

OUTPUT_MODES = ("binary", "uncompressed_rle", "coco_rle")
_MODE_ALIASES = {"binary_mask": "binary"}  # the official name
# Mask-sized work runs in pieces of about this many bytes: the upscaler and the per-pixel
# filters are memory-bound, and pieces that stay in the CPU cache run 2-3x faster than one big
# batch (it also bounds peak memory).
_PIECE_BYTES = 8 << 20


@dataclass
class MaskRecord:
    """One mask found in the image (the official record's fields, typed)."""

    segmentation: np.ndarray | dict[str, Any]  # (H, W) bool, or an RLE dict (output_mode)
    area: int  # foreground pixels
    bbox: list[float]  # x, y, w, h of the tight box (w = x1 - x0 with inclusive x1)
    predicted_iou: float  # the model's own quality estimate
    point_coords: list[list[float]]  # [[x, y]]: the click that produced the mask, image pixels
    stability_score: float  # IoU of the mask thresholded at +-stability_score_offset
    crop_box: list[float]  # x, y, w, h of the crop the mask was found in

    def to_dict(self) -> dict[str, Any]:
        """The record as the official generator returns it (the segmentation is not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Kept:
    """Masks that passed the filters: their low-res logits and per-mask data."""

    low_res: Tensor  # (K, S/4, S/4) logits (after low-res hole / speck removal)
    iou: Tensor  # (K,) float32 predicted IoU
    stability: Tensor  # (K,) float32
    points: Tensor  # (K, 2) float32 x, y of the click
    boxes: Tensor  # (K, 4) int64 x0, y0, x1, y1 (inclusive) of the thresholded mask
    crop: Tensor  # (K,) int64 index of the crop

    def take(self, idx: Tensor) -> _Kept:
        return _Kept(*(t[idx] for t in self._fields()))

    def _fields(self) -> tuple[Tensor, ...]:
        return (self.low_res, self.iou, self.stability, self.points, self.boxes, self.crop)

    @staticmethod
    def cat(parts: Sequence[_Kept]) -> _Kept:
        cols = zip(*(p._fields() for p in parts), strict=True)
        return _Kept(*(torch.cat(list(c), dim=0) for c in cols))

    @staticmethod
    def empty(side: int, device: torch.device) -> _Kept:
        """No masks (low-res side `side`)."""
        z = torch.zeros
        return _Kept(
            z(0, side, side, device=device),
            z(0, device=device),
            z(0, device=device),
            z(0, 2, device=device),
            z(0, 4, dtype=torch.int64, device=device),
            z(0, dtype=torch.int64, device=device),
        )

    def __len__(self) -> int:
        return self.iou.shape[0]


class MaskGenerator:
    """Segment everything in an image.

    Args:
        model: a `SAM2Model` (eval mode).
        points_per_side: clicks per side of the grid (points_per_side**2 in all); None when
            `point_grids` is given.
        points_per_batch: clicks run through the model at once (memory vs. speed).
        pred_iou_thresh: keep masks whose predicted IoU is > this (0 = no filter), in [0, 1].
        stability_score_thresh: keep masks whose stability score is >= this (0 = no filter).
        stability_score_offset: the logit shift of the stability score's two thresholds.
        mask_threshold: logit above which a pixel is foreground.
        box_nms_thresh: box IoU above which the worse of two masks of a crop is dropped.
        crop_n_layers: layers of crops beyond the whole image (layer i has 4**i crops).
        crop_nms_thresh: box IoU above which masks of different crops are deduplicated.
        crop_overlap_ratio: overlap of the first layer's crops, a fraction of the short side.
        crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points per side.
        point_grids: explicit grids instead of points_per_side: one (N_i, 2) array of x, y in
            [0, 1] per layer (0..crop_n_layers).
        min_mask_region_area: fill holes and remove specks of up to this many low-resolution
            pixels (0 = off).
        output_mode: "binary" ((H, W) bool arrays; "binary_mask" is accepted),
            "uncompressed_rle" or "coco_rle".
        use_m2m: refine every mask once by prompting with it and its click.
        multimask_output: 3 masks per click instead of 1.
        precision: "fp32" (default) or "bf16": the image encoder in bfloat16 where that is
            faster (see `sam2r.predictor.precision`); the decoder stays float32.
    """

    def __init__(
        self,
        model: SAM2Model,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: Sequence[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary",
        use_m2m: bool = False,
        multimask_output: bool = True,
        precision: str | Precision = "fp32",
    ) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a sam2r SAM2Model, got {type(model).__name__}")
        self.precision = resolve_precision(precision, model.device)
        self.model = model
        self.crop_n_layers = _int("crop_n_layers", crop_n_layers, 0)
        self.crop_n_points_downscale_factor = _int(
            "crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1
        )
        self.point_grids = self._grids(points_per_side, point_grids)
        self.points_per_side = points_per_side
        self.points_per_batch = _int("points_per_batch", points_per_batch, 1)
        self.pred_iou_thresh = _unit("pred_iou_thresh", pred_iou_thresh)
        self.stability_score_thresh = _unit("stability_score_thresh", stability_score_thresh)
        self.stability_score_offset = _finite("stability_score_offset", stability_score_offset)
        if self.stability_score_offset < 0:
            raise ValueError(
                f"stability_score_offset must be >= 0 (the default is 1.0), got "
                f"{stability_score_offset!r}"
            )
        self.mask_threshold = _finite("mask_threshold", mask_threshold)
        self.box_nms_thresh = _unit("box_nms_thresh", box_nms_thresh)
        self.crop_nms_thresh = _unit("crop_nms_thresh", crop_nms_thresh)
        self.crop_overlap_ratio = _finite("crop_overlap_ratio", crop_overlap_ratio)
        if not 0 <= self.crop_overlap_ratio < 1:
            raise ValueError(
                f"crop_overlap_ratio must be in [0, 1) (a fraction of the short side; default "
                f"512/1500), got {crop_overlap_ratio!r}"
            )
        if isinstance(min_mask_region_area, bool) or not (
            isinstance(min_mask_region_area, (int, float)) and min_mask_region_area >= 0
        ):
            raise ValueError(
                f"min_mask_region_area must be a number >= 0 (0 = off), got "
                f"{min_mask_region_area!r}"
            )
        self.min_mask_region_area = int(math.floor(min_mask_region_area))
        mode = _MODE_ALIASES.get(output_mode, output_mode)
        if mode not in OUTPUT_MODES:
            raise ValueError(
                f"unknown output_mode {output_mode!r}: use one of {', '.join(OUTPUT_MODES)}"
            )
        self.output_mode = mode
        self.use_m2m = bool(use_m2m)
        self.multimask_output = bool(multimask_output)

    def _grids(
        self, points_per_side: int | None, point_grids: Sequence[np.ndarray] | None
    ) -> list[np.ndarray]:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError(
                "give exactly one of points_per_side (a regular grid, e.g. 32) and point_grids "
                "(explicit points); pass points_per_side=None with point_grids"
            )
        if points_per_side is not None:
            n = _int("points_per_side", points_per_side, 1)
            smallest = int(n / self.crop_n_points_downscale_factor**self.crop_n_layers)
            if smallest < 1:
                raise ValueError(
                    f"points_per_side={n} with crop_n_points_downscale_factor="
                    f"{self.crop_n_points_downscale_factor} leaves no point in crop layer "
                    f"{self.crop_n_layers}; use more points or a smaller factor"
                )
            return layer_point_grids(n, self.crop_n_layers, self.crop_n_points_downscale_factor)
        grids = [np.asarray(g, dtype=np.float64) for g in point_grids]  # type: ignore[union-attr]
        if len(grids) < self.crop_n_layers + 1:
            raise ValueError(
                f"point_grids has {len(grids)} grid(s) but crop_n_layers={self.crop_n_layers} "
                f"needs {self.crop_n_layers + 1} (one per layer, the whole image first)"
            )
        for i, g in enumerate(grids):
            if g.ndim != 2 or g.shape[1] != 2 or g.shape[0] == 0:
                raise ValueError(f"point_grids[{i}] must have shape (N, 2), got {g.shape}")
            if not (np.isfinite(g).all() and g.min() >= 0 and g.max() <= 1):
                raise ValueError(
                    f"point_grids[{i}] must hold x, y in [0, 1] (relative to the crop), got "
                    f"values in [{g.min()}, {g.max()}]"
                )
        return grids

    # ------------------------------------------------------------------------------------------
    def generate(self, image: Any) -> list[dict[str, Any]]:
        """Masks of everything in `image` as the official records (dicts).

        Args:
            image: uint8 (H, W, 3) RGB array or a PIL image (anything `to_rgb_array` takes).

        Returns:
            one dict per mask with `segmentation`, `area`, `bbox` (x, y, w, h),
            `predicted_iou`, `point_coords`, `stability_score`, `crop_box` (x, y, w, h).
        """
        return [r.to_dict() for r in self.generate_records(image)]

    @torch.inference_mode()
    def generate_records(self, image: Any) -> list[MaskRecord]:
        """`generate` with typed `MaskRecord`s."""
        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        boxes, layers = crop_boxes((h, w), self.crop_n_layers, self.crop_overlap_ratio)
        parts = [
            self._process_crop(rgb, box, layer, i)
            for i, (box, layer) in enumerate(zip(boxes, layers, strict=True))
        ]
        kept = _Kept.cat(parts)
        if len(boxes) > 1 and len(kept) > 0:
            # duplicates between crops: prefer the mask from the smaller crop
            crop_t = torch.tensor(boxes, dtype=torch.int64, device=kept.boxes.device)
            scores = 1 / box_area(crop_t[kept.crop])
            keep = batched_nms(
                kept.boxes.float(), scores, torch.zeros_like(scores), self.crop_nms_thresh
            )
            kept = kept.take(keep)
        return self._records(kept, boxes, (h, w))

    # ------------------------------------------------------------------------------------------
    def _process_crop(self, rgb: np.ndarray, box: list[int], layer: int, index: int) -> _Kept:
        x0, y0, x1, y1 = box
        model = self.model
        if x1 <= x0 or y1 <= y0:  # tiny images give empty crops (the official code crashes)
            return _Kept.empty(model.image_size // 4, model.device)
        crop = rgb[y0:y1, x0:x1]
        crop_hw = crop.shape[:2]
        image = preprocess_image(crop, model.image_size).to(model.device)
        feats = self.precision.run(model.encode_image, image)  # bf16 mode: the encoder only
        embed = model.no_memory(feats)

        scale = np.array(crop_hw)[None, ::-1]  # (1, 2) w, h
        points = torch.as_tensor(self.point_grids[layer] * scale, dtype=torch.float32)
        points = points.to(model.device)
        parts = [
            self._process_batch(points[s : s + self.points_per_batch], embed, feats.high_res, box,
                                rgb.shape[:2], crop_hw)
            for s in range(0, points.shape[0], self.points_per_batch)
        ]  # fmt: skip
        kept = _Kept.cat(parts)
        keep = batched_nms(
            kept.boxes.float(), kept.iou, torch.zeros_like(kept.iou), self.box_nms_thresh
        )
        kept = kept.take(keep)
        offset = torch.tensor([x0, y0], device=kept.boxes.device)
        kept.boxes = kept.boxes + offset.repeat(2)
        kept.points = kept.points + offset
        kept.crop = torch.full_like(kept.crop, index)
        return kept

    def _decode(
        self,
        embed: Tensor,
        high_res: tuple[Tensor, Tensor],
        points: Tensor,
        crop_hw: tuple[int, int],
        mask_input: Tensor | None,
        multimask: bool,
        prefilter: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One click per prompt (+ a mask) -> (masks (K, S/4, S/4), iou (K,), prompt row (K,)).

        With `prefilter`, prompts none of whose possible outputs can pass the IoU filter are not
        upsampled (exact: the output IoU is always one of the 4 token IoUs considered).
        """
        model = self.model
        n = points.shape[0]
        coords = transform_coords(points, crop_hw, model.image_size)[:, None, :]  # (N, 1, 2)
        labels = torch.ones(n, 1, dtype=torch.int32, device=points.device)
        tok = model.prompt_tokens(
            embed, coords, labels, mask_input, repeat_image=n > 1, fold_projections=True
        )
        rows = torch.arange(n, device=points.device)
        if prefilter and self.pred_iou_thresh > 0:
            if multimask:
                best = tok.iou[:, 1:].amax(dim=1)
            elif model.sam_mask_decoder.dynamic_multimask_via_stability:
                best = tok.iou.amax(dim=1)  # the single mask, or the best multimask fallback
            else:
                best = tok.iou[:, 0]
            rows = rows[best > self.pred_iou_thresh]
        masks, ious = [], []
        side = model.image_size // 4
        step = _pieces(model.hidden_dim // 8 * side * side * 4)  # the upscaler's largest map
        for s in range(0, rows.shape[0], step):
            r = rows[s : s + step]
            sub = DecoderTokens(*(t[r] for t in tok))
            out = model.masks_from_tokens(sub, high_res, multimask)
            masks.append(out.masks)
            ious.append(out.iou)
        m = 3 if multimask else 1
        if not masks:
            empty = embed.new_zeros(0, side, side)
            return empty, embed.new_zeros(0), rows
        return (
            torch.cat(masks).flatten(0, 1),
            torch.cat(ious).flatten(),
            rows.repeat_interleave(m),
        )

    def _process_batch(
        self,
        points: Tensor,
        embed: Tensor,
        high_res: tuple[Tensor, Tensor],
        crop_box: list[int],
        image_hw: tuple[int, int],
        crop_hw: tuple[int, int],
    ) -> _Kept:
        """Masks of one batch of clicks (crop pixels) that pass the filters."""
        multimask = self.multimask_output
        if not self.use_m2m:
            low, iou, rows = self._decode(embed, high_res, points, crop_hw, None, multimask, True)
            pts = points[rows]
        else:
            # every candidate is refined (the IoU filter applies to the refined masks only)
            low0, _, rows0 = self._decode(embed, high_res, points, crop_hw, None, multimask, False)
            pts0 = points[rows0]
            mask_in = low0.clamp(-32.0, 32.0)[:, None]  # as the image predictor returns them
            lows, ious, pts = [], [], []
            for s in range(0, pts0.shape[0], self.points_per_batch):
                sl = slice(s, s + self.points_per_batch)
                low, iou, rows = self._decode(
                    embed, high_res, pts0[sl], crop_hw, mask_in[sl], False, True
                )
                lows.append(low)
                ious.append(iou)
                pts.append(pts0[sl][rows])
            low, iou, pts = torch.cat(lows), torch.cat(ious), torch.cat(pts)

        if self.pred_iou_thresh > 0:
            keep = iou > self.pred_iou_thresh
            low, iou, pts = low[keep], iou[keep], pts[keep]
        if self.min_mask_region_area > 0:
            area = self.min_mask_region_area
            # the image predictor's low-res post-processing, at its threshold (0, not ours)
            low = fill_holes_and_remove_sprinkles(low[:, None], area, area, 0.0)[:, 0]

        stab_parts, box_parts, keep_parts = [], [], []
        step = _pieces(crop_hw[0] * crop_hw[1] * 4)
        for s in range(0, low.shape[0], step):
            up = _upsample(low[s : s + step], crop_hw)  # (k, h, w)
            stab = self._stability(up)
            ok = stab >= self.stability_score_thresh
            if self.stability_score_thresh <= 0:
                ok = torch.ones_like(ok)
            boxes = masks_to_boxes(up[ok] > self.mask_threshold)
            stab_parts.append(stab[ok])
            box_parts.append(boxes)
            keep_parts.append(ok)
        device = points.device
        if keep_parts:
            ok = torch.cat(keep_parts)
            low, iou, pts = low[ok], iou[ok], pts[ok]
            stab, boxes = torch.cat(stab_parts), torch.cat(box_parts)
        else:
            stab = iou.new_zeros(0)
            boxes = torch.zeros(0, 4, dtype=torch.int64, device=device)
        image_box = [0, 0, image_hw[1], image_hw[0]]
        edge = is_box_near_crop_edge(boxes, crop_box, image_box)
        if edge.any():
            keep = ~edge
            low, iou, pts, stab, boxes = low[keep], iou[keep], pts[keep], stab[keep], boxes[keep]
        crop = torch.zeros(low.shape[0], dtype=torch.int64, device=device)
        return _Kept(low, iou, stab, pts, boxes, crop)

    def _stability(self, up: Tensor) -> Tensor:
        """(K, H, W) logits -> (K,) float32 #(> t + offset) / #(> t - offset); NaN when empty."""
        t, off = self.mask_threshold, self.stability_score_offset
        inter = (up > t + off).sum(dim=(1, 2))
        union = (up > t - off).sum(dim=(1, 2))
        return inter.float() / union.float()

    def _records(
        self, kept: _Kept, boxes: list[list[int]], image_hw: tuple[int, int]
    ) -> list[MaskRecord]:
        """Upsample the kept masks again (same op, same numbers) and write the records."""
        h, w = image_hw
        crops = torch.tensor(boxes, dtype=torch.int64)
        out: list[MaskRecord] = []
        step = _pieces(h * w * 4)
        for s in range(0, len(kept), step):
            part = kept.take(torch.arange(s, min(s + step, len(kept)), device=kept.iou.device))
            full = torch.zeros(len(part), h, w, dtype=torch.bool, device=part.low_res.device)
            for c in part.crop.unique().tolist():
                x0, y0, x1, y1 = boxes[c]
                sel = torch.nonzero(part.crop == c).squeeze(1)
                up = _upsample(part.low_res[sel], (y1 - y0, x1 - x0))
                full[sel, y0:y1, x0:x1] = up > self.mask_threshold
            columns = zip(
                self._encode(full),
                full.flatten(1).sum(1).tolist(),
                box_xyxy_to_xywh(part.boxes).float().tolist(),
                part.iou.tolist(),
                part.points.tolist(),
                part.stability.tolist(),
                box_xyxy_to_xywh(crops[part.crop.cpu()]).float().tolist(),
                strict=True,
            )
            for seg, area, bbox, iou, point, stability, crop_box in columns:
                out.append(MaskRecord(seg, int(area), bbox, iou, [point], stability, crop_box))
        return out

    def _encode(self, masks: Tensor) -> list[Any]:
        """(N, H, W) bool -> segmentations in the output mode."""
        if self.output_mode == "binary":
            return list(masks.cpu().numpy())
        rles = rle_ops.masks_to_uncompressed(masks)
        if self.output_mode == "uncompressed_rle":
            return rles
        coco = [rle_ops.compress(r) for r in rles]
        for r in coco:
            r["counts"] = r["counts"].decode("ascii")  # a str, JSON-ready, as the official
        return coco


def _pieces(item_bytes: int) -> int:
    """How many items of `item_bytes` make one piece of work (at least 1)."""
    return max(1, _PIECE_BYTES // max(1, item_bytes))


def _upsample(low_res: Tensor, hw: tuple[int, int]) -> Tensor:
    """(K, h, w) logits -> (K, H, W), bilinear, as the image predictor's post-processing."""
    return F.interpolate(low_res[:, None], hw, mode="bilinear", align_corners=False)[:, 0]


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _unit(name: str, value: Any) -> float:
    v = _finite(name, value)
    if not 0 <= v <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v
