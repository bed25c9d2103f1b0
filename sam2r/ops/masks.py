"""Mask post-processing: connected components, hole filling and sprinkle removal.

Pure torch, deterministic, on any device. The official SAM 2 does this with an optional CUDA
extension (`sam2._C.get_connected_componnets`) and silently skips the step when the extension is
missing, so its results depend on how it was installed. Here the same operations always run:

* `connected_components`: 8-connected labelling of binary masks (N, 1, H, W), as the extension;
* `fill_holes` / `remove_sprinkles` / `fill_holes_and_remove_sprinkles`: the image predictor's
  post-processing of low-resolution mask logits (`max_hole_area`, `max_sprinkle_area`);
* `fill_holes_in_mask_scores`: the video predictor's hole filling (`fill_hole_area`).

What is left to others: upsampling to the original resolution (`sam2r.ops.transforms`) and
deciding when to post-process (the predictors).
"""

from __future__ import annotations

import torch

# neighbour offsets (dy, dx) that, with their mirror images, make up 8-connectivity
_HALF_NEIGHBOURHOOD = ((0, 1), (1, 0), (1, 1), (1, -1))


def _check_area(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 (0 = off), got {value!r}")
    return value


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim != 4 or not logits.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor of shape (N, M, H, W), "
            f"got dtype {logits.dtype} and shape {tuple(logits.shape)}"
        )


def _edges(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of 8-adjacent foreground pixels.

    Args:
        index: (N, H, W) int64, the pixel's compact foreground id, or -1 for background.

    Returns:
        (u, v): two (E,) int64 tensors of foreground ids; each adjacent pair appears once.
    """
    _, h, w = index.shape
    us, vs = [], []
    for dy, dx in _HALF_NEIGHBOURHOOD:
        x0, x1 = max(0, -dx), w - max(0, dx)  # x range of the first pixel of the pair
        a = index[:, : h - dy, x0:x1]
        b = index[:, dy:, x0 + dx : x1 + dx]
        keep = (a >= 0) & (b >= 0)
        us.append(a[keep])
        vs.append(b[keep])
    return torch.cat(us), torch.cat(vs)


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of binary masks.

    Args:
        mask: (N, 1, H, W) bool or integer tensor; non-zero pixels are foreground.

    Returns:
        labels: (N, 1, H, W) int32; 0 for background, otherwise 1 + the raster index (y * W + x)
            of the component's first pixel in its plane (so labels are deterministic, and
            unique within each plane).
        areas: (N, 1, H, W) int32; the pixel count of the component each pixel belongs to,
            0 for background.

    Algorithm: union-find by parallel hooking (every root adjacent to a smaller root points to
    the smallest such root) followed by full pointer jumping, repeated until no edge joins two
    trees. Every round hooks at least one root, so the loop ends; in practice (random masks,
    spirals, combs) it takes a handful of vectorised rounds.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (N, 1, H, W), got {tuple(mask.shape)}")
    n, _, h, w = mask.shape
    device = mask.device
    fg = (mask != 0).reshape(-1)  # (N*H*W,)
    labels = torch.zeros(n * h * w, dtype=torch.int32, device=device)
    areas = torch.zeros(n * h * w, dtype=torch.int32, device=device)
    pixel = torch.nonzero(fg).squeeze(1)  # (K,) flat index of each foreground pixel, ascending
    k = pixel.numel()
    if k == 0:
        return labels.view(n, 1, h, w), areas.view(n, 1, h, w)

    index = torch.full((n * h * w,), -1, dtype=torch.int64, device=device)
    index[pixel] = torch.arange(k, device=device)
    u, v = _edges(index.view(n, h, w))

    parent = torch.arange(k, device=device)  # always fully compressed: parent[i] is i's root
    while u.numel() > 0:
        ru, rv = parent[u], parent[v]
        live = ru != rv  # edges still joining two trees; the others never become live again
        if not bool(live.any()):
            break
        u, v, ru, rv = u[live], v[live], ru[live], rv[live]
        # hook the larger root under the smallest root it touches (roots only ever decrease,
        # so no cycles, and the final root of a component is its smallest id)
        parent.scatter_reduce_(0, torch.maximum(ru, rv), torch.minimum(ru, rv), reduce="amin")
        while True:
            grand = parent[parent]
            if torch.equal(grand, parent):
                break
            parent = grand

    size = torch.bincount(parent, minlength=k)  # (K,) component size at each root
    labels[pixel] = (pixel[parent] % (h * w) + 1).to(torch.int32)
    areas[pixel] = size[parent].to(torch.int32)
    return labels.view(n, 1, h, w), areas.view(n, 1, h, w)


def _small_components(region: torch.Tensor, max_area: int) -> torch.Tensor:
    """Pixels of `region` (N, M, H, W) bool whose component (per plane) has area <= max_area."""
    labels, areas = connected_components(region.flatten(0, 1).unsqueeze(1))
    return ((labels > 0) & (areas <= max_area)).reshape(region.shape)


def fill_holes(mask_logits: torch.Tensor, max_area: int, threshold: float = 0.0) -> torch.Tensor:
    """Turn small background regions into foreground.

    A hole is an 8-connected component of `logits <= threshold` with at most `max_area` pixels
    (counted per (n, m) plane; a background region touching the border counts too, as in the
    official code). Its logits are set to `threshold + 10.0`.

    Args:
        mask_logits: (N, M, H, W) float mask logits.
        max_area: largest hole to fill, in pixels; 0 returns the input unchanged.
        threshold: the logit that separates background (<=) from foreground (>).

    Returns:
        (N, M, H, W) logits, a new tensor (or the input itself when `max_area == 0`).
    """
    _check_logits("mask_logits", mask_logits)
    if _check_area("max_area", max_area) == 0:
        return mask_logits
    is_hole = _small_components(mask_logits <= threshold, max_area)
    return torch.where(is_hole, threshold + 10.0, mask_logits)


def remove_sprinkles(
    mask_logits: torch.Tensor, max_area: int, threshold: float = 0.0
) -> torch.Tensor:
    """Turn small foreground regions into background.

    A sprinkle is an 8-connected component of `logits > threshold` with at most `max_area`
    pixels (per (n, m) plane). Its logits are set to `threshold - 10.0`.

    Args:
        mask_logits: (N, M, H, W) float mask logits.
        max_area: largest sprinkle to remove, in pixels; 0 returns the input unchanged.
        threshold: the logit that separates background (<=) from foreground (>).

    Returns:
        (N, M, H, W) logits.
    """
    _check_logits("mask_logits", mask_logits)
    if _check_area("max_area", max_area) == 0:
        return mask_logits
    is_sprinkle = _small_components(mask_logits > threshold, max_area)
    return torch.where(is_sprinkle, threshold - 10.0, mask_logits)


def fill_holes_and_remove_sprinkles(
    mask_logits: torch.Tensor,
    max_hole_area: int = 0,
    max_sprinkle_area: int = 0,
    threshold: float = 0.0,
) -> torch.Tensor:
    """The official image predictor's post-processing of low-resolution logits.

    Holes and sprinkles are both found on the *input* logits (as the official
    `SAM2Transforms.postprocess_masks` does), so filling a hole never merges two sprinkles into
    a larger foreground region that would then survive. This differs from
    `remove_sprinkles(fill_holes(x))` only when a filled hole touches small foreground pieces.

    Args:
        mask_logits: (N, M, H, W) float mask logits.
        max_hole_area: largest hole to fill (set to `threshold + 10`); 0 = off.
        max_sprinkle_area: largest sprinkle to remove (set to `threshold - 10`); 0 = off.
        threshold: the logit that separates background (<=) from foreground (>).

    Returns:
        (N, M, H, W) logits.
    """
    _check_logits("mask_logits", mask_logits)
    _check_area("max_hole_area", max_hole_area)
    _check_area("max_sprinkle_area", max_sprinkle_area)
    out = mask_logits
    if max_hole_area > 0:
        is_hole = _small_components(mask_logits <= threshold, max_hole_area)
        out = torch.where(is_hole, threshold + 10.0, out)
    if max_sprinkle_area > 0:
        is_sprinkle = _small_components(mask_logits > threshold, max_sprinkle_area)
        out = torch.where(is_sprinkle, threshold - 10.0, out)
    return out


def fill_holes_in_mask_scores(
    mask: torch.Tensor, max_area: int, max_sprinkle_area: int = 0
) -> torch.Tensor:
    """The video predictor's hole filling of low-resolution mask scores (`fill_hole_area`).

    Holes are 8-connected components of `mask <= 0` with at most `max_area` pixels; they get the
    small positive score 0.1 (just foreground), everything else is unchanged. This is what the
    official code computes when its CUDA extension is present (`sam2==1.1.0`, Dec 2024); without
    the extension it skips the step with a warning, which is why the parity fixtures have no
    hole filling. The official video path removes no sprinkles; `max_sprinkle_area > 0` is an
    extra of sam2r: components of `mask > 0` (after hole filling) with at most that many pixels
    get -0.1.

    Args:
        mask: (N, 1, H, W) float mask scores (one plane per object).
        max_area: largest hole to fill, in pixels; 0 returns the input unchanged.
        max_sprinkle_area: largest sprinkle to remove, in pixels; 0 (default, official) = off.

    Returns:
        (N, 1, H, W) mask scores.
    """
    _check_logits("mask", mask)
    _check_area("max_area", max_area)
    _check_area("max_sprinkle_area", max_sprinkle_area)
    if max_area > 0:
        mask = torch.where(_small_components(mask <= 0, max_area), 0.1, mask)
    if max_sprinkle_area > 0:
        mask = torch.where(_small_components(mask > 0, max_sprinkle_area), -0.1, mask)
    return mask
