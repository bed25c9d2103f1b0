"""The official `sam2.utils.misc` helpers scripts import, over `sam2r.ops` and `sam2r.io`.

    from sam2.utils.misc import get_connected_components, mask_to_box, load_video_frames
becomes
    from sam2r.compat.utils.misc import get_connected_components, mask_to_box, load_video_frames

Left out: `AsyncVideoFrameLoader` and `_load_img_as_tensor` (loading internals of the official
predictor; sam2r decodes frames on demand, `sam2r.io.open_frames`). Differences:
`get_connected_components` runs everywhere (the official one needs its CUDA extension); its
labels are deterministic ids (1 + raster index of the component's first pixel) rather than the
extension's, the areas are the same. `load_video_frames` reads what `sam2r.io.open_frames`
reads (JPEG/PNG folders, video files with the `video` extra, arrays); `async_loading_frames`
is accepted and has no effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sam2r.ops import masks as mask_ops
from sam2r.ops.transforms import IMAGENET_MEAN, IMAGENET_STD


def get_sdpa_settings() -> tuple[bool, bool, bool]:
    """(old_gpu, use_flash_attn, math_kernel_on), as the official helper reports them; sam2r
    always calls `F.scaled_dot_product_attention` and lets torch choose the kernel."""
    if not torch.cuda.is_available():
        return True, False, True
    old_gpu = torch.cuda.get_device_properties(0).major < 7
    return old_gpu, not old_gpu, True


def get_connected_components(mask: Tensor) -> tuple[Tensor, Tensor]:
    """8-connected components of (N, 1, H, W) binary masks -> (labels, counts), both
    (N, 1, H, W) int32: 0 / 0 on background, else the component's id and its area."""
    return mask_ops.connected_components(mask)


def mask_to_box(masks: Tensor) -> Tensor:
    """(B, 1, H, W) bool masks -> (B, 1, 4) int32 boxes x0, y0, x1, y1 (inclusive); an empty
    mask gives [W, H, -1, -1], as the official helper."""
    b, _, h, w = masks.shape
    m = masks.bool()
    xs = torch.arange(w, device=m.device, dtype=torch.int32).view(1, 1, 1, w).expand(b, 1, h, w)
    ys = torch.arange(h, device=m.device, dtype=torch.int32).view(1, 1, h, 1).expand(b, 1, h, w)
    big_x, big_y = torch.full_like(xs, w), torch.full_like(ys, h)
    neg = torch.full_like(xs, -1)
    x0 = torch.where(m, xs, big_x).flatten(-2).amin(-1)
    x1 = torch.where(m, xs, neg).flatten(-2).amax(-1)
    y0 = torch.where(m, ys, big_y).flatten(-2).amin(-1)
    y1 = torch.where(m, ys, neg).flatten(-2).amax(-1)
    return torch.stack((x0, y0, x1, y1), dim=-1)


def fill_holes_in_mask_scores(mask: Tensor, max_area: int) -> Tensor:
    """(N, 1, h, w) mask logits with holes of at most `max_area` pixels set to 0.1."""
    return mask_ops.fill_holes_in_mask_scores(mask, max_area)


def concat_points(
    old_point_inputs: dict[str, Tensor] | None, new_points: Tensor, new_labels: Tensor
) -> dict[str, Tensor]:
    """{"point_coords": (B, P, 2), "point_labels": (B, P)} with the new clicks appended."""
    if old_point_inputs is None:
        return {"point_coords": new_points, "point_labels": new_labels}
    return {
        "point_coords": torch.cat([old_point_inputs["point_coords"], new_points], dim=1),
        "point_labels": torch.cat([old_point_inputs["point_labels"], new_labels], dim=1),
    }


def load_video_frames(
    video_path: Any,
    image_size: int,
    offload_video_to_cpu: bool = False,
    img_mean: Sequence[float] = IMAGENET_MEAN,
    img_std: Sequence[float] = IMAGENET_STD,
    async_loading_frames: bool = False,
    compute_device: torch.device | str = "cuda",
) -> tuple[Tensor, int, int]:
    """Every frame of a video as the model input: ((N, 3, S, S) float32, height, width).

    Args:
        video_path: a folder of frames, a video file (the `video` extra), or an array.
        image_size: side of the square model input.
        offload_video_to_cpu: keep the frames on the CPU.
        img_mean / img_std: normalisation (ImageNet's by default).
        compute_device: where the frames go otherwise (the CPU when CUDA is absent).
    """
    from sam2r.io.open import open_frames

    del async_loading_frames
    frames = open_frames(video_path)
    images = torch.stack([frames.model_input(i, image_size) for i in range(len(frames))])
    if tuple(img_mean) != tuple(IMAGENET_MEAN) or tuple(img_std) != tuple(IMAGENET_STD):
        default_mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        default_std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        raw = images * default_std + default_mean  # back to [0, 1]
        images = (raw - torch.tensor(img_mean).view(1, 3, 1, 1)) / torch.tensor(img_std).view(
            1, 3, 1, 1
        )
    device = torch.device(compute_device)
    if not offload_video_to_cpu and (device.type != "cuda" or torch.cuda.is_available()):
        images = images.to(device)
    h, w = frames.hw
    return images, h, w


load_video_frames_from_jpg_images = load_video_frames


def load_video_frames_from_video_file(
    video_path: Any,
    image_size: int,
    offload_video_to_cpu: bool = False,
    img_mean: Sequence[float] = IMAGENET_MEAN,
    img_std: Sequence[float] = IMAGENET_STD,
    compute_device: torch.device | str = "cuda",
) -> tuple[Tensor, int, int]:
    """`load_video_frames` for a video file (the official signature: no async flag)."""
    return load_video_frames(
        video_path, image_size, offload_video_to_cpu, img_mean, img_std, False, compute_device
    )
