"""`SAM2ImagePredictor` with the official constructor, methods, arguments and return values.

Numpy in, numpy out: `predict` returns `(masks, iou_predictions, low_res_masks)` as float32
arrays (masks are 0/1 floats unless `return_logits`), exactly like the official predictor.

The private members that tutorials and tools use are the official ones too: `model` is the
official `SAM2Base` surface (`sam2r.compat.modeling.sam2_base`), `_transforms` a
`SAM2Transforms`, `_prep_prompts` maps prompts as the official one, `_features` holds
`image_embed` and `high_res_feats` as ordinary tensors (usable in autograd, as after the
official `set_image`, which runs under `torch.no_grad`), `_orig_hw`, `_is_image_set`,
`_is_batch`, `_bb_feat_sizes`. The "fine-tune SAM 2" loop (`set_image`, `_prep_prompts`,
`model.sam_prompt_encoder(...)`, `model.sam_mask_decoder(...)`,
`_transforms.postprocess_masks`, loss, backward) trains the sam2r model's parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sam2r.compat.builder import build_sam2_hf
from sam2r.compat.modeling.sam2_base import SAM2Base, as_sam2_base, as_sam2r
from sam2r.compat.utils.transforms import SAM2Transforms
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.image import ImagePredictor


class SAM2ImagePredictor:
    """The official image predictor API.

    Args:
        sam_model: a model from `build_sam2` (a `SAM2Base`) or a `sam2r.SAM2Model`.
        mask_threshold: logit threshold of the boolean masks.
        max_hole_area: fill holes of up to this many low-res pixels (0 = off).
        max_sprinkle_area: remove specks of up to this many low-res pixels (0 = off).
    """

    def __init__(
        self,
        sam_model: SAM2Base | SAM2Model,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.model = as_sam2_base(sam_model)
        self.mask_threshold = mask_threshold
        self._transforms = SAM2Transforms(
            self.model.image_size, mask_threshold, max_hole_area, max_sprinkle_area
        )
        # the official predictor accepts prompts outside the image; so does this one
        self._predictor = ImagePredictor(
            as_sam2r(sam_model),
            mask_threshold,
            max_hole_area,
            max_sprinkle_area,
            check_bounds=False,
        )
        self._plain_features: dict[str, Any] | None = None
        s = self.model.image_size
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
        """{"image_embed": (B, C, h, w) with no_mem_embed, "high_res_feats": [(B, C/8, 4h, 4w),
        (B, C/4, 2h, 2w)]}, or None before `set_image`."""
        f = self._predictor._features
        if f is None:
            return None
        cached = self._plain_features
        if cached is None or cached["_source"] is not f:
            # sam2r encodes under inference_mode; outside it such tensors cannot be saved for
            # backward, so hand out ordinary copies (made once per image) as the official
            # predictor does (it encodes under no_grad)
            with torch.inference_mode(False):
                cached = {
                    "image_embed": f.embed.clone(),
                    "high_res_feats": [x.clone() for x in f.high_res],
                    "_source": f,
                }
            self._plain_features = cached
        return {"image_embed": cached["image_embed"], "high_res_feats": cached["high_res_feats"]}

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

    def _prep_prompts(
        self,
        point_coords: Any,
        point_labels: Any,
        box: Any,
        mask_logits: Any,
        normalize_coords: bool,
        img_idx: int = -1,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Prompts as the model takes them (the official private helper).

        Returns:
            (mask_input (B, 1, h, w) or None, unnorm_coords (B, P, 2) in model-input pixels or
            None, labels (B, P) int32 or None, unnorm_box (B, 2, 2) or None).
        """
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        hw = self._orig_hw[img_idx]
        coords = labels = box_t = mask_input = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be supplied if point_coords is supplied.")
            pc = torch.as_tensor(point_coords, dtype=torch.float, device=self.device)
            coords = self._transforms.transform_coords(pc, normalize=normalize_coords, orig_hw=hw)
            labels = torch.as_tensor(point_labels, dtype=torch.int, device=self.device)
            if coords.ndim == 2:
                coords, labels = coords[None], labels[None]
        if box is not None:
            b = torch.as_tensor(box, dtype=torch.float, device=self.device)
            box_t = self._transforms.transform_boxes(b, normalize=normalize_coords, orig_hw=hw)
        if mask_logits is not None:
            mask_input = torch.as_tensor(mask_logits, dtype=torch.float, device=self.device)
            if mask_input.ndim == 3:
                mask_input = mask_input[None]
        return mask_input, coords, labels, box_t

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
