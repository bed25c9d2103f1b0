"""Text-prompt benchmark: detector + tracker time per frame (sam2r.text, issue 16).

The bundled example clip (16 frames, 256x192) with the bundled model `sam2r_micro`, on the CPU.
Detectors: a stub answering the clip's ground-truth boxes (no detector cost: the tracker's own
overhead), and the tiny random OWLv2 and Grounding DINO of `sam2r.text.tiny_detectors` (the
transformers plumbing: pre-processing, a forward pass of a ~0.1 M-parameter model, decoding),
plus any real detector given with `--detector ID_OR_DIR` (e.g. a local copy of
`IDEA-Research/grounding-dino-tiny`). Each run's detector calls are timed apart from the rest,
so `tracker` is SAM 2's work (box prompts, admission, propagation) and `detector` the
detector's. The baseline in the same run is plain tracking: the same two boxes given by hand on
frame 0 and propagated (`VideoPredictor.add_points` + `propagate`). There is no official
implementation of text prompts to compare with.

    python bench/bench_text.py [--rounds 3] [--every 0,4,1] [--detector DIR]

Writes bench/results/text.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, cpu_info  # a sibling file
from PIL import Image

CLIP = ROOT / "examples" / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
ANNOTATIONS = ROOT / "examples" / "synth_davis" / "Annotations" / "480p" / "val_00000"
IMAGE = ROOT / "examples" / "shapes.png"
TEXT = "ball. star"


def _frames() -> list[np.ndarray]:
    return [np.array(Image.open(p).convert("RGB")) for p in sorted(CLIP.glob("*.jpg"))]


def _gt_boxes(t: int) -> list[list[float]]:
    ann = np.array(Image.open(ANNOTATIONS / f"{t:05d}.png"))
    out = []
    for obj in (1, 2):
        ys, xs = np.nonzero(ann == obj)
        out.append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
    return out


class Timed:
    """Wraps a detector and adds up the time of its calls."""

    def __init__(self, detector: Any) -> None:
        self.detector, self.seconds, self.calls = detector, 0.0, 0

    def __call__(self, image: np.ndarray, queries: list[str]) -> Any:
        t = time.perf_counter()
        out = self.detector(image, queries)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out


def _stub(frames: list[np.ndarray]) -> Any:
    keys = {f.tobytes(): t for t, f in enumerate(frames)}

    def detector(image: np.ndarray, queries: list[str]) -> Any:
        boxes = _gt_boxes(keys.get(image.tobytes(), 0))
        return boxes, [0.9, 0.7], ["ball", "star"]

    return detector


def _track_by_hand(model: Any, frames: list[np.ndarray]) -> float:
    from sam2r.predictor.video import VideoPredictor

    pred = VideoPredictor(model)
    t = time.perf_counter()
    session = pred.init_session(frames)
    for i, box in enumerate(_gt_boxes(0), start=1):
        pred.add_points(session, 0, i, box=box)
    for _ in pred.propagate(session):
        pass
    return (time.perf_counter() - t) / len(frames)


def _track_text(model: Any, frames: list[np.ndarray], detector: Any, every: int) -> dict:
    from sam2r.predictor.video import VideoPredictor
    from sam2r.text import TextTracker

    pred = VideoPredictor(model)
    timed = Timed(detector)
    tracker = TextTracker(pred, timed, box_threshold=0.0, max_objects=3)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny OWLv2 boxes on the padding are dropped
        results = list(tracker.track(pred.init_session(frames), TEXT, every=every))
    total = time.perf_counter() - t
    n = len(results)
    return {
        "total_s_per_frame": total / n,
        "detector_s_per_frame": timed.seconds / n,
        "tracker_s_per_frame": (total - timed.seconds) / n,
        "detector_s_per_call": timed.seconds / max(timed.calls, 1),
        "detector_calls": timed.calls,
        "objects": len(tracker.objects),
    }


def _image(model: Any, detector: Any) -> dict:
    from sam2r.text import TextPredictor

    image = np.array(Image.open(IMAGE).convert("RGB"))
    timed = Timed(detector)
    tp = TextPredictor(model, timed, box_threshold=0.0, max_detections=3)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = tp.predict(image, TEXT)
    total = time.perf_counter() - t
    return {
        "total_s": total,
        "detector_s": timed.seconds,
        "sam_s": total - timed.seconds,
        "masks": len(pred),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--every", default="0,4,1", help="--detect-every values to time")
    ap.add_argument("--detector", action="append", default=[], help="a real detector (id/dir)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "text.json"))
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    import sam2r
    from sam2r.text import load_detector
    from sam2r.text.tiny_detectors import save_tiny_detector

    model = sam2r.from_pretrained("sam2r_micro")
    frames = _frames()
    detectors: dict[str, Any] = {"stub (ground-truth boxes)": _stub(frames)}
    tmp = Path(tempfile.mkdtemp())
    for kind in ("owlv2", "grounding-dino"):
        detectors[f"tiny {kind}"] = load_detector(save_tiny_detector(kind, tmp / kind))
    for spec in args.detector:
        detectors[spec] = load_detector(spec)
    everys = [int(v) for v in args.every.split(",")]

    _track_by_hand(model, frames[:2])  # warm-up: allocator, kernels
    rounds: list[dict] = []
    for r in range(args.rounds):
        row: dict[str, Any] = {"by_hand_s_per_frame": _track_by_hand(model, frames)}
        for name, det in detectors.items():
            for every in everys:
                row[f"{name} | every {every}"] = _track_text(model, frames, det, every)
            row[f"{name} | image"] = _image(model, det)
        rounds.append(row)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(key: str, field: str | None = None) -> float:
        """The best round: other jobs on a shared machine only ever add time (the median of
        the rounds is kept in the JSON too)."""
        vals = [rr[key] if field is None else rr[key][field] for rr in rounds]
        return min(vals)

    def median(key: str, field: str | None = None) -> float:
        vals = [rr[key] if field is None else rr[key][field] for rr in rounds]
        return statistics.median(vals)

    summary: dict[str, Any] = {
        "statistic": "min over rounds",
        "by_hand_s_per_frame": med("by_hand_s_per_frame"),
        "by_hand_s_per_frame_median": median("by_hand_s_per_frame"),
        "video": {},
        "image": {},
    }
    size = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
    print(f"\nclip: {len(frames)} frames {size}, sam2r_micro, best of {args.rounds} rounds "
          f"(seconds), {torch.get_num_threads()} thread(s)")  # fmt: skip
    print(f"plain tracking, 2 boxes by hand: {summary['by_hand_s_per_frame']:.4f} s/frame\n")
    print(f"{'detector':34s} {'every':>5s} {'total/fr':>9s} {'det/fr':>8s} {'sam/fr':>8s} "
          f"{'det/call':>9s} {'calls':>5s} {'objs':>4s}")  # fmt: skip
    for key in rounds[0]:
        if " | every " not in key:
            continue
        fields = {f: med(key, f) for f in rounds[0][key]}
        summary["video"][key] = {
            **fields,
            "total_s_per_frame_median": median(key, "total_s_per_frame"),
        }
        name, every = key.split(" | every ")
        print(f"{name:34s} {every:>5s} {fields['total_s_per_frame']:9.4f} "
              f"{fields['detector_s_per_frame']:8.4f} {fields['tracker_s_per_frame']:8.4f} "
              f"{fields['detector_s_per_call']:9.4f} {fields['detector_calls']:5.0f} "
              f"{fields['objects']:4.0f}")  # fmt: skip
    print(f"\nimage {IMAGE.name} (640x480), up to 3 masks:")
    for key in rounds[0]:
        if not key.endswith(" | image"):
            continue
        fields = {f: med(key, f) for f in rounds[0][key]}
        summary["image"][key] = fields
        print(f"{key[: -len(' | image')]:34s} total {fields['total_s']:.4f} s, detector "
              f"{fields['detector_s']:.4f} s, SAM {fields['sam_s']:.4f} s")  # fmt: skip
    record = {
        "bench": "text",
        "cpu": cpu_info(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "clip": {"frames": len(frames), "hw": list(frames[0].shape[:2]), "text": TEXT},
        "summary": summary,
        "per_round": rounds,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
