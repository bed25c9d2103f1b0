"""The `sam2r synth` command: write a synthetic video dataset in the DAVIS 2017 layout.

    sam2r synth --out data/synth --train 200 --val 40 --frames 16 --val-look unseen
    sam2r synth --out data/synth --train 0 --val 0 --images 100
    sam2r synth --out data/occl --train 0 --val 20 --scenario occlusion   # hard cases

Writes `OUT/JPEGImages/480p/<seq>/*.jpg`, `OUT/Annotations/480p/<seq>/*.png` (palette PNGs of
object ids, every frame), `OUT/ImageSets/2017/{train,val}.txt` and `OUT/synth.json` (config and
seeds); with `--images N`, also `OUT/images/image_*.jpg` + `.png`. The same arguments give the
same files. `--scenario occlusion|distractor|fast|cut` makes every video a hard case of
`sam2r.data.scenarios` (one annotated target; frames default to the scenario's own count).

What is left to others: making and writing the data (`sam2r.data`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from sam2r.cli.common import CliError

# SynthConfig field -> the flag that sets it, so errors name what the user typed
_FLAGS = {
    "height": "--height",
    "width": "--width",
    "num_frames": "--frames",
    "min_objects": "--min-objects",
    "max_objects": "--max-objects",
    "look": "--look",
}


def cmd_synth(args: argparse.Namespace) -> int:
    from sam2r.data import SynthConfig, write_dataset, write_images
    from sam2r.data.scenarios import SCENARIO_FRAMES

    for flag, value in (("--train", args.train), ("--val", args.val), ("--images", args.images)):
        if value < 0:
            raise CliError(f"{flag} {value}: give a count >= 0")
    if args.train == args.val == args.images == 0:
        raise CliError("nothing to write: give --train N, --val N or --images N above 0")
    if args.seed < 0:
        raise CliError(f"--seed {args.seed}: give a seed >= 0")
    if args.frames is None:
        args.frames = SCENARIO_FRAMES.get(args.scenario, 16)
    try:
        cfg = SynthConfig(
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            look=args.look,
        )
    except ValueError as e:
        message = str(e)
        for field, flag in _FLAGS.items():
            message = re.sub(rf"(SynthConfig\.)?\b{field}=", f"{flag} ", message)
            message = re.sub(rf"\b{field}\b", flag, message)
        raise CliError(message) from None

    try:
        root = write_dataset(
            args.out,
            args.train,
            args.val,
            cfg,
            seed=args.seed,
            val_look=args.val_look,
            scenario=args.scenario,
        )
    except ValueError as e:  # a scenario that needs more frames
        raise CliError(re.sub(r"\bnum_frames=", "--frames ", str(e))) from None
    val_look = args.val_look or cfg.look
    kind = f" {args.scenario}" if args.scenario else ""
    print(
        f"wrote {args.train} train ({cfg.look} look) + {args.val} val ({val_look} look){kind} "
        f"videos of {cfg.num_frames} frames, {cfg.width}x{cfg.height}, to {root}/ "
        "(DAVIS 2017 layout)"
    )
    if args.images:
        write_images(root, args.images, cfg, seed=args.seed)
        print(f"wrote {args.images} images with masks to {root / 'images'}/")
    return 0


def add_synth_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r synth` on the subcommand parsers of `sam2r.cli.main.build_parser`.

    `model_args` is unused: making data needs no model.
    """
    from sam2r.data.looks import LOOKS
    from sam2r.data.scenarios import SCENARIOS

    sp = sub.add_parser("synth", help="write a synthetic video dataset (DAVIS 2017 layout)")
    sp.add_argument("--out", required=True, metavar="ROOT", help="dataset folder to write")
    sp.add_argument("--train", type=int, default=100, metavar="N", help="training videos")
    sp.add_argument("--val", type=int, default=20, metavar="M", help="validation videos")
    sp.add_argument(
        "--frames",
        type=int,
        default=None,
        metavar="T",
        help="frames per video (default 16; with --scenario, the scenario's: 48 occlusion, "
        "32 distractor, 24 fast and cut)",
    )
    sp.add_argument("--height", type=int, default=192, metavar="H", help="frame height")
    sp.add_argument("--width", type=int, default=256, metavar="W", help="frame width")
    sp.add_argument("--min-objects", type=int, default=1, metavar="K", help="objects, at least")
    sp.add_argument("--max-objects", type=int, default=4, metavar="K", help="objects, at most")
    sp.add_argument(
        "--look", choices=sorted(LOOKS), default="train", help="look of the videos (default train)"
    )
    sp.add_argument(
        "--val-look", choices=sorted(LOOKS), help="another look for the validation split"
    )
    sp.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed")
    sp.add_argument(
        "--scenario",
        choices=SCENARIOS,
        help="hard cases: long occlusions, look-alike distractors, fast motion or shot cuts",
    )
    sp.add_argument(
        "--images", type=int, default=0, metavar="N", help="also write N many-object images"
    )
    sp.set_defaults(func=cmd_synth)
    return sp
