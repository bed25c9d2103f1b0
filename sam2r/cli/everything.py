"""The `sam2r everything` command: segment everything in one image (automatic mask generation).

    sam2r everything IMAGE [--points-per-side 32] [--pred-iou-thresh 0.8] [--out DIR]

Writes every mask found as an SA-1B-style JSON (`<stem>_masks.json`, COCO RLE segmentations)
and an overlay PNG.

What is left to others: the generator (`sam2r.predictor.automatic`), the JSON file
(`sam2r.io.masks`), the model, reading the image and drawing the overlay (`sam2r.cli.common`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2r.cli.common import CliError, load_model, overlay, precision_of, read_image


def cmd_everything(args: argparse.Namespace) -> int:
    from PIL import Image

    from sam2r.io.masks import write_coco_json
    from sam2r.ops.rle import decode
    from sam2r.predictor.automatic import MaskGenerator

    path = Path(args.image)
    image = read_image(path)
    model = load_model(args.model, args.checkpoint, args.device, args.config)
    options = {
        "points_per_side": args.points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_score_thresh,
        "box_nms_thresh": args.box_nms_thresh,
        "crop_n_layers": args.crop_n_layers,
        "min_mask_region_area": args.min_mask_region_area,
        "use_m2m": args.use_m2m,
    }
    precision = precision_of(args, model.device)
    try:
        generator = MaskGenerator(model, output_mode="coco_rle", precision=precision, **options)
    except ValueError as e:
        raise CliError(str(e).replace("_", "-")) from None
    records = generator.generate(image)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = write_coco_json(
        out / f"{path.stem}_masks.json", records, image.shape[:2], file_name=path.name
    )
    # largest first, so that small masks stay visible on top
    order = sorted(range(len(records)), key=lambda i: -records[i]["area"])
    masks = [decode(records[i]["segmentation"]).astype(bool) for i in order]
    Image.fromarray(overlay(image, masks)).save(out / f"{path.stem}_overlay.png")
    print(f"found {len(records)} mask(s); wrote {json_path} and an overlay to {out}/")
    if not records:
        print("no mask passed the filters: try lower --pred-iou-thresh / --stability-score-thresh")
    return 0


def add_everything_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r everything` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    ev = sub.add_parser(
        "everything", help="segment everything in one image (automatic mask generation)"
    )
    ev.add_argument("image", help="image file (PNG, JPEG, ...)")
    ev.add_argument("--points-per-side", type=int, default=32, help="grid of clicks (N x N)")
    ev.add_argument("--points-per-batch", type=int, default=64, help="clicks run at once")
    ev.add_argument(
        "--pred-iou-thresh", type=float, default=0.8, help="keep masks above this predicted IoU"
    )
    ev.add_argument(
        "--stability-score-thresh", type=float, default=0.95, help="keep masks this stable"
    )
    ev.add_argument(
        "--box-nms-thresh", type=float, default=0.7, help="box IoU above which duplicates go"
    )
    ev.add_argument("--crop-n-layers", type=int, default=0, help="layers of zoomed-in crops")
    ev.add_argument(
        "--min-mask-region-area",
        type=int,
        default=0,
        help="fill holes / remove specks up to this many low-res pixels",
    )
    ev.add_argument(
        "--use-m2m", action="store_true", help="refine each mask once with itself as a prompt"
    )
    ev.add_argument("--out", default="sam2r_out", help="output directory")
    model_args(ev)
    ev.set_defaults(func=cmd_everything)
    return ev
