"""Numpy versions of the few tensor operations the ONNX runtime does outside the graphs.

* `resize_bilinear_aa`: antialiased bilinear resize, as `F.interpolate(..., mode="bilinear",
  align_corners=False, antialias=True)` computes it (separable triangle filter whose support
  widens with the downscale factor, weights normalised per output pixel);
* `upsample_bilinear`: plain bilinear resize (`antialias=False`), for masks to video size;
* `preprocess_image` / `preprocess_frame`: the image and the video-frame inputs of the model,
  as `sam2r.ops.transforms.preprocess_image` and `sam2r.io.frames.preprocess_frame` make them;
* `to_bfloat16`: float32 rounded to bfloat16 (nearest even) and back, as the official code
  stores memories;
* `fill_holes`: the video predictor's hole filling (8-connected background components of at
  most `max_area` pixels get 0.1), found with `max_area` rounds of a 3x3 min filter instead of a
  full connected-component labelling: a component that small is labelled completely by then,
  and a label that still touches a differently labelled background pixel belongs to a larger
  component;
* `stability_scores`: the mask decoder's dynamic-fallback criterion.

No torch here: this module is imported by the torch-free runtime.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _aa_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 interpolation matrix of the antialiased bilinear resize."""
    scale = n_in / n_out
    support = scale if scale > 1.0 else 1.0  # triangle filter of half-width 1, widened
    inv = 1.0 / scale if scale > 1.0 else 1.0
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        x = (np.arange(lo, hi, dtype=np.float64) - center + 0.5) * inv
        k = np.clip(1.0 - np.abs(x), 0.0, None).astype(np.float32)
        total = k.sum()
        if total != 0:
            k = k / total
        w[i, lo:hi] = k
    return w


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of the plain bilinear resize with half-pixel centres."""
    scale = n_in / n_out
    src = (np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(scale) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = (src - i0).astype(np.float32)
    w = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    return w


_CACHE: dict[tuple[str, int, int], np.ndarray] = {}


def _weights(kind: str, n_in: int, n_out: int) -> np.ndarray:
    key = (kind, n_in, n_out)
    if key not in _CACHE:
        fn = _aa_weights if kind == "aa" else _linear_weights
        _CACHE[key] = fn(n_in, n_out)
    return _CACHE[key]


def _resize(x: np.ndarray, size: tuple[int, int], kind: str) -> np.ndarray:
    h, w = x.shape[-2:]
    wy = _weights(kind, h, size[0])  # (H', H)
    wx = _weights(kind, w, size[1])  # (W', W)
    x = np.asarray(x, dtype=np.float32)
    y = np.matmul(x, wx.T)  # (..., H, W')
    return np.matmul(wy, y)  # (..., H', W')


def resize_bilinear_aa(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., H, W) float32 -> (..., size[0], size[1]), antialiased bilinear."""
    return _resize(x, size, "aa")


def upsample_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., H, W) float32 -> (..., size[0], size[1]), bilinear, half-pixel centres."""
    return _resize(x, size, "linear")


def to_rgb(image: np.ndarray | Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a PIL image or a uint8 (H, W), (H, W, 3), (H, W, 4) array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        what = f"{image.dtype} array" if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"expected a uint8 (H, W, 3) RGB array or a PIL image, got {what}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape[:2]:
        raise ValueError(f"expected an image of shape (H, W, 3), got {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def preprocess_image(image: np.ndarray | Image.Image, size: int) -> np.ndarray:
    """(1, 3, size, size) float32 model input of an image: / 255, antialiased bilinear resize,
    ImageNet mean / std (the image predictor's preprocessing)."""
    x = to_rgb(image).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)  # (3, H, W)
    if x.shape[-2:] != (size, size):
        x = resize_bilinear_aa(x, (size, size))
    x = (x - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    return x[None].astype(np.float32)


def preprocess_frame(frame: np.ndarray | Image.Image, size: int) -> np.ndarray:
    """(1, 3, size, size) float32 model input of a video frame: Pillow bicubic resize of the
    uint8 frame, / 255 in float64, float32, ImageNet mean / std (the official video loader)."""
    im = frame if isinstance(frame, Image.Image) else Image.fromarray(to_rgb(frame))
    resized = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    # every uint8 value's result, computed by those same operations once: a table lookup gives
    # the same float32 numbers as the arithmetic over the whole frame, without its float64 copy
    lut = _frame_table()
    out = np.empty((1, 3, size, size), np.float32)
    for c in range(3):
        np.take(lut[c], resized[:, :, c], out=out[0, c])
    return out


_FRAME_TABLE: list[np.ndarray] = []


def _frame_table() -> np.ndarray:
    """(3, 256) float32: `preprocess_frame`'s output for each channel and uint8 value."""
    if not _FRAME_TABLE:
        v = (np.arange(256) / 255.0).astype(np.float32)  # float64 division, then float32
        _FRAME_TABLE.append((v[None] - IMAGENET_MEAN[:, None]) / IMAGENET_STD[:, None])
    return _FRAME_TABLE[0]


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(
        0xFFFF0000
    )
    return rounded.view(np.float32)


_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _shifted(a: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    """a (..., H, W) shifted so that out[y, x] = a[y + dy, x + dx] (fill outside)."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def small_components(region: np.ndarray, max_area: int) -> np.ndarray:
    """Pixels of region (N, H, W) bool whose 8-connected component has <= max_area pixels."""
    n, h, w = region.shape
    big = np.float64(n * h * w + 1)
    labels = np.where(region, np.arange(n * h * w, dtype=np.float64).reshape(n, h, w), big)
    for _ in range(max_area):  # a component of <= max_area pixels has diameter < max_area
        m = labels
        for dy, dx in _NEIGHBOURS:
            m = np.minimum(m, _shifted(labels, dy, dx, big))
        labels = np.where(region, m, big)
    # a label that still meets another label is part of a larger, unfinished component
    unfinished = np.zeros_like(region)
    for dy, dx in _NEIGHBOURS:
        other = _shifted(labels, dy, dx, big)
        unfinished |= region & (other != big) & (other != labels)
    flat = labels[region].astype(np.int64)
    counts = np.bincount(flat, minlength=n * h * w + 1)
    bad = np.zeros(n * h * w + 1, dtype=bool)
    bad[labels[unfinished].astype(np.int64)] = True
    keep = (counts <= max_area) & ~bad
    out = np.zeros_like(region)
    out[region] = keep[flat]
    return out


def fill_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """(N, 1, H, W) mask scores with background components of <= max_area pixels set to 0.1."""
    if max_area <= 0:
        return mask
    holes = small_components(mask[:, 0] <= 0, max_area)[:, None]
    return np.where(holes, np.float32(0.1), mask).astype(np.float32)


def stability_scores(mask_logits: np.ndarray, delta: float) -> np.ndarray:
    """area(logits > delta) / area(logits > -delta) over the last two dims (1 when empty)."""
    flat = mask_logits.reshape(*mask_logits.shape[:-2], -1)
    inter = np.sum(flat > delta, axis=-1).astype(np.float32)
    union = np.sum(flat > -delta, axis=-1).astype(np.float32)
    safe = np.where(union > 0, union, 1)
    return np.where(union > 0, inter / safe, np.float32(1.0))
