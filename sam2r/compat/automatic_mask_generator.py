"""`SAM2AutomaticMaskGenerator` with the official constructor, `from_pretrained` and `generate`.

The records are the official ones, in the same order (`sam2r.predictor.automatic.MaskGenerator`
does the work). Two differences, both in the user's favour: `output_mode="coco_rle"` needs no
pycocotools (the codec is built in), and `min_mask_region_area` always post-processes the masks
(the official code needs its optional CUDA extension for it and silently skips it without).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2r.compat.builder import build_sam2_hf
from sam2r.compat.image_predictor import SAM2ImagePredictor
from sam2r.compat.modeling.sam2_base import SAM2Base, as_sam2r
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.automatic import MaskGenerator


class SAM2AutomaticMaskGenerator:
    """The official automatic mask generator API (see `MaskGenerator` for the arguments).

    Args:
        model: a model from `build_sam2` (a `SAM2Base`) or a `sam2r.SAM2Model`.
        output_mode: "binary_mask", "uncompressed_rle" or "coco_rle".
        **kwargs: accepted and ignored, as the official constructor does.
    """

    def __init__(
        self,
        model: SAM2Base | SAM2Model,
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
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
        **kwargs: Any,
    ) -> None:
        if output_mode not in ("binary_mask", "uncompressed_rle", "coco_rle"):
            raise ValueError(
                f"Unknown output_mode {output_mode!r}: use 'binary_mask', 'uncompressed_rle' "
                "or 'coco_rle'"
            )
        self._generator = MaskGenerator(
            as_sam2r(model),
            points_per_side=points_per_side,
            points_per_batch=points_per_batch,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
            stability_score_offset=stability_score_offset,
            mask_threshold=mask_threshold,
            box_nms_thresh=box_nms_thresh,
            crop_n_layers=crop_n_layers,
            crop_nms_thresh=crop_nms_thresh,
            crop_overlap_ratio=crop_overlap_ratio,
            crop_n_points_downscale_factor=crop_n_points_downscale_factor,
            point_grids=point_grids,
            min_mask_region_area=min_mask_region_area,
            output_mode=output_mode,
            use_m2m=use_m2m,
            multimask_output=multimask_output,
        )
        # the official attributes scripts read
        self.predictor = SAM2ImagePredictor(
            model, max_hole_area=min_mask_region_area, max_sprinkle_area=min_mask_region_area
        )
        self.point_grids = self._generator.point_grids
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2AutomaticMaskGenerator:
        """Download `model_id` (e.g. "facebook/sam2.1-hiera-tiny") and wrap it; `kwargs` go to
        both the builder (`device`, `mode`) and the generator, as in the official code."""
        return cls(build_sam2_hf(model_id, **dict(kwargs)), **kwargs)

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Records of every mask in `image` (uint8 HWC RGB): `segmentation`, `area`, `bbox`
        (XYWH), `predicted_iou`, `point_coords`, `stability_score`, `crop_box` (XYWH)."""
        return self._generator.generate(image)
