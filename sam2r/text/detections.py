"""What a text-prompt detector is, and what its answer looks like once checked.

A detector is anything callable as `detector(image, queries)`: `image` a uint8 (H, W, 3) RGB
array, `queries` a list of phrases (`["red car", "person"]`). It answers with boxes in image
pixels, a score per box and which query each box answers, as a `Detections`, a dict with keys
`boxes`, `scores`, `labels`, or a tuple `(boxes, scores, labels)`; labels are query strings or
indices into `queries`. `detect` runs one, checks its answer and keeps what is worth prompting
SAM 2 with: boxes clipped to the image, scores at or above `box_threshold`, one box per object
and label (non-maximum suppression), best first.

What is left to others: real detectors (`sam2r.text.transformers_detector` adapts Hugging Face
zero-shot detectors), turning boxes into masks and tracks (`sam2r.text.image`,
`sam2r.text.video`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from sam2r.ops.boxes import batched_nms


@runtime_checkable
class Detector(Protocol):
    """An open-vocabulary detector: image + phrases -> boxes, scores, labels."""

    def __call__(self, image: np.ndarray, queries: list[str]) -> Any:
        """Find the things `queries` name in a uint8 (H, W, 3) RGB image.

        Returns a `Detections`, a dict with `boxes` (N, 4) x0, y0, x1, y1 in pixels,
        `scores` (N,) and `labels` (N,) query strings or indices, or that tuple.
        """
        ...


@dataclass
class Detections:
    """Boxes found for a list of text queries on one image (best score first once checked)."""

    boxes: np.ndarray  # (N, 4) float32 x0, y0, x1, y1 in image pixels
    scores: np.ndarray  # (N,) float32 detector confidence
    labels: list[str]  # N query strings, the phrase each box answers
    best_below: tuple[str, float] | None = None  # best (label, score) under the threshold

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: Sequence[int] | np.ndarray) -> Detections:
        """The detections at `index`, in that order."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        return Detections(
            self.boxes[idx].reshape(-1, 4),
            self.scores[idx].reshape(-1),
            [self.labels[i] for i in idx],
            self.best_below,
        )

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [])


def parse_queries(text: str | Sequence[str]) -> list[str]:
    """`"red car. person"` or `["red car", "person"]` -> `["red car", "person"]`.

    A string is split at full stops (Grounding DINO's separator); blanks are dropped and
    repeated phrases kept once. ValueError when nothing is left.
    """
    if isinstance(text, str):
        parts = text.split(".")
    elif isinstance(text, Sequence) and all(isinstance(t, str) for t in text):
        parts = list(text)
    else:
        raise TypeError(
            f"the text prompt must be a string like 'red car. person' or a list of strings, "
            f"got {type(text).__name__}"
        )
    queries = list(dict.fromkeys(" ".join(p.split()) for p in parts if p.strip()))
    if not queries:
        raise ValueError(
            f"the text prompt {text!r} names nothing: give one or more phrases separated by "
            "full stops, e.g. 'red car. person'"
        )
    return queries


def as_detections(raw: Any, queries: list[str]) -> Detections:
    """A detector's answer as checked `Detections` (labels as query strings).

    Boxes that are not x0 <= x1, y0 <= y1, or not finite, are the detector's bug and raise
    ValueError.
    """
    if isinstance(raw, Detections):
        boxes, scores, labels = raw.boxes, raw.scores, raw.labels
    elif isinstance(raw, dict):
        missing = {"boxes", "scores", "labels"} - set(raw)
        if missing:
            raise ValueError(
                f"the detector returned a dict without {sorted(missing)}; expected keys "
                "'boxes' (N, 4), 'scores' (N,) and 'labels' (N,)"
            )
        boxes, scores, labels = raw["boxes"], raw["scores"], raw["labels"]
    elif isinstance(raw, (tuple, list)) and len(raw) == 3:
        boxes, scores, labels = raw
    else:
        raise TypeError(
            "the detector must return Detections, a dict with 'boxes', 'scores', 'labels', or "
            f"a tuple (boxes, scores, labels); got {type(raw).__name__}"
        )
    boxes = _numbers(boxes).reshape(-1, 4) if _size(boxes) else np.zeros((0, 4), np.float32)
    scores = _numbers(scores).reshape(-1)
    labels = _labels(labels, queries)
    if not (len(boxes) == len(scores) == len(labels)):
        raise ValueError(
            f"the detector returned {len(boxes)} boxes, {len(scores)} scores and "
            f"{len(labels)} labels; expected one score and one label per box"
        )
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError("the detector returned boxes or scores that are NaN or infinite")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(
            f"the detector returned boxes that are not x0, y0, x1, y1 with x0 <= x1 and "
            f"y0 <= y1: {boxes[bad].tolist()}"
        )
    return Detections(boxes, scores, labels)


def clip_to_image(dets: Detections, hw: tuple[int, int]) -> Detections:
    """Boxes clipped to the (H, W) image; those with no area inside it dropped with a warning."""
    h, w = hw
    clipped = dets.boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
    outside = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if outside.any():
        warnings.warn(
            f"dropped {int(outside.sum())} detection(s) with no area inside the {w}x{h} image: "
            f"{dets.boxes[outside].round(1).tolist()}",
            stacklevel=4,
        )
    kept = Detections(clipped, dets.scores, dets.labels, dets.best_below)
    return kept.take(np.flatnonzero(~outside))


def detect(
    detector: Any,
    image: np.ndarray,
    queries: list[str],
    *,
    box_threshold: float,
    nms_threshold: float | None = 0.5,
    max_detections: int | None = None,
) -> Detections:
    """Run a detector on a uint8 (H, W, 3) image and keep the detections worth prompting.

    Args:
        detector: a `Detector` (any callable `detector(image, queries)`).
        image: uint8 (H, W, 3) RGB.
        queries: the phrases (`parse_queries`).
        box_threshold: keep detections scoring at least this.
        nms_threshold: of two boxes with the same label overlapping by more than this IoU,
            keep the better (None: keep both).
        max_detections: keep at most this many, best first (None: all).

    Returns:
        the kept detections, best score first, clipped to the image (those above the
        threshold with no area inside it dropped with a warning); `best_below` names the best
        one under the threshold (for a message when nothing is kept).
    """
    check_thresholds(box_threshold, nms_threshold)
    if not callable(detector):
        raise TypeError(
            f"the detector must be callable as detector(image, queries), got "
            f"{type(detector).__name__}"
        )
    found = as_detections(detector(image, list(queries)), queries)
    above = found.scores >= box_threshold
    below = np.flatnonzero(~above)
    best_below = None
    if len(below):
        i = below[np.argmax(found.scores[below])]
        best_below = (found.labels[i], float(found.scores[i]))
    kept = clip_to_image(found.take(np.flatnonzero(above)), image.shape[:2])
    if len(kept) and nms_threshold is not None:
        ids = {label: i for i, label in enumerate(dict.fromkeys(kept.labels))}
        order = batched_nms(
            torch.from_numpy(kept.boxes).double(),
            torch.from_numpy(kept.scores).double(),
            torch.as_tensor([ids[x] for x in kept.labels]),
            nms_threshold,
        )
        kept = kept.take(order.numpy())
    else:
        kept = kept.take(np.argsort(-kept.scores, kind="stable"))
    if max_detections is not None:
        kept = kept.take(np.arange(min(max_detections, len(kept))))
    kept.best_below = best_below
    return kept


def nothing_found(dets: Detections, queries: list[str], box_threshold: float) -> str:
    """The message for a detection run that kept nothing."""
    msg = f"the detector found nothing for {'. '.join(queries)!r} at box_threshold {box_threshold}"
    if dets.best_below is not None:
        label, score = dets.best_below
        msg += f" (best: {label!r} at {score:.3f}; a lower threshold would keep it)"
    return msg


def check_thresholds(box_threshold: float, nms_threshold: float | None = None) -> None:
    """ValueError unless the thresholds are numbers in [0, 1]."""
    for name, value in (("box_threshold", box_threshold), ("nms_threshold", nms_threshold)):
        if value is None and name == "nms_threshold":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _size(x: Any) -> int:
    return int(np.size(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x))


def _numbers(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"the detector returned non-numeric boxes or scores: {x!r}") from None


def _labels(labels: Any, queries: list[str]) -> list[str]:
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu().tolist()
    out = []
    for x in np.asarray(labels, dtype=object).reshape(-1).tolist():
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, (int, np.integer)) and 0 <= int(x) < len(queries):
            out.append(queries[int(x)])
        else:
            raise ValueError(
                f"the detector returned the label {x!r}; expected a query string or an index "
                f"0..{len(queries) - 1} into {queries}"
            )
    return out
