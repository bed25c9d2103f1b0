"""The official `sam2.utils.transforms.SAM2Transforms`, over `sam2r.ops.transforms`.

    from sam2.utils.transforms import SAM2Transforms
becomes
    from sam2r.compat.utils.transforms import SAM2Transforms

`SAM2ImagePredictor._transforms` is one of these, as in the official predictor; fine-tuning
scripts call its `transform_coords`, `transform_boxes` and `postprocess_masks` (all
differentiable where the official ones are: the upsampling of `postprocess_masks` carries
gradients to the low-resolution logits).

Differences: hole filling and sprinkle removal (`max_hole_area`, `max_sprinkle_area` > 0) run
everywhere; the official code needs its CUDA extension for them and skips them (with a warning)
without it. `__call__` takes what `sam2r.ops.transforms.to_rgb_array` takes (numpy HWC RGB,
PIL), as the official `ToTensor` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sam2r.ops import transforms as ops


class SAM2Transforms(nn.Module):
    """Image pre-processing, prompt mapping and mask post-processing of SAM 2.

    Args:
        resolution: side of the square model input (`model.image_size`).
        mask_threshold: the logit separating background from foreground.
        max_hole_area: fill holes of up to this many low-res pixels in `postprocess_masks`.
        max_sprinkle_area: remove specks of up to this many low-res pixels there.
    """

    def __init__(
        self,
        resolution: int,
        mask_threshold: float,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        super().__init__()
        self.resolution = int(resolution)
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self.mean = [0.485, 0.456, 0.406]
        self.std = [0.229, 0.224, 0.225]

    def __call__(self, x: Any) -> Tensor:  # type: ignore[override]
        """An image (numpy HWC uint8 RGB or PIL) -> (3, S, S) normalised float32."""
        return ops.preprocess_image(x, self.resolution)[0]

    def forward(self, x: Any) -> Tensor:
        return self(x)

    def forward_batch(self, img_list: Sequence[Any]) -> Tensor:
        """A list of images -> (B, 3, S, S)."""
        return torch.stack([self(img) for img in img_list], dim=0)

    def transform_coords(
        self, coords: Tensor, normalize: bool = False, orig_hw: Sequence[int] | None = None
    ) -> Tensor:
        """(..., 2) coordinates -> model-input pixels. With `normalize` they are image pixels
        (divided by `orig_hw` first), else already relative in [0, 1]."""
        if normalize and orig_hw is None:
            raise ValueError("transform_coords(normalize=True) needs orig_hw=(height, width)")
        hw = orig_hw if orig_hw is not None else (1, 1)
        out = ops.transform_coords(coords, hw, self.resolution, normalize)
        return out.to(coords.device) if isinstance(coords, Tensor) else out

    def transform_boxes(
        self, boxes: Tensor, normalize: bool = False, orig_hw: Sequence[int] | None = None
    ) -> Tensor:
        """(B, 4) boxes x0, y0, x1, y1 -> (B, 2, 2) corners in model-input pixels."""
        return self.transform_coords(boxes.reshape(-1, 2, 2), normalize, orig_hw)

    def postprocess_masks(self, masks: Tensor, orig_hw: Sequence[int]) -> Tensor:
        """(N, M, h, w) low-res logits -> (N, M, H, W) float32 logits at `orig_hw`."""
        return ops.postprocess_masks(
            masks,
            orig_hw,
            int(self.max_hole_area),
            int(self.max_sprinkle_area),
            self.mask_threshold,
        )
