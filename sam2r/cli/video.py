"""The `sam2r video` command: track objects through a video from clicks, boxes or a mask.

    sam2r video frames/ --point 0:1:210,350 --box 0:2:30,40,200,220 --out out/
    sam2r video clip.mp4 --mask first_frame.png --out out/
    sam2r video --stream 0 --point 0:1:320,240 --max-frames 300 --out out/

INPUT is a folder of frames (`00000.jpg`, ...), a video file (.mp4/.mov/.webm/.avi/.mkv, the
`video` extra), or with `--stream` (or an INPUT that is a camera index or a URL) a live source
read frame by frame. Prompts are `--point FRAME:OBJ:X,Y[,LABEL]` (repeatable; the clicks of one
object on one frame go together), `--box FRAME:OBJ:X0,Y0,X1,Y1` and `--mask PNG` (a DAVIS
palette PNG whose colour indices are object ids, on frame `--mask-frame`, default 0). Object ids
are 1..255 (the palette index in the output).

Outputs, in processing order (backwards with `--reverse`), written as frames come:
* `OUT/masks/<frame:05d>.png`: DAVIS palette PNG, each pixel the id of the object there (0:
  none); objects absent from the frame (object score <= 0) are not drawn; where masks overlap,
  the object with the higher logit wins;
* `OUT/masks.json`: per frame and object, the object's own mask as COCO RLE (overlaps kept),
  its area, box (x, y, w, h) and object-score logit;
* `OUT/overlay.mp4`: the masks over the video (needs PyAV; skipped with a message without it).

What is left to others: parsing and giving the prompts (`sam2r.cli.video_prompts`), writing
the outputs (`sam2r.cli.video_outputs`), tracking (`sam2r.predictor.video`), decoding
(`sam2r.io`), the model (`sam2r.cli.common.load_model`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.cli.common import CliError, load_model, precision_of
from sam2r.cli.export import add_onnx_arg, onnx_video_predictor
from sam2r.cli.text import add_text_args, run_video_text
from sam2r.cli.video_outputs import Outputs
from sam2r.cli.video_prompts import (
    BOX_FORM,
    POINT_FORM,
    Prompts,
    add_prompts,
    check_prompts,
    parse_prompts,
)

DEFAULT_FPS = 24.0


def _is_stream(source: str) -> bool:
    return source.isdigit() or "://" in source


def make_predictor(args: argparse.Namespace) -> Any:
    """The `VideoPredictor` of a run (its model from --model / --checkpoint / --config)."""
    from sam2r.predictor.video import VideoPredictor

    memory = getattr(args, "memory", "official")
    if getattr(args, "onnx", None) is not None:  # an exported model (sam2r.cli.export)
        return onnx_video_predictor(args)  # with the same --memory mode
    model = load_model(args.model, args.checkpoint, args.device, args.config)
    precision = precision_of(args, model.device)
    try:
        return VideoPredictor(
            model,
            fill_hole_area=args.fill_hole_area,
            non_overlap_masks=True if args.non_overlap else None,
            precision=precision,
            memory=memory,
        )
    except ValueError as e:
        raise CliError(str(e).replace("fill_hole_area", "--fill-hole-area")) from None


def open_video(path: Path) -> Any:
    """A folder of frames or a video file as a frame source; CliError with advice."""
    from sam2r.io.frames import IMAGE_EXTENSIONS, FolderFrames
    from sam2r.io.video_file import VIDEO_EXTENSIONS, VideoFileFrames

    if path.is_dir():
        try:
            return FolderFrames(path)
        except ValueError as e:
            raise CliError(str(e)) from None
    if not path.exists():
        raise CliError(f"{path}: no such folder or video file")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        try:
            return VideoFileFrames(path)
        except (ImportError, ValueError) as e:
            raise CliError(str(e)) from None
    if suffix in IMAGE_EXTENSIONS:
        raise CliError(f"{path} is a single image: use `sam2r image`, or give a folder of frames")
    raise CliError(
        f"{path}: expected a folder of frames or a video file ({', '.join(VIDEO_EXTENSIONS)})"
    )


def frame_order(num_frames: int, start: int, max_frames: int | None, reverse: bool) -> list[int]:
    """The frames a propagation from `start` visits (at most `max_frames` of them)."""
    span = num_frames if max_frames is None else max_frames - 1
    if reverse:
        return list(range(start, max(start - span, 0) - 1, -1)) if start > 0 else []
    return list(range(start, min(start + span, num_frames - 1) + 1))


def _progress(iterable: Any, total: int | None) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="tracking", unit="frame", file=sys.stderr)


def run_video(args: argparse.Namespace, prompts: Prompts) -> int:
    """Track the prompts through a folder of frames or a video file."""
    source = open_video(Path(args.input))
    n = len(source)
    check_prompts(prompts, n, source.hw)
    if args.start is not None and args.start >= n:
        raise CliError(f"--start {args.start} is out of range: the video has {n} frames")
    start = args.start
    if start is None:  # the earliest prompted frame (the latest when tracking backwards)
        start = prompts.frames[-1] if args.reverse else prompts.frames[0]
    order = frame_order(n, start, args.max_frames, args.reverse)
    if not order:
        raise CliError("nothing to track: --reverse from frame 0; give a later --start")

    predictor = make_predictor(args)
    session = predictor.init_session(source)
    add_prompts(predictor, session, prompts)
    span = None if args.max_frames is None else args.max_frames - 1
    results = predictor.propagate(session, start, span, reverse=args.reverse)
    fps = args.fps or getattr(source, "fps", None) or DEFAULT_FPS
    out = Outputs(Path(args.out), str(args.input), predictor.model.cfg.name, fps, args.overlay)
    try:
        with out:
            for result in _progress(results, len(order)):
                out.write(source.frame(result.frame_idx), result)
    finally:
        if hasattr(source, "close"):  # a video file
            source.close()
    print(f"tracked {out.num_objects} object(s) over {len(out.frames)} frame(s)")
    print(f"wrote {out.report()}")
    return 0


def run_stream(args: argparse.Namespace, prompts: Prompts, source: str) -> int:
    """Track the prompts (on frame 0) through a live source, writing outputs as frames come."""
    from sam2r.io import video_file

    if args.reverse or args.start is not None:
        raise CliError("--reverse and --start need a video; a live stream runs forward from 0")
    check_prompts(prompts, None, None)
    predictor = make_predictor(args)
    if not hasattr(predictor, "init_stream"):
        raise CliError("this version of sam2r cannot track live streams (no init_stream)")
    try:
        frames = video_file.iter_stream(int(source) if source.isdigit() else source)
        first = next(frames, None)
    except (ImportError, ValueError) as e:
        raise CliError(str(e)) from None
    if first is None:
        raise CliError(f"the stream {source!r} gave no frame")
    check_prompts(prompts, None, first.shape[:2])
    session = predictor.init_stream()
    fps = args.fps or DEFAULT_FPS
    out = Outputs(Path(args.out), source, predictor.model.cfg.name, fps, args.overlay)

    def stream() -> Iterator[np.ndarray]:
        yield first
        yield from frames

    try:
        with out:
            for t, frame in enumerate(
                _progress(islice(stream(), args.max_frames), args.max_frames)
            ):
                result = predictor.track(session, frame)
                if t == 0:
                    result = add_prompts(predictor, session, prompts)
                out.write(frame, result)
    except KeyboardInterrupt:
        print(f"interrupted after {len(out.frames)} frame(s)", file=sys.stderr)
    finally:
        close: Callable[[], None] | None = getattr(frames, "close", None)
        if close is not None:
            close()
    print(f"tracked {out.num_objects} object(s) over {len(out.frames)} frame(s)")
    print(f"wrote {out.report()}")
    return 0


def run_everything(args: argparse.Namespace) -> int:
    """Segment everything on frame 0 (and every N frames) and track it through a video."""
    from sam2r.predictor.automatic import MaskGenerator
    from sam2r.predictor.everything import track_everything

    if args.point or args.box or args.mask is not None:
        raise CliError("--everything finds the objects itself: drop --point / --box / --mask")
    if args.stream is not None or args.reverse or args.start is not None:
        raise CliError(
            "--everything tracks a video from its first frame (no --stream/--reverse/--start)"
        )
    if args.everything_every < 0:
        raise CliError(f"--everything-every must be >= 0, got {args.everything_every}")
    source = open_video(Path(args.input))
    predictor = make_predictor(args)
    try:
        generator = MaskGenerator(
            predictor.model, points_per_side=args.points_per_side, precision=predictor.precision
        )
    except ValueError as e:
        raise CliError(str(e)) from None
    session = predictor.init_session(source)
    n = len(source) if args.max_frames is None else min(len(source), args.max_frames)
    fps = args.fps or getattr(source, "fps", None) or DEFAULT_FPS
    out = Outputs(Path(args.out), str(args.input), predictor.model.cfg.name, fps, args.overlay)
    results = track_everything(
        predictor, generator, session, every=args.everything_every, max_objects=255
    )
    try:
        with out:
            for result in _progress(islice(results, n), n):
                out.write(source.frame(result.frame_idx), result)
    finally:
        if hasattr(source, "close"):
            source.close()
    print(f"tracked {out.num_objects} object(s) over {len(out.frames)} frame(s)")
    print(f"wrote {out.report()}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    if args.input is None and args.stream is None:
        raise CliError("give INPUT (a folder of frames or a video file) or --stream SOURCE")
    if args.input is not None and args.stream is not None:
        raise CliError(f"give either INPUT or --stream, not both (got {args.input!r} and --stream)")
    if args.max_frames is not None and args.max_frames < 1:
        raise CliError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.start is not None and args.start < 0:
        raise CliError(f"--start must be >= 0, got {args.start}")
    if args.fill_hole_area is not None and args.fill_hole_area < 0:
        raise CliError(f"--fill-hole-area must be >= 0 (0 = off), got {args.fill_hole_area}")
    if args.mask_frame is not None and args.mask_frame < 0:
        raise CliError(f"--mask-frame must be >= 0, got {args.mask_frame}")
    if args.text is not None:  # a detector finds the objects (sam2r.cli.text)
        stream = args.stream is not None or _is_stream(str(args.input))
        return run_video_text(args, make_predictor, open_video, _progress, stream, DEFAULT_FPS)
    if args.everything:
        return run_everything(args)
    prompts = parse_prompts(args)
    source = args.stream if args.stream is not None else args.input
    if args.stream is not None or _is_stream(str(source)):
        return run_stream(args, prompts, str(source))
    return run_video(args, prompts)


def add_memory_arg(parser: argparse.ArgumentParser) -> None:
    """--memory: the video predictor's memory mode (`sam2r.predictor.video.selection`)."""
    parser.add_argument(
        "--memory",
        choices=("official", "motion", "distractor"),
        default="official",
        help="memory selection: official (default, the official numbers), motion (Kalman-"
        "filtered boxes pick the candidate and gate the memory) or distractor (also remembers "
        "frames with a look-alike); both keep a lost object's last good memories",
    )


def add_video_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r video` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    vp = sub.add_parser("video", help="track objects through a video from clicks, boxes or a mask")
    vp.add_argument(
        "input",
        nargs="?",
        help="folder of frames (00000.jpg, ...), video file (.mp4, .mov, .webm, .avi, .mkv), "
        "or a camera index / URL (a live stream)",
    )
    vp.add_argument(
        "--stream", metavar="SOURCE", help="read a live source: camera index, device, URL or file"
    )
    vp.add_argument(
        "--point",
        action="append",
        default=[],
        metavar=POINT_FORM,
        help="a click on frame FRAME for object OBJ (1..255) in pixels; LABEL 1 (default) or 0",
    )
    vp.add_argument(
        "--box", action="append", default=[], metavar=BOX_FORM, help="a box for object OBJ"
    )
    vp.add_argument(
        "--mask", metavar="PNG", help="DAVIS palette PNG of object ids (one colour per object)"
    )
    vp.add_argument("--mask-frame", type=int, metavar="N", help="the frame of --mask (default 0)")
    vp.add_argument("--reverse", action="store_true", help="track towards the first frame")
    vp.add_argument(
        "--start",
        type=int,
        metavar="N",
        help="first frame (default: the earliest prompted frame, the latest with --reverse)",
    )
    vp.add_argument(
        "--max-frames", type=int, metavar="N", help="process at most N frames (the first included)"
    )
    vp.add_argument(
        "--fill-hole-area",
        type=int,
        metavar="N",
        help="fill holes up to N low-res pixels (default: the model's, 8; 0 = off)",
    )
    vp.add_argument(
        "--non-overlap", action="store_true", help="one object per pixel in the returned masks"
    )
    add_memory_arg(vp)
    vp.add_argument(
        "--overlay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write overlay.mp4 (needs PyAV)",
    )
    vp.add_argument(
        "--fps", type=float, help="frame rate of overlay.mp4 (default: the video's, else 24)"
    )
    vp.add_argument(
        "--everything",
        action="store_true",
        help="no prompts: segment everything on frame 0 (automatic mask generator) and track it",
    )
    vp.add_argument(
        "--everything-every",
        type=int,
        default=0,
        metavar="N",
        help="with --everything, also add objects that appear every N frames (0: frame 0 only)",
    )
    vp.add_argument(
        "--points-per-side", type=int, default=32, help="with --everything: generator grid"
    )
    vp.add_argument("--out", default="sam2r_out", help="output directory")
    add_text_args(vp, video=True)
    add_onnx_arg(vp)
    model_args(vp)
    vp.set_defaults(func=cmd_video)
    return vp
