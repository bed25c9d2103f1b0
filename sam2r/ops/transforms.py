"""Input and output transforms of the image path: images in, prompts mapped, masks out.

SAM 2 sees every image as a square `size` x `size` (1024 for the released models):

* `to_rgb_array`: accept the image types users pass and return uint8 (H, W, 3) RGB;
* `preprocess_image` / `preprocess_batch`: uint8 -> float [0, 1] -> antialiased bilinear resize
  to the square -> ImageNet mean/std, exactly as the official `SAM2Transforms` (bit-identical);
* `transform_coords` / `transform_boxes`: prompts from image pixels to the square;
* `postprocess_masks`: low-resolution logits -> original resolution (optionally after hole
  filling / sprinkle removal, `sam2r.ops.masks`).

Video frames read from files follow the official loader instead (Pillow bicubic resize of the
uint8 frame); that lives with the frame sources in `sam2r.io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sam2r.ops.masks import fill_holes_and_remove_sprinkles

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb_array(image: Any) -> np.ndarray:
    """An image as a uint8 RGB array of shape (H, W, 3).

    Accepted:
        * numpy uint8 arrays (H, W, 3) RGB, (H, W, 4) RGBA (alpha dropped), (H, W, 1) or (H, W)
          grayscale (replicated to 3 channels), values 0..255;
        * PIL images of any mode (`image.convert("RGB")`).

    Float arrays are rejected rather than guessed at (is 1.0 white or almost black?), as the
    official predictor only takes uint8; scale them yourself, e.g.
    `(img * 255).round().clip(0, 255).astype(np.uint8)` for values in [0, 1].
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB")).copy()
    if isinstance(image, torch.Tensor):
        raise TypeError(
            "expected a numpy uint8 array (H, W, 3) or a PIL image, got a torch.Tensor of shape "
            f"{tuple(image.shape)}; pass `tensor.permute(1, 2, 0).cpu().numpy()` for a (3, H, W) "
            "uint8 tensor"
        )
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"expected a numpy uint8 array (H, W, 3) or a PIL image, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 image with values 0..255, got dtype {image.dtype}; convert it, "
            "e.g. `(img * 255).round().clip(0, 255).astype(np.uint8)` for floats in [0, 1]"
        )
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        channels = image.shape[2]
    elif image.ndim == 2:
        channels = 0
    else:
        hint = ""
        if image.ndim == 3 and image.shape[0] in (1, 3, 4):
            hint = "; it looks channels-first, pass `img.transpose(1, 2, 0)`"
        raise ValueError(
            "expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
            f"got {image.shape}{hint}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {image.shape}")
    if channels == 0:
        image = image[:, :, None]
    if channels in (0, 1):
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    return np.ascontiguousarray(image[:, :, :3])


def preprocess_image(image: Any, size: int) -> torch.Tensor:
    """The model input for one image.

    Args:
        image: anything `to_rgb_array` accepts, normally uint8 (H, W, 3) RGB.
        size: side of the square model input (`image_size`, 1024 for the released models).

    Returns:
        (1, 3, size, size) float32: `image / 255`, resized with antialiased bilinear
        interpolation (skipped when already `size` x `size`), then `(x - mean) / std` with the
        ImageNet statistics.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    rgb = to_rgb_array(image)
    x = torch.from_numpy(rgb).permute(2, 0, 1).to(torch.float32).div(255.0)  # (3, H, W)
    x = x.unsqueeze(0)  # (1, 3, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, (size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess_batch(images: Sequence[Any], size: int) -> torch.Tensor:
    """The model input for several images (each may have its own size).

    Args:
        images: a non-empty sequence of images `to_rgb_array` accepts.
        size: side of the square model input.

    Returns:
        (B, 3, size, size) float32, image b preprocessed as by `preprocess_image`.
    """
    if isinstance(images, (np.ndarray, Image.Image, torch.Tensor)) or not isinstance(
        images, Sequence
    ):
        raise TypeError(
            f"expected a list of images, got {type(images).__name__}; "
            "use preprocess_image for a single image"
        )
    if len(images) == 0:
        raise ValueError("expected at least one image, got an empty list")
    return torch.cat([preprocess_image(im, size) for im in images], dim=0)


def _hw(orig_hw: Sequence[int]) -> tuple[int, int]:
    if len(orig_hw) != 2 or any(int(v) <= 0 for v in orig_hw):
        raise ValueError(f"orig_hw must be (height, width) with positive sizes, got {orig_hw!r}")
    return int(orig_hw[0]), int(orig_hw[1])


def transform_coords(
    coords: torch.Tensor | np.ndarray | Sequence[Any],
    orig_hw: Sequence[int],
    size: int,
    normalize: bool = True,
) -> torch.Tensor:
    """Map point coordinates into the model's square input.

    Args:
        coords: (..., 2) x, y coordinates; in image pixels when `normalize`, else already in
            [0, 1] relative coordinates.
        orig_hw: (H, W) of the original image.
        size: side of the square model input.
        normalize: divide x by W and y by H first.

    Returns:
        (..., 2) float32 coordinates in [0, size] (a new tensor; the input is not modified).
    """
    out = torch.as_tensor(coords, dtype=torch.float32).clone()
    if out.ndim == 0 or out.shape[-1] != 2:
        raise ValueError(f"coords must have shape (..., 2), got {tuple(out.shape)}")
    if normalize:
        h, w = _hw(orig_hw)
        out[..., 0] = out[..., 0] / w
        out[..., 1] = out[..., 1] / h
    return out * size


def transform_boxes(
    boxes: torch.Tensor | np.ndarray | Sequence[Any],
    orig_hw: Sequence[int],
    size: int,
    normalize: bool = True,
) -> torch.Tensor:
    """Map boxes into the model's square input.

    Args:
        boxes: (B, 4) or (4,) boxes as x0, y0, x1, y1 (pixels when `normalize`).
        orig_hw: (H, W) of the original image.
        size: side of the square model input.
        normalize: divide x by W and y by H first.

    Returns:
        (B, 2, 2) float32: the two corners of each box, as the prompt encoder takes them.
    """
    b = torch.as_tensor(boxes, dtype=torch.float32)
    if b.ndim == 0 or b.shape[-1] != 4:
        raise ValueError(f"boxes must have shape (B, 4) or (4,), got {tuple(b.shape)}")
    return transform_coords(b.reshape(-1, 2, 2), orig_hw, size, normalize)


def postprocess_masks(
    low_res_masks: torch.Tensor,
    orig_hw: Sequence[int],
    max_hole_area: int = 0,
    max_sprinkle_area: int = 0,
    mask_threshold: float = 0.0,
) -> torch.Tensor:
    """Mask logits at the original image resolution.

    Args:
        low_res_masks: (N, M, h, w) mask logits (h = w = size / 4).
        orig_hw: (H, W) of the original image.
        max_hole_area: fill holes up to this many low-res pixels first (0 = off, the default of
            the official image predictor).
        max_sprinkle_area: remove foreground specks up to this many low-res pixels (0 = off).
        mask_threshold: the logit separating background from foreground for those two steps.

    Returns:
        (N, M, H, W) float32 logits: bilinear upsampling with `align_corners=False`, no clamp.
    """
    if not isinstance(low_res_masks, torch.Tensor) or low_res_masks.ndim != 4:
        raise ValueError(
            "low_res_masks must be a tensor of shape (N, M, h, w), got "
            f"{getattr(low_res_masks, 'shape', type(low_res_masks).__name__)}"
        )
    masks = low_res_masks.float()
    masks = fill_holes_and_remove_sprinkles(masks, max_hole_area, max_sprinkle_area, mask_threshold)
    return F.interpolate(masks, _hw(orig_hw), mode="bilinear", align_corners=False)
