"""Text prompts on the command line: a detector names the objects, SAM 2 segments and tracks them.

    sam2r image photo.jpg --text "cat" [--detector ID|DIR|module:function] [--box-threshold T]
    sam2r video clip.mp4 --text "person. dog" [--detect-every N] [--detector ...]
    sam2r video --stream 0 --text "person" --detect-every 30

`--detector` is a Hugging Face hub id (default `IDEA-Research/grounding-dino-tiny`; downloaded
when online, else read from the hub cache), a folder saved with `save_pretrained` (offline), or
`module:function`, a Python callable `detector(image, queries)` (see `sam2r.text`). Images get
the outputs of `sam2r image` with each mask's label and detector score in the JSON; videos the
outputs of `sam2r video`, with each object's label (and the detection that found it) in
`masks.json`.

What is left to others: the detectors and the pipelines (`sam2r.text`), the other options and
outputs of the two commands (`sam2r.cli.image`, `sam2r.cli.video`, `sam2r.cli.video_outputs`),
which call in here when `--text` is given.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.cli.common import CliError, load_model, overlay, precision_of, read_image
from sam2r.cli.video_outputs import Outputs

DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-tiny"
_CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def add_text_args(parser: argparse.ArgumentParser, video: bool) -> None:
    """Add --text and the detector options to `sam2r image` / `sam2r video`."""
    parser.add_argument(
        "--text",
        metavar="PHRASES",
        help="segment what these phrases name, e.g. 'red car. person' (an open-vocabulary "
        "detector finds the boxes; needs the `text` extra or a --detector module:function)",
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        metavar="ID|DIR|MODULE:FUNC",
        help=f"with --text: a Hugging Face zero-shot detector (hub id or save_pretrained "
        f"folder; default {DEFAULT_DETECTOR}) or a Python callable detector(image, queries)",
    )
    parser.add_argument(
        "--box-threshold",
        type=float,
        default=0.3,
        metavar="T",
        help="with --text: keep detections scoring at least T (default 0.3; OWLv2 wants ~0.1)",
    )
    if video:
        parser.add_argument(
            "--detect-every",
            type=int,
            default=0,
            metavar="N",
            help="with --text: also detect every N frames and track new objects (0: frame 0)",
        )


def make_detector(spec: str, device: str) -> Any:
    """The detector `--detector` names; CliError with advice when it cannot be had."""
    if _CALLABLE.fullmatch(spec) and not Path(spec).exists():
        module, _, name = spec.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise CliError(f"--detector {spec}: cannot import it ({e})") from None
        if not callable(obj):
            raise CliError(f"--detector {spec}: {type(obj).__name__} is not callable")
        return obj
    from sam2r.text import load_detector

    try:
        return load_detector(spec, device=device)
    except ImportError as e:
        raise CliError(
            str(e).replace("pass any callable", "pass --detector module:function")
        ) from None
    except (RuntimeError, ValueError) as e:
        raise CliError(f"--detector {spec}: {e}") from None


def _check_common(args: argparse.Namespace) -> None:
    if getattr(args, "onnx", None) is not None:
        raise CliError("--text runs the torch model (sam2r.text); drop --onnx")
    if not 0.0 <= args.box_threshold <= 1.0:
        raise CliError(f"--box-threshold must be in [0, 1], got {args.box_threshold}")
    from sam2r.text import parse_queries

    try:
        parse_queries(args.text)
    except ValueError as e:
        raise CliError(f"--text: {e}") from None


def run_image_text(args: argparse.Namespace) -> int:
    """`sam2r image IMAGE --text PHRASES`: one mask per detection."""
    from PIL import Image

    from sam2r.predictor.image import ImagePredictor
    from sam2r.text import TextPredictor

    if args.point or args.box:
        raise CliError("--text finds the objects itself: drop --point / --box")
    _check_common(args)
    path = Path(args.image)
    image = read_image(path)
    detector = make_detector(args.detector, args.device)
    model = load_model(args.model, args.checkpoint, args.device, args.config)
    predictor = ImagePredictor(
        model, max_hole_area=args.max_hole_area, precision=precision_of(args, model.device)
    )
    tp = TextPredictor(predictor, detector, box_threshold=args.box_threshold)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pred = tp.predict(image, args.text)
        except (TypeError, ValueError) as e:
            raise CliError(f"--detector {args.detector}: {e}") from None
    for w in caught:
        print(f"sam2r image: {w.message}", file=sys.stderr)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, m in enumerate(pred.masks, start=1):
        Image.fromarray((m * 255).astype(np.uint8)).save(out / f"{path.stem}_mask{i}.png")
        ys, xs = np.nonzero(m)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None
        records.append(
            {
                "object": i,
                "label": pred.labels[i - 1],
                "detection_score": round(float(pred.scores[i - 1]), 6),
                "detection_box_xyxy": [round(float(v), 2) for v in pred.boxes[i - 1]],
                "score": round(float(pred.mask_scores[i - 1]), 6),
                "area": int(m.sum()),
                "bbox_xyxy": bbox,
            }
        )
    Image.fromarray(overlay(image, list(pred.masks))).save(out / f"{path.stem}_overlay.png")
    summary = {
        "image": str(path),
        "model": model.cfg.name,
        "text": args.text,
        "queries": pred.queries,
        "detector": args.detector,
        "box_threshold": args.box_threshold,
        "masks": records,
    }
    (out / f"{path.stem}_masks.json").write_text(json.dumps(summary, indent=1))
    for r in records:
        print(
            f"mask {r['object']} ({r['label']!r}, detection {r['detection_score']:.3f}): "
            f"score {r['score']:.3f}, area {r['area']} px, box {r['bbox_xyxy']}"
        )
    print(f"wrote {len(records)} mask(s), an overlay and a JSON summary to {out}/")
    return 0


class TextOutputs(Outputs):
    """`sam2r video`'s outputs, with each object's label in `masks.json`."""

    def __init__(self, tracker: Any, text: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracker = tracker
        self.text = text

    def write(self, frame: Any, result: Any) -> None:
        super().write(frame, result)
        for obj in self.frames[-1]["objects"]:
            found = self.tracker.objects.get(obj["obj_id"])
            obj["label"] = None if found is None else found.label

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        path = self.out / "masks.json"
        summary = json.loads(path.read_text())
        summary["text"] = self.text
        summary["objects"] = {
            str(k): {
                "label": o.label,
                "detection_score": round(o.score, 6),
                "box_xyxy": [round(float(v), 2) for v in o.box],
                "frame_idx": o.frame_idx,
            }
            for k, o in self.tracker.objects.items()
        }
        path.write_text(json.dumps(summary))


def run_video_text(
    args: argparse.Namespace,
    make_predictor: Callable[[argparse.Namespace], Any],
    open_video: Callable[[Path], Any],
    progress: Callable[[Any, int | None], Any],
    is_stream: bool,
    default_fps: float,
) -> int:
    """`sam2r video INPUT --text PHRASES [--detect-every N]` (a video, or a live stream).

    The helpers of `sam2r.cli.video` are passed in (this module does not import it).
    """
    from sam2r.text import TextTracker

    if args.point or args.box or args.mask is not None or args.everything:
        raise CliError("--text finds the objects itself: drop --point / --box / --mask")
    if args.reverse or args.start is not None:
        raise CliError("--text tracks from the first frame forward (no --reverse / --start)")
    if args.detect_every < 0:
        raise CliError(f"--detect-every must be >= 0 (0: frame 0 only), got {args.detect_every}")
    _check_common(args)
    detector = make_detector(args.detector, args.device)
    if is_stream:
        return _run_stream(args, detector, make_predictor, progress, default_fps)
    source = open_video(Path(args.input))
    predictor = make_predictor(args)
    tracker = TextTracker(predictor, detector, box_threshold=args.box_threshold, max_objects=255)
    session = predictor.init_session(source)
    n = len(source) if args.max_frames is None else min(len(source), args.max_frames)
    fps = args.fps or getattr(source, "fps", None) or default_fps
    out = TextOutputs(
        tracker, args.text, Path(args.out), str(args.input), predictor.model.cfg.name, fps,
        args.overlay,
    )  # fmt: skip
    results = tracker.track(session, args.text, every=args.detect_every)
    try:
        _write_all(out, progress(islice(results, n), n), source.frame)
    finally:
        if hasattr(source, "close"):
            source.close()
    return _report(out, tracker)


def _run_stream(
    args: argparse.Namespace,
    detector: Any,
    make_predictor: Callable[[argparse.Namespace], Any],
    progress: Callable[[Any, int | None], Any],
    default_fps: float,
) -> int:
    from sam2r.io import video_file
    from sam2r.text import TextTracker

    source = args.stream if args.stream is not None else args.input
    predictor = make_predictor(args)
    try:
        frames = video_file.iter_stream(int(source) if source.isdigit() else source)
    except (ImportError, ValueError) as e:
        raise CliError(str(e)) from None
    tracker = TextTracker(predictor, detector, box_threshold=args.box_threshold, max_objects=255)
    out = TextOutputs(
        tracker, args.text, Path(args.out), source, predictor.model.cfg.name,
        args.fps or default_fps, args.overlay,
    )  # fmt: skip
    kept: list[Any] = []

    def remembered() -> Iterator[Any]:
        for frame in islice(frames, args.max_frames):
            kept[:] = [frame]  # the overlay draws the frame just tracked
            yield frame

    results = tracker.track_stream(
        predictor.init_stream(), remembered(), args.text, every=args.detect_every
    )
    try:
        _write_all(out, progress(results, args.max_frames), lambda _: kept[0])
    except KeyboardInterrupt:
        print(f"interrupted after {len(out.frames)} frame(s)", file=sys.stderr)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    return _report(out, tracker)


def _write_all(out: TextOutputs, results: Any, frame_of: Callable[[int], Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with out:
                for result in results:
                    out.write(frame_of(result.frame_idx), result)
        except (TypeError, ValueError) as e:
            raise CliError(str(e)) from None
    for w in caught:
        print(f"sam2r video: {w.message}", file=sys.stderr)


def _report(out: TextOutputs, tracker: Any) -> int:
    found = ", ".join(f"{k}: {o.label!r} (frame {o.frame_idx})" for k, o in tracker.objects.items())
    print(f"tracked {len(tracker.objects)} object(s) over {len(out.frames)} frame(s)")
    if found:
        print(f"objects {found}")
    print(f"wrote {out.report()}")
    return 0
