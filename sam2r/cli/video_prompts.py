"""Prompts of `sam2r video`: parse the --point / --box / --mask arguments and give them to
the predictor.

    --point FRAME:OBJ:X,Y[,LABEL]     a click (LABEL 1 object, default, or 0 background)
    --box FRAME:OBJ:X0,Y0,X1,Y1       a box
    --mask PNG [--mask-frame N]       a DAVIS palette PNG of object ids on frame N (default 0)

Object ids are 1..255 (the palette index of the outputs); the clicks of one object on one frame
go together. Syntax is checked when the arguments are read (`parse_prompts`); frames and
coordinates once the video is open (`check_prompts`). Every error is a `CliError` naming the
argument and the expected form.

What is left to others: the command (`sam2r.cli.video`), reading palette PNGs
(`sam2r.io.masks`), mapping prompts to the model (`sam2r.predictor.video.prompts`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.cli.common import CliError

POINT_FORM = "FRAME:OBJ:X,Y[,LABEL]"
BOX_FORM = "FRAME:OBJ:X0,Y0,X1,Y1"


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
    form = POINT_FORM if flag == "--point" else BOX_FORM
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
            f"give at least one prompt: --point {POINT_FORM}, --box {BOX_FORM} or --mask PNG"
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
