"""Per-frame video-segmentation metrics as the DAVIS 2017 toolkit defines them, and their
per-object statistics.

* `region_similarity` (J): |A ∩ B| / |A ∪ B|, 1 when both masks are empty;
* `contour_accuracy` (F): the F-measure of the two masks' boundary maps, a boundary pixel
  counting as matched when the other boundary has a pixel within `boundary_tolerance` of it
  (a disk); 1 when both boundaries are empty, 0 when only one is;
* `boundary_map`, `dilate_disk`, `disk`, `boundary_tolerance`: the pieces of F;
* `statistics` (`mean`, `recall`, `decay`): the per-object summary of per-frame values.

The definitions follow `davis2017-evaluation` (`davis2017/metrics.py`: `db_eval_iou`,
`f_measure`, `_seg2bmap`; `davis2017/utils.py`: `db_statistics`), with `skimage.morphology.disk`
for the structuring element and `cv2.dilate` (zero outside the image) for the dilation; this is
an independent numpy implementation of them, without OpenCV, scikit-image or SciPy.

Where this file knowingly differs from the toolkit:
* `decay` indexes its four bins with int64; the toolkit casts the bin edges to uint8, so beyond
  256 scored frames its edges wrap around and its decay is meaningless (often NaN). Up to 256
  frames (every DAVIS sequence) the two agree exactly.
* `contour_accuracy` takes no void mask: the semi-supervised evaluation passes none (GT pixels
  of value 255 are made background before scoring, see `sam2r.eval.davis`).
* `_seg2bmap`'s branch that resamples a boundary map to another size is never reached from
  `f_measure` (it is called without a target size), so it is not reproduced: masks of different
  shapes are an error here, as they are an assertion failure there.

What is left to others: reading masks and choosing frames and objects (`sam2r.eval.davis`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

DEFAULT_BOUND_TH = 0.008  # boundary tolerance: a fraction of the image diagonal (or pixels if >= 1)
RECALL_THRESHOLD = 0.5  # a frame counts towards recall when its value is above this
N_DECAY_BINS = 4  # decay compares the first and the last of this many bins of frames


class Statistics(NamedTuple):
    """Summary of one object's per-frame values (J or F); NaN when there are no frames."""

    mean: float  # mean over frames (NaN frames skipped)
    recall: float  # fraction of frames with a value above RECALL_THRESHOLD
    decay: float  # mean of the first quarter of the frames minus mean of the last quarter


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _as_mask(mask: Any, name: str) -> np.ndarray:
    """Any 2-D array-like -> (H, W) bool (nonzero is foreground)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D mask of shape (H, W), got shape {arr.shape}; "
            "pass one object's mask of one frame"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); masks need at least 1x1 pixel")
    return arr.astype(bool, copy=False)


def _mask_pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(
            f"pred has shape {p.shape} but gt has shape {g.shape}; predictions must have the "
            "size of the annotations (resize them before evaluating)"
        )
    return p, g


# ----------------------------------------------------------------------------------------------
# J: region similarity
# ----------------------------------------------------------------------------------------------
def region_similarity(pred: Any, gt: Any) -> float:
    """Jaccard index of two masks: |pred ∩ gt| / |pred ∪ gt|, and 1.0 when both are empty.

    Args:
        pred: (H, W) predicted mask (bool, or any dtype with nonzero = foreground).
        gt: (H, W) ground-truth mask.
    """
    p, g = _mask_pair(pred, gt)
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


# ----------------------------------------------------------------------------------------------
# F: contour accuracy
# ----------------------------------------------------------------------------------------------
def boundary_map(mask: Any) -> np.ndarray:
    """(H, W) bool: the pixels of `mask` that differ from their right, bottom or bottom-right
    neighbour (the toolkit's `_seg2bmap`, after D. Martin's Berkeley benchmark code).

    The boundary is one pixel wide, offset half a pixel towards the origin. Outside the image
    the mask is continued by repeating its last row and column, so the image border itself is
    not a boundary; the bottom-right pixel never is.
    """
    m = _as_mask(mask, "mask")
    padded = np.pad(m, ((0, 1), (0, 1)), mode="edge")  # (H + 1, W + 1)
    right = padded[:-1, 1:]
    below = padded[1:, :-1]
    below_right = padded[1:, 1:]
    return (m ^ right) | (m ^ below) | (m ^ below_right)


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = DEFAULT_BOUND_TH) -> int:
    """The match distance of F in pixels: `ceil(bound_th * sqrt(H² + W²))`, or `bound_th`
    itself when it is >= 1 (then it must be a whole number of pixels).

    Args:
        shape: (H, W) of the masks.
        bound_th: fraction of the image diagonal (< 1) or pixels (>= 1).
    """
    if not (isinstance(bound_th, (int, float)) and math.isfinite(bound_th) and bound_th > 0):
        raise ValueError(f"bound_th must be a positive number, got {bound_th!r}")
    if bound_th >= 1:
        if float(bound_th) != int(bound_th):
            raise ValueError(
                f"bound_th={bound_th} >= 1 is read as pixels and must be whole; use "
                f"{math.ceil(bound_th)} or a fraction of the diagonal below 1 (default 0.008)"
            )
        return int(bound_th)
    h, w = int(shape[0]), int(shape[1])
    return math.ceil(bound_th * math.sqrt(h * h + w * w))


def disk(radius: int) -> np.ndarray:
    """(2r + 1, 2r + 1) bool disk: offsets (dy, dx) with dy² + dx² <= r² (the
    `skimage.morphology.disk` convention)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius


def dilate_disk(mask: Any, radius: int) -> np.ndarray:
    """(H, W) bool: `mask` dilated by `disk(radius)`; nothing outside the image contributes.

    The disk is taken row by row: each of its rows dy is a horizontal segment of half-width
    isqrt(r² - dy²), so the dilation is a few running-sum window tests along x, each shifted by
    dy and OR-ed, instead of one shift per disk pixel.
    """
    m = _as_mask(mask, "mask")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0 or not m.any():
        return m.copy()
    h, w = m.shape
    r = int(radius)
    # running count of foreground pixels along each row, r zeros of padding on both sides
    counts = np.zeros((h, w + 2 * r + 1), dtype=np.int32)  # (H, W + 2r + 1)
    np.cumsum(np.pad(m, ((0, 0), (r, r))), axis=1, dtype=np.int32, out=counts[:, 1:])
    segment: dict[int, np.ndarray] = {}  # half-width -> (H, W) "a pixel within it along x"
    out = np.zeros_like(m)
    for dy in range(-r, r + 1):
        half = math.isqrt(r * r - dy * dy)
        if half not in segment:
            # window [x - half, x + half] is columns [x + r - half, x + r + half] of the padding
            hi = counts[:, r + half + 1 : r + half + 1 + w]
            lo = counts[:, r - half : r - half + w]
            segment[half] = hi > lo
        if abs(dy) >= h:
            continue
        src = segment[half]
        if dy >= 0:  # out[y] |= src[y + dy]
            out[: h - dy] |= src[dy:]
        else:
            out[-dy:] |= src[: h + dy]
    return out


def contour_accuracy(pred: Any, gt: Any, bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary F-measure of two masks (the toolkit's `f_measure` without void pixels).

    precision = predicted boundary pixels within the tolerance of the GT boundary / predicted
    boundary pixels; recall likewise from the GT side; F = 2PR / (P + R). Special cases: both
    boundaries empty -> 1; exactly one empty -> 0; P + R = 0 -> 0.

    Args:
        pred: (H, W) predicted mask (nonzero = foreground).
        gt: (H, W) ground-truth mask.
        bound_th: tolerance, a fraction of the image diagonal (< 1) or pixels (>= 1).
    """
    p, g = _mask_pair(pred, gt)
    radius = boundary_tolerance(p.shape, bound_th)  # from the full image, before any crop
    pb, gb = boundary_map(p), boundary_map(g)
    n_pred, n_gt = int(np.count_nonzero(pb)), int(np.count_nonzero(gb))
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:  # (P, R) = (1, 0) or (0, 1)
        return 0.0
    # every boundary pixel of both maps lies in their joint bounding box, so dilating inside the
    # box gives the same matches as dilating the whole image, on far fewer pixels
    ys, xs = np.nonzero(pb | gb)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    pb, gb = pb[box], gb[box]
    precision = np.count_nonzero(pb & dilate_disk(gb, radius)) / float(n_pred)
    recall = np.count_nonzero(gb & dilate_disk(pb, radius)) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


# ----------------------------------------------------------------------------------------------
# statistics over frames
# ----------------------------------------------------------------------------------------------
def _values(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"per-frame values must be 1-D (T,), got shape {arr.shape}")
    return arr


def _nanmean(values: np.ndarray) -> float:
    with warnings.catch_warnings():  # empty or all-NaN -> NaN, quietly, as in the toolkit
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(values))


def mean(values: Any) -> float:
    """Mean of per-frame values (T,), NaN frames skipped; NaN when there are none."""
    return _nanmean(_values(values))


def recall(values: Any, threshold: float = RECALL_THRESHOLD) -> float:
    """Fraction of frames whose value is strictly above `threshold` (NaN counts as below);
    NaN for no frames."""
    arr = _values(values)
    return _nanmean((arr > threshold).astype(np.float64))


def decay_bins(n_frames: int) -> list[slice]:
    """The toolkit's N_DECAY_BINS bins over `n_frames` frames, as slices.

    Edges are `round(linspace(1, n, 5) + 1e-10) - 1` and bin i runs from edge i to edge i + 1
    *inclusive*, so neighbouring bins share their edge frame. For 10 frames the bins are
    frames 0-2, 2-5, 5-7 and 7-9.
    """
    if n_frames < 1:
        raise ValueError(f"decay needs at least one frame, got {n_frames}")
    edges = np.round(np.linspace(1, n_frames, N_DECAY_BINS + 1) + 1e-10) - 1
    edges = edges.astype(np.int64)  # the toolkit uses uint8, which wraps past 256 frames
    return [slice(int(edges[i]), int(edges[i + 1]) + 1) for i in range(N_DECAY_BINS)]


def decay(values: Any) -> float:
    """Mean of the first decay bin minus mean of the last (NaN-skipping), i.e. how much the
    quality drops over the sequence; NaN for no frames. See `decay_bins`."""
    arr = _values(values)
    if arr.size == 0:
        return float("nan")
    bins = decay_bins(arr.size)
    return _nanmean(arr[bins[0]]) - _nanmean(arr[bins[-1]])


def statistics(values: Any) -> Statistics:
    """(mean, recall, decay) of one object's per-frame J or F values, shape (T,)."""
    arr = _values(values)
    return Statistics(mean(arr), recall(arr), decay(arr))
