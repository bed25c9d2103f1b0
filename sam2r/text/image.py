"""Text prompts on images: a detector finds boxes for the phrases, SAM 2 turns each into a mask.

    from sam2r.text import TextPredictor, load_detector
    tp = TextPredictor(model, load_detector("IDEA-Research/grounding-dino-tiny"))
    pred = tp.predict(image, "red car. person", box_threshold=0.35)
    pred.masks, pred.labels, pred.scores      # (N, H, W) bool, N phrases, (N,) detector scores

This is the Grounded-SAM recipe: SAM 2's released weights take no text, so an open-vocabulary
detector names the objects and each of its boxes is a box prompt (one mask per box, single
mask output as for any box prompt).

What is left to others: the detector and the checks of its answer (`sam2r.text.detections`),
the masks from boxes (`sam2r.predictor.image.ImagePredictor`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2r.model.sam2 import SAM2Model
from sam2r.ops.transforms import to_rgb_array
from sam2r.predictor.image import ImagePredictor
from sam2r.text.detections import (
    Detections,
    check_thresholds,
    detect,
    nothing_found,
    parse_queries,
)


@dataclass
class TextPrediction:
    """One mask per detection of a text prompt on one image (best detector score first)."""

    masks: np.ndarray  # (N, H, W) bool
    boxes: np.ndarray  # (N, 4) float32 x0, y0, x1, y1: the detector's boxes, clipped
    scores: np.ndarray  # (N,) float32 detector scores
    mask_scores: np.ndarray  # (N,) float32 SAM 2's predicted IoU of each mask
    labels: list[str]  # N phrases, the one each detection answers
    queries: list[str]  # the phrases asked for

    def __len__(self) -> int:
        return len(self.labels)


class TextPredictor:
    """Segment the things a text prompt names in images.

    Args:
        predictor: an `ImagePredictor`, or a `SAM2Model` to make one with.
        detector: any callable `detector(image, queries)` (see `sam2r.text.detections`), e.g.
            `load_detector(...)` for a Hugging Face zero-shot detector.
        box_threshold: keep detections scoring at least this (default of `predict`).
        nms_threshold: of two boxes with the same label overlapping by more than this IoU,
            keep the better (None: keep both).
        max_detections: segment at most this many detections, best first (None: all).
    """

    def __init__(
        self,
        predictor: ImagePredictor | SAM2Model,
        detector: Any,
        *,
        box_threshold: float = 0.3,
        nms_threshold: float | None = 0.5,
        max_detections: int | None = None,
    ) -> None:
        if isinstance(predictor, SAM2Model):
            predictor = ImagePredictor(predictor)
        if not isinstance(predictor, ImagePredictor):
            raise TypeError(
                f"predictor must be an ImagePredictor or a SAM2Model, got "
                f"{type(predictor).__name__}"
            )
        if not callable(detector):
            raise TypeError(
                f"detector must be callable as detector(image, queries), got "
                f"{type(detector).__name__}"
            )
        check_thresholds(box_threshold, nms_threshold)
        self.predictor = predictor
        self.detector = detector
        self.box_threshold = box_threshold
        self.nms_threshold = nms_threshold
        self.max_detections = _check_max("max_detections", max_detections)

    def detect(
        self, image: Any, text: str | Sequence[str], *, box_threshold: float | None = None
    ) -> Detections:
        """The detector's kept boxes for `text` on `image` (no masks)."""
        rgb = to_rgb_array(image)
        threshold = self.box_threshold if box_threshold is None else box_threshold
        return detect(
            self.detector,
            rgb,
            parse_queries(text),
            box_threshold=threshold,
            nms_threshold=self.nms_threshold,
            max_detections=self.max_detections,
        )

    def predict(
        self,
        image: Any,
        text: str | Sequence[str],
        *,
        box_threshold: float | None = None,
        multimask_output: bool = False,
    ) -> TextPrediction:
        """One mask per detection of `text` on `image`.

        Args:
            image: uint8 (H, W, 3) RGB array or PIL image.
            text: phrases separated by full stops (`"red car. person"`) or a list of them.
            box_threshold: keep detections scoring at least this (None: the predictor's).
            multimask_output: predict 3 masks per box and keep the one with the best IoU
                (default: one mask, as for any box prompt).

        Returns:
            a `TextPrediction`, empty (N = 0, with a warning naming the best score under the
            threshold) when nothing is detected; the image is then not embedded.
        """
        rgb = to_rgb_array(image)
        queries = parse_queries(text)
        threshold = self.box_threshold if box_threshold is None else box_threshold
        dets = detect(
            self.detector,
            rgb,
            queries,
            box_threshold=threshold,
            nms_threshold=self.nms_threshold,
            max_detections=self.max_detections,
        )
        h, w = rgb.shape[:2]
        n = len(dets)
        if n == 0:
            warnings.warn(nothing_found(dets, queries, threshold), stacklevel=2)
            return TextPrediction(
                np.zeros((0, h, w), bool), dets.boxes, dets.scores, np.zeros(0, np.float32),
                [], queries,
            )  # fmt: skip
        self.predictor.set_image(rgb)
        pred = self.predictor.predict(box=dets.boxes, multimask_output=multimask_output)
        masks = pred.masks.reshape(n, -1, h, w)  # (N, M, H, W): one box gives (M, H, W)
        ious = pred.scores.reshape(n, -1)
        best = np.argmax(ious, axis=1)
        rows = np.arange(n)
        return TextPrediction(
            masks=masks[rows, best],
            boxes=dets.boxes,
            scores=dets.scores,
            mask_scores=ious[rows, best].astype(np.float32),
            labels=dets.labels,
            queries=queries,
        )


def predict_text(
    predictor: ImagePredictor | SAM2Model,
    image: Any,
    text: str | Sequence[str],
    detector: Any,
    *,
    box_threshold: float = 0.3,
    nms_threshold: float | None = 0.5,
) -> TextPrediction:
    """One call: `TextPredictor(predictor, detector).predict(image, text, ...)`."""
    tp = TextPredictor(
        predictor, detector, box_threshold=box_threshold, nms_threshold=nms_threshold
    )
    return tp.predict(image, text)


def _check_max(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 or None, got {value!r}")
    return value
