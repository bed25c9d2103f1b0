"""Tensor operations shared by the predictors: mask post-processing and input transforms."""

from sam2r.ops.masks import (
    connected_components,
    fill_holes,
    fill_holes_and_remove_sprinkles,
    fill_holes_in_mask_scores,
    remove_sprinkles,
)
from sam2r.ops.transforms import (
    postprocess_masks,
    preprocess_batch,
    preprocess_image,
    to_rgb_array,
    transform_boxes,
    transform_coords,
)

__all__ = [
    "connected_components",
    "fill_holes",
    "fill_holes_and_remove_sprinkles",
    "fill_holes_in_mask_scores",
    "postprocess_masks",
    "preprocess_batch",
    "preprocess_image",
    "remove_sprinkles",
    "to_rgb_array",
    "transform_boxes",
    "transform_coords",
]
