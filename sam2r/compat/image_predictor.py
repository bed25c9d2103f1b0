"""`SAM2ImagePredictor` with the official constructor, methods, arguments and return values.

Numpy in, numpy out: `predict` returns `(masks, iou_predictions, low_res_masks)` as float32
arrays (masks are 0/1 floats unless `return_logits`), exactly like the official predictor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sam2r.compat.builder import build_sam2_hf
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.image import ImagePredictor


class SAM2ImagePredictor:
    """The official image predictor API.

    Args:
        sam_model: a model from `build_sam2` (a `sam2r.SAM2Model`).
        mask_threshold: logit threshold of the boolean masks.
        max_hole_area: fill holes of up to this many low-res pixels (0 = off).
        max_sprinkle_area: remove specks of up to this many low-res pixels (0 = off).
    """

    def __init__(
        self,
        sam_model: SAM2Model,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.model = sam_model
        self.mask_threshold = mask_threshold
        # the official predictor accepts prompts outside the image; so does this one
        self._predictor = ImagePredictor(
            sam_model, mask_threshold, max_hole_area, max_sprinkle_area, check_bounds=False
        )
        s = sam_model.image_size
        self._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2ImagePredictor:
        """Download `model_id` (e.g. "facebook/sam2.1-hiera-tiny") and wrap it."""
        return cls(build_sam2_hf(model_id, **kwargs), **kwargs)

    # --- state the official predictor exposes ---------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def _is_image_set(self) -> bool:
        return self._predictor.is_image_set

    @property
    def _is_batch(self) -> bool:
        f = self._predictor._features
        return bool(f is not None and f.batched)

    @property
    def _orig_hw(self) -> list[tuple[int, int]]:
        return self._predictor.orig_hw if self._predictor.is_image_set else []

    @property
    def _features(self) -> dict[str, Any] | None:
        f = self._predictor._features
        if f is None:
            return None
        return {"image_embed": f.embed, "high_res_feats": list(f.high_res)}

    # --- methods ----------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | Any) -> None:
        """Embed one image (numpy HWC uint8 RGB or PIL)."""
        self._predictor.set_image(image)

    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        """Embed a list of images."""
        self._predictor.set_image_batch(image_list)

    def get_image_embedding(self) -> torch.Tensor:
        """(B, C, h, w) image embedding of the image(s) set."""
        if not self._is_image_set:
            raise RuntimeError(
                "An image must be set with .set_image(...) to generate an embedding."
            )
        return self._predictor.get_image_embedding()

    def reset_predictor(self) -> None:
        """Forget the image."""
        self._predictor.reset()

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(masks (C, H, W), iou_predictions (C,), low_res_masks (C, 256, 256)), float32."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        out = self._predictor.predict(
            point_coords,
            point_labels,
            box,
            mask_input,
            multimask_output,
            return_logits,
            normalize_coords,
        )
        return out.masks.astype(np.float32), out.scores, out.low_res_logits

    def predict_batch(
        self,
        point_coords_batch: Sequence[np.ndarray] | None = None,
        point_labels_batch: Sequence[np.ndarray] | None = None,
        box_batch: Sequence[np.ndarray] | None = None,
        mask_input_batch: Sequence[np.ndarray] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Per-image predictions after `set_image_batch`: (masks list, ious list, low-res list)."""
        if not self._is_batch:
            raise RuntimeError(
                "An image batch must be set with .set_image_batch(...) before prediction."
            )
        outs = self._predictor.predict_batch(
            point_coords_batch,
            point_labels_batch,
            box_batch,
            mask_input_batch,
            multimask_output,
            return_logits,
            normalize_coords,
        )
        return (
            [o.masks.astype(np.float32) for o in outs],
            [o.scores for o in outs],
            [o.low_res_logits for o in outs],
        )

    def _predict(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        img_idx: int = -1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tensor prompts already in model-input pixels (the official private method)."""
        n = len(self._orig_hw)
        return self._predictor.predict_torch(
            point_coords,
            point_labels,
            boxes,
            mask_input,
            multimask_output,
            return_logits,
            img_idx % n,
        )
