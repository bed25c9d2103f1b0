"""Image predictor: embed an image once, then predict masks from points, boxes and masks.

The predictor owns a `SAM2Model` and calls its public steps (`encode_image`, `no_memory`,
`prompt_and_decode`); input checking, coordinate mapping and post-processing live here.
Results are `ImagePrediction` dataclasses of numpy arrays; `sam2r.compat.SAM2ImagePredictor`
returns the official tuples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sam2r.model.sam2 import SAM2Model
from sam2r.ops.transforms import (
    postprocess_masks,
    preprocess_batch,
    preprocess_image,
    to_rgb_array,
    transform_boxes,
    transform_coords,
)
from sam2r.predictor.inputs import as_tensor, check_inside, float_tensor
from sam2r.predictor.precision import Precision, resolve_precision


@dataclass
class ImagePrediction:
    """Masks for one image and one prompt set, or for N prompt sets (several boxes) at once.

    Shapes are (M, ...) for one prompt set and (N, M, ...) for N, with M = 3 (multimask) or 1.
    """

    masks: np.ndarray  # (M, H, W) bool, or float32 logits with return_logits
    scores: np.ndarray  # (M,) predicted IoU of each mask
    low_res_logits: np.ndarray  # (M, S/4, S/4) float32 logits clamped to +-32 (next mask_input)

    def best(self) -> np.ndarray:
        """The mask with the highest predicted IoU: (H, W), or (N, H, W) for N prompt sets."""
        i = np.argmax(self.scores, axis=-1)
        if self.masks.ndim == 3:
            return self.masks[i]
        return self.masks[np.arange(self.masks.shape[0]), i]


@dataclass
class _Features:
    embed: Tensor  # (B, C, h, w) image embeddings with no_mem_embed
    high_res: tuple[Tensor, Tensor]  # stride-4 / stride-8 features, batch B
    orig_hw: list[tuple[int, int]]  # original (H, W) of each image
    batched: bool  # set with set_image_batch


_VALID_LABELS = (-1, 0, 1, 2, 3)


class ImagePredictor:
    """Predict masks on an image.

    Args:
        model: a `SAM2Model` (in eval mode).
        mask_threshold: logit above which a pixel is foreground in boolean masks.
        max_hole_area: fill holes of up to this many low-res pixels (0 = off).
        max_sprinkle_area: remove specks of up to this many low-res pixels (0 = off).
        check_bounds: raise on prompts outside the image (the official code accepts them).
        precision: "fp32" (default: the official numbers) or "bf16": the image encoder in
            bfloat16 where the CPU has native bfloat16 or on a CUDA GPU (refused with a
            `ValueError` where it would be slower; see `sam2r.predictor.precision`). Prompts
            and masks are float32 either way.
    """

    def __init__(
        self,
        model: SAM2Model,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0,
        max_sprinkle_area: float = 0,
        check_bounds: bool = True,
        precision: str | Precision = "fp32",
    ) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a sam2r SAM2Model, got {type(model).__name__}")
        self.precision = resolve_precision(precision, model.device)
        self.model = model
        self.mask_threshold = float(mask_threshold)
        self.max_hole_area = _area("max_hole_area", max_hole_area)
        self.max_sprinkle_area = _area("max_sprinkle_area", max_sprinkle_area)
        self.check_bounds = check_bounds
        self._features: _Features | None = None

    # ------------------------------------------------------------------------------------------
    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    @property
    def orig_hw(self) -> list[tuple[int, int]]:
        """(H, W) of each image set."""
        return list(self._need_features().orig_hw)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset(self) -> None:
        """Forget the image (frees its features)."""
        self._features = None

    @torch.inference_mode()
    def set_image(self, image: Any) -> None:
        """Compute the embedding of one image.

        Args:
            image: numpy uint8 (H, W, 3) RGB, (H, W) grayscale, (H, W, 4) RGBA, or a PIL image.
        """
        rgb = to_rgb_array(image)  # validate first: a bad image keeps the current one
        self.reset()
        x = preprocess_image(rgb, self.model.image_size).to(self.device)
        self._features = self._encode(x, [rgb.shape[:2]], batched=False)

    @torch.inference_mode()
    def set_image_batch(self, images: Sequence[Any]) -> None:
        """Compute the embeddings of several images (each may have its own size)."""
        if isinstance(images, (np.ndarray, torch.Tensor)) or not isinstance(images, Sequence):
            raise TypeError(
                f"set_image_batch takes a list of images, got {type(images).__name__}; "
                "use set_image for a single image"
            )
        rgbs = [to_rgb_array(im) for im in images]
        if not rgbs:
            raise ValueError("set_image_batch got an empty list of images")
        self.reset()
        x = preprocess_batch(rgbs, self.model.image_size).to(self.device)
        self._features = self._encode(x, [r.shape[:2] for r in rgbs], batched=True)

    def _encode(self, x: Tensor, hws: list[tuple[int, int]], batched: bool) -> _Features:
        feats = self.precision.run(self.model.encode_image, x)  # bf16 mode: the encoder only
        embed = self.model.no_memory(feats)
        return _Features(embed, feats.high_res, [(int(h), int(w)) for h, w in hws], batched)

    def get_image_embedding(self) -> Tensor:
        """The image embedding(s) (B, C, S/16, S/16), including `no_mem_embed`."""
        return self._need_features().embed

    def _need_features(self) -> _Features:
        if self._features is None:
            raise RuntimeError(
                "no image is set: call set_image(image) or set_image_batch(images) first"
            )
        return self._features

    # ------------------------------------------------------------------------------------------
    def predict(
        self,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> ImagePrediction:
        """Predict masks for the image set with `set_image`.

        Args:
            point_coords: (P, 2) x, y clicks, or (N, P, 2) for N prompt sets.
            point_labels: (P,) or (N, P): 1 foreground, 0 background.
            box: (4,) x0, y0, x1, y1, or (N, 4) for N objects at once.
            mask_input: (1, S/4, S/4) or (N, 1, S/4, S/4) logits, e.g. a previous
                `low_res_logits` entry, to refine.
            multimask_output: 3 masks (pick with `scores`) instead of 1; best for one click.
            return_logits: float logits instead of boolean masks.
            normalize_coords: coordinates are in image pixels (True) or already in [0, 1].
        """
        f = self._need_features()
        if f.batched:
            raise RuntimeError("a batch of images is set: use predict_batch")
        return self._predict_one(
            0,
            point_coords,
            point_labels,
            box,
            mask_input,
            multimask_output,
            return_logits,
            normalize_coords,
        )

    def predict_batch(
        self,
        point_coords_batch: Sequence[Any] | None = None,
        point_labels_batch: Sequence[Any] | None = None,
        box_batch: Sequence[Any] | None = None,
        mask_input_batch: Sequence[Any] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> list[ImagePrediction]:
        """Predict on each image of `set_image_batch` with its own prompts (one list entry each)."""
        f = self._need_features()
        n = len(f.orig_hw)
        args = {
            "point_coords_batch": point_coords_batch,
            "point_labels_batch": point_labels_batch,
            "box_batch": box_batch,
            "mask_input_batch": mask_input_batch,
        }
        for name, value in args.items():
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} images")
        out = []
        for i in range(n):
            p = [None if v is None else v[i] for v in args.values()]
            out.append(
                self._predict_one(
                    i,
                    *p,
                    multimask_output,
                    return_logits,
                    normalize_coords,
                )
            )
        return out

    @torch.inference_mode()
    def predict_torch(
        self,
        point_coords: Tensor | None,
        point_labels: Tensor | None,
        boxes: Tensor | None = None,
        mask_input: Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        img_idx: int = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Predict from prompts already in model-input pixels, as tensors.

        Args:
            point_coords: (N, P, 2) in the square input frame, or None.
            point_labels: (N, P), or None.
            boxes: (N, 4) or (N, 2, 2) in the square input frame, or None.
            mask_input: (N, 1, S/4, S/4) logits, or None.
            multimask_output: 3 masks instead of 1.
            return_logits: logits instead of booleans.
            img_idx: which image of a batch.

        Returns:
            masks (N, M, H, W), iou (N, M), low-res logits (N, M, S/4, S/4) clamped to +-32.
        """
        f = self._need_features()
        dev = self.device
        coords, labels = point_coords, point_labels
        if boxes is not None:
            box_pts = boxes.reshape(-1, 2, 2).to(dev, torch.float32)
            box_labels = torch.tensor([[2, 3]], dtype=torch.int64, device=dev).repeat(
                box_pts.shape[0], 1
            )
            if coords is not None:
                coords = torch.cat([box_pts, coords.to(dev)], dim=1)
                labels = torch.cat([box_labels, labels.to(dev)], dim=1)
            else:
                coords, labels = box_pts, box_labels
        if coords is not None:
            coords = coords.to(dev, torch.float32)
            labels = labels.to(dev)
        if mask_input is not None:
            mask_input = mask_input.to(dev, torch.float32)
        n_sets = (
            coords.shape[0]
            if coords is not None
            else (mask_input.shape[0] if mask_input is not None else 1)
        )
        out = self.model.prompt_and_decode(
            f.embed[img_idx : img_idx + 1],
            (f.high_res[0][img_idx : img_idx + 1], f.high_res[1][img_idx : img_idx + 1]),
            coords,
            labels,
            mask_input,
            multimask_output,
            repeat_image=n_sets > 1,
        )
        masks = postprocess_masks(
            out.masks,
            f.orig_hw[img_idx],
            self.max_hole_area,
            self.max_sprinkle_area,
            self.mask_threshold,
        )
        low_res = torch.clamp(out.masks, -32.0, 32.0)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, out.iou, low_res

    def _predict_one(
        self,
        img_idx: int,
        point_coords: Any,
        point_labels: Any,
        box: Any,
        mask_input: Any,
        multimask_output: bool,
        return_logits: bool,
        normalize_coords: bool,
    ) -> ImagePrediction:
        f = self._need_features()
        hw = f.orig_hw[img_idx]
        size = self.model.image_size
        coords, labels, boxes, masks_in = self._check_prompts(
            point_coords, point_labels, box, mask_input, hw, normalize_coords
        )
        if coords is not None:
            coords = transform_coords(coords, hw, size, normalize_coords)
        if boxes is not None:
            boxes = transform_boxes(boxes, hw, size, normalize_coords)
        masks, iou, low_res = self.predict_torch(
            coords, labels, boxes, masks_in, multimask_output, return_logits, img_idx
        )
        # one prompt set: drop the leading axis, as the official predictor does
        squeeze = (lambda t: t.squeeze(0)) if masks.shape[0] == 1 else (lambda t: t)
        return ImagePrediction(
            masks=squeeze(masks).float().cpu().numpy()
            if return_logits
            else squeeze(masks).cpu().numpy(),
            scores=squeeze(iou).float().cpu().numpy(),
            low_res_logits=squeeze(low_res).float().cpu().numpy(),
        )

    def _check_prompts(
        self,
        point_coords: Any,
        point_labels: Any,
        box: Any,
        mask_input: Any,
        hw: tuple[int, int],
        normalize: bool,
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        """Validate and convert prompts to tensors (coordinates still in the caller's frame)."""
        if (point_coords is None) != (point_labels is None):
            given = "point_coords" if point_labels is None else "point_labels"
            raise ValueError(
                f"{given} was given without its partner: pass both point_coords and point_labels"
            )
        coords = labels = boxes = masks = None
        limit = (hw[1], hw[0]) if normalize else (1.0, 1.0)
        frame = f"the {hw[1]}x{hw[0]} image" if normalize else "[0, 1] (normalize_coords=False)"
        if point_coords is not None:
            coords = float_tensor("point_coords", point_coords)
            labels = as_tensor("point_labels", point_labels).to(torch.int64)
            if coords.ndim == 2:
                coords, labels = coords[None], labels[None] if labels.ndim == 1 else labels
            if coords.ndim != 3 or coords.shape[-1] != 2:
                raise ValueError(
                    f"point_coords must have shape (P, 2) or (N, P, 2), got {tuple(coords.shape)}"
                )
            if labels.shape != coords.shape[:2]:
                raise ValueError(
                    f"point_labels shape {tuple(labels.shape)} does not match point_coords shape "
                    f"{tuple(coords.shape)}: one label per point"
                )
            bad = set(labels.unique().tolist()) - set(_VALID_LABELS)
            if bad:
                raise ValueError(
                    f"point_labels must be 1 (foreground) or 0 (background), got {sorted(bad)}"
                )
            if self.check_bounds:
                check_inside("point_coords", coords, limit, frame)
        if box is not None:
            boxes = float_tensor("box", box)
            if boxes.ndim == 1:
                boxes = boxes[None]
            if boxes.ndim != 2 or boxes.shape[-1] != 4:
                raise ValueError(
                    "box must have shape (4,) or (N, 4) as x0, y0, x1, y1, "
                    f"got {tuple(boxes.shape)}"
                )
            if bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
                raise ValueError(
                    f"box must be x0, y0, x1, y1 with x0 <= x1 and y0 <= y1, got {boxes.tolist()}"
                )
            if self.check_bounds:
                check_inside("box", boxes.reshape(-1, 2, 2), limit, frame)
            if coords is not None and coords.shape[0] != boxes.shape[0]:
                if coords.shape[0] == 1:
                    coords = coords.expand(boxes.shape[0], -1, -1)
                    labels = labels.expand(boxes.shape[0], -1)
                else:
                    raise ValueError(
                        f"{boxes.shape[0]} boxes and {coords.shape[0]} point sets: "
                        "give one point set "
                        "per box, or one shared by all"
                    )
        if mask_input is not None:
            masks = float_tensor("mask_input", mask_input)
            side = self.model.image_size // 4
            if masks.ndim == 3:
                masks = masks[None]
            if masks.ndim != 4 or masks.shape[1:] != (1, side, side):
                raise ValueError(
                    f"mask_input must be low-res logits of shape (1, {side}, {side}) or "
                    f"(N, 1, {side}, {side}) (e.g. a previous low_res_logits[i][None]), "
                    f"got {tuple(masks.shape)}"
                )
        return coords, labels, boxes, masks


def _area(name: str, value: float) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0 (0 = off), got {value!r}")
    return int(math.floor(value))
