"""Text prompts: "segment and track every <thing>" through a pluggable open-vocabulary detector.

SAM 2's released weights take no text, so a detector turns phrases into boxes and SAM 2 turns
boxes into masks and tracks (the Grounded-SAM-2 recipe):

    from sam2r.text import TextPredictor, TextTracker, load_detector
    detector = load_detector("IDEA-Research/grounding-dino-tiny")   # or any callable
    pred = TextPredictor(model, detector).predict(image, "red car. person")
    tracker = TextTracker(VideoPredictor(model), detector)
    for result in tracker.track(tracker.predictor.init_session("clip.mp4"), "person", every=10):
        ...

* `detections`: the `Detector` protocol (`detector(image, queries) -> boxes, scores, labels`),
  `Detections`, and `detect` (thresholds, clipping, NMS);
* `transformers_detector`: Hugging Face OWL-ViT / OWLv2 / Grounding DINO (the `text` extra);
* `image`: `TextPredictor`, one mask per detection on an image;
* `video`: `TextTracker`, detections on frame 0 (and every N frames) tracked with stable ids.

Nothing here imports transformers until `load_detector` is called.
"""

from sam2r.text.detections import Detections, Detector, detect, parse_queries
from sam2r.text.image import TextPrediction, TextPredictor, predict_text
from sam2r.text.transformers_detector import TransformersDetector, load_detector
from sam2r.text.video import TextObject, TextTracker

__all__ = [
    "Detections",
    "Detector",
    "TextObject",
    "TextPrediction",
    "TextPredictor",
    "TextTracker",
    "TransformersDetector",
    "detect",
    "load_detector",
    "parse_queries",
    "predict_text",
]
