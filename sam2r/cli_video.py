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

What is left to others: tracking (`sam2r.predictor.video`), decoding (`sam2r.io`), the RLE codec
and palette files (`sam2r.ops.rle`, `sam2r.io.masks`), the model (`sam2r.cli.load_model`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2r.cli import CliError, load_model

_POINT_FORM = "FRAME:OBJ:X,Y[,LABEL]"
_BOX_FORM = "FRAME:OBJ:X0,Y0,X1,Y1"
DEFAULT_FPS = 24.0


# ----------------------------------------------------------------------------------------------
# prompts
# ----------------------------------------------------------------------------------------------
@dataclass
class Prompts:
    """The prompts of a run, checked for syntax (frames are checked once the video is open)."""

    clicks: dict[tuple[int, int], list[tuple[float, float, int]]] = field(default_factory=dict)
    boxes: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # (frame, obj) -> box
    mask: np.ndarray | None = None  # (H, W) uint8 object ids of the --mask PNG
    mask_frame: int = 0

    @property
    def mask_ids(self) -> list[int]:
        return [] if self.mask is None else [int(i) for i in np.unique(self.mask) if i != 0]

    @property
    def frames(self) -> list[int]:
        """Every prompted frame, ascending."""
        found = {f for f, _ in self.clicks} | {f for f, _ in self.boxes}
        if self.mask is not None:
            found.add(self.mask_frame)
        return sorted(found)

    def point_prompts(self) -> Iterator[tuple[int, int, np.ndarray | None, np.ndarray | None, Any]]:
        """(frame, obj, points (P, 2) or None, labels (P,) or None, box or None), by frame."""
        for frame, obj in sorted(set(self.clicks) | set(self.boxes)):
            clicks = self.clicks.get((frame, obj))
            points = np.array([c[:2] for c in clicks], np.float32) if clicks else None
            labels = np.array([c[2] for c in clicks], np.int32) if clicks else None
            yield frame, obj, points, labels, self.boxes.get((frame, obj))


def _int(text: str, what: str, flag: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CliError(f"{flag}: {what} {text!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise CliError(f"{flag}: {what} must be {bound}, got {value}")
    return value


def parse_prompt(text: str, flag: str) -> tuple[int, int, list[float]]:
    """`FRAME:OBJ:NUMBERS` -> (frame, object id, numbers); CliError naming the form."""
    form = _POINT_FORM if flag == "--point" else _BOX_FORM
    parts = text.split(":")
    if len(parts) != 3:
        example = "0:1:210,350" if flag == "--point" else "0:1:30,40,200,220"
        raise CliError(f"{flag} {text!r}: expected {form}, e.g. {flag} {example}")
    where = f"{flag} {text!r}"
    frame = _int(parts[0], "FRAME", where, 0)
    obj = _int(parts[1], "OBJ (object id)", where, 1, 255)
    try:
        nums = [float(v) for v in parts[2].split(",")]
    except ValueError:
        raise CliError(f"{where}: expected comma-separated numbers after FRAME:OBJ:") from None
    if len(nums) not in ((2, 3) if flag == "--point" else (4,)):
        raise CliError(f"{where}: expected {form}")
    return frame, obj, nums


def parse_prompts(args: argparse.Namespace) -> Prompts:
    """The --point / --box / --mask arguments, checked for syntax."""
    from sam2r.io.masks import read_palette_png

    prompts = Prompts()
    for text in args.point:
        frame, obj, nums = parse_prompt(text, "--point")
        label = 1 if len(nums) == 2 else nums[2]
        if label not in (0, 1):
            raise CliError(f"--point {text!r}: LABEL must be 1 (object) or 0 (background)")
        prompts.clicks.setdefault((frame, obj), []).append((nums[0], nums[1], int(label)))
    for text in args.box:
        frame, obj, nums = parse_prompt(text, "--box")
        if (frame, obj) in prompts.boxes:
            raise CliError(f"--box {text!r}: object {obj} already has a box on frame {frame}")
        if nums[2] < nums[0] or nums[3] < nums[1]:
            raise CliError(f"--box {text!r}: expected X0 <= X1 and Y0 <= Y1")
        prompts.boxes[(frame, obj)] = nums
    if args.mask_frame is not None and args.mask is None:
        raise CliError("--mask-frame needs --mask PNG")
    if args.mask is not None:
        path = Path(args.mask)
        if not path.is_file():
            raise CliError(f"--mask {path}: no such file")
        try:
            prompts.mask = read_palette_png(path)
        except (OSError, ValueError) as e:
            raise CliError(f"--mask {path}: {e}") from None
        if not prompts.mask_ids:
            raise CliError(f"--mask {path}: the mask is empty (every pixel is 0, background)")
        prompts.mask_frame = args.mask_frame or 0
    if not prompts.frames:
        raise CliError(
            f"give at least one prompt: --point {_POINT_FORM}, --box {_BOX_FORM} or --mask PNG"
        )
    return prompts


def check_prompts(prompts: Prompts, num_frames: int | None, hw: tuple[int, int] | None) -> None:
    """Frames in range (`num_frames` None: a stream, prompts on frame 0 only) and the mask size."""
    for frame in prompts.frames:
        if num_frames is None and frame != 0:
            raise CliError(
                f"a live stream takes prompts on frame 0 only, got a prompt on frame {frame}"
            )
        if num_frames is not None and frame >= num_frames:
            raise CliError(
                f"a prompt is on frame {frame}, but the video has {num_frames} frames "
                f"(0..{num_frames - 1})"
            )
    if hw is not None:
        h, w = hw
        corners = [(k, c[:2]) for k, cs in prompts.clicks.items() for c in cs]
        corners += [(k, b[i : i + 2]) for k, b in prompts.boxes.items() for i in (0, 2)]
        for (frame, obj), (x, y) in corners:
            if not (0 <= x <= w and 0 <= y <= h):
                raise CliError(
                    f"the prompt of object {obj} on frame {frame} has a point ({x:g}, {y:g}) "
                    f"outside the {w}x{h} video; coordinates are pixels X,Y from the top left"
                )
    if prompts.mask is not None and hw is not None and prompts.mask.shape != hw:
        mh, mw = prompts.mask.shape
        raise CliError(
            f"--mask is {mw}x{mh} pixels but the video is {hw[1]}x{hw[0]}; give a mask of the "
            "video's size"
        )


def add_prompts(predictor: Any, session: Any, prompts: Prompts) -> Any:
    """Give every prompt to the predictor (masks first, so that clicks refine them); returns
    the last `FrameResult`."""
    result = None
    try:
        for obj in prompts.mask_ids:
            assert prompts.mask is not None
            result = predictor.add_mask(session, prompts.mask_frame, obj, prompts.mask == obj)
        for frame, obj, points, labels, box in prompts.point_prompts():
            result = predictor.add_points(session, frame, obj, points, labels, box=box)
    except ValueError as e:
        raise CliError(str(e)) from None
    return result


# ----------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------
def label_map(masks: torch.Tensor, scores: torch.Tensor, obj_ids: list[Any]) -> np.ndarray:
    """(N, 1, H, W) logits, (N,) object scores -> (H, W) uint8 object ids (0: none).

    An object is drawn where its logit is > 0 and its object score is > 0; where several are,
    the one with the highest logit wins.
    """
    n, _, h, w = masks.shape
    if n == 0:
        return np.zeros((h, w), np.uint8)
    logits = masks[:, 0].float()  # (N, H, W)
    present = (logits > 0) & (scores.view(-1, 1, 1) > 0)
    best = torch.where(present, logits, torch.full_like(logits, -torch.inf)).argmax(0)
    ids = torch.tensor([int(i) for i in obj_ids], device=logits.device)
    labels = torch.where(present.any(0), ids[best], torch.zeros_like(best))
    return labels.to(torch.uint8).cpu().numpy()


def overlay_labels(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour each object (DAVIS palette) over the frame: (H, W, 3) uint8."""
    from sam2r.io.masks import davis_palette

    out = frame.astype(np.float32)
    drawn = labels > 0
    colours = davis_palette()[labels[drawn]].astype(np.float32)
    out[drawn] = (1 - alpha) * out[drawn] + alpha * colours
    return out.round().clip(0, 255).astype(np.uint8)


class Outputs:
    """Writes the PNGs, the overlay and (on close) the JSON of a run; a context manager.

    Args:
        out: output folder.
        video: what was read (recorded in the JSON).
        model_name: the model's config name (recorded in the JSON).
        fps: frame rate of the overlay video.
        overlay: write `overlay.mp4` (skipped with a message when PyAV is missing).
    """

    def __init__(
        self, out: Path, video: str, model_name: str, fps: float, overlay: bool = True
    ) -> None:
        self.out = out
        self.video = video
        self.model_name = model_name
        self.fps = fps
        self.overlay = overlay
        self.frames: list[dict[str, Any]] = []
        self.hw: tuple[int, int] | None = None
        self.num_objects = 0
        self._sink: Any = None

    def __enter__(self) -> Outputs:
        (self.out / "masks").mkdir(parents=True, exist_ok=True)
        if self.overlay:
            from sam2r.io.video_file import VideoSink

            try:
                self._sink = VideoSink(self.out / "overlay.mp4", fps=self.fps).__enter__()
            except ImportError as e:
                print(f"skipping overlay.mp4: {e}", file=sys.stderr)
        return self

    def write(self, frame: Any, result: Any) -> None:
        """One tracked frame: `frame` uint8 (H, W, 3) or PIL (None: no overlay), a FrameResult."""
        from sam2r.io.masks import write_palette_png
        from sam2r.ops import rle

        labels = label_map(result.masks, result.object_score_logits, result.obj_ids)
        self.hw = labels.shape
        self.num_objects = len(result.obj_ids)
        name = f"{result.frame_idx:05d}.png"
        write_palette_png(self.out / "masks" / name, labels)
        scores = result.object_score_logits.float().cpu().tolist()
        binary = ((result.masks[:, 0] > 0) & (result.object_score_logits.view(-1, 1, 1) > 0)).cpu()
        objects = []
        for obj_id, score, mask in zip(result.obj_ids, scores, binary.numpy(), strict=True):
            seg = rle.encode(mask)
            counts = seg["counts"]
            seg["counts"] = counts.decode("ascii") if isinstance(counts, bytes) else counts
            area = int(rle.area(seg))
            objects.append(
                {
                    "obj_id": obj_id,
                    "object_score_logit": round(float(score), 6),
                    "area": area,
                    "bbox": [int(v) for v in rle.to_bbox(seg)] if area else None,
                    "segmentation": seg,
                }
            )
        self.frames.append({"frame_idx": result.frame_idx, "file_name": name, "objects": objects})
        if self._sink is not None and frame is not None:
            rgb = np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame)
            self._sink.write(overlay_labels(rgb, labels))

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            self._sink.__exit__(*exc)
        h, w = self.hw if self.hw is not None else (None, None)
        summary = {
            "video": self.video,
            "model": self.model_name,
            "height": h,
            "width": w,
            "frames": self.frames,
        }
        (self.out / "masks.json").write_text(json.dumps(summary))

    def report(self) -> str:
        files = f"{len(self.frames)} PNG(s) in {self.out / 'masks'}/, {self.out / 'masks.json'}"
        if self._sink is not None:
            files += f", {self.out / 'overlay.mp4'}"
        return files


# ----------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------
def _is_stream(source: str) -> bool:
    return source.isdigit() or "://" in source


def make_predictor(args: argparse.Namespace) -> Any:
    """The `VideoPredictor` of a run (its model from --model / --checkpoint / --config)."""
    from sam2r.predictor.video import VideoPredictor

    model = load_model(args.model, args.checkpoint, args.device, args.config)
    try:
        return VideoPredictor(
            model,
            fill_hole_area=args.fill_hole_area,
            non_overlap_masks=True if args.non_overlap else None,
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
        generator = MaskGenerator(predictor.model, points_per_side=args.points_per_side)
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
    if args.everything:
        return run_everything(args)
    prompts = parse_prompts(args)
    source = args.stream if args.stream is not None else args.input
    if args.stream is not None or _is_stream(str(source)):
        return run_stream(args, prompts, str(source))
    return run_video(args, prompts)


def add_video_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r video` on the subcommand parsers of `sam2r.cli.build_parser`."""
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
        metavar=_POINT_FORM,
        help="a click on frame FRAME for object OBJ (1..255) in pixels; LABEL 1 (default) or 0",
    )
    vp.add_argument(
        "--box", action="append", default=[], metavar=_BOX_FORM, help="a box for object OBJ"
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
    model_args(vp)
    vp.set_defaults(func=cmd_video)
    return vp
