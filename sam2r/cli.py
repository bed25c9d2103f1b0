"""The `sam2r` command line.

    sam2r image IMAGE --point X,Y [--point X,Y,0 ...] [--box X0,Y0,X1,Y1 ...] [--out DIR]
    sam2r everything IMAGE [--points-per-side 32] [--pred-iou-thresh 0.8] [--out DIR]

`image` writes, for each prompt set, the best mask as a PNG, an overlay PNG of all masks, and a
JSON summary (scores, areas, boxes). `everything` writes every mask found as an SA-1B-style
JSON (`<stem>_masks.json`, COCO RLE segmentations) and an overlay PNG. The model is
`--checkpoint PATH` (variant recognised from the file, or `--model NAME`), else `--model NAME`
from the Hugging Face hub cache (downloaded when online), else the bundled `sam2r_micro` (a
small model trained by sam2r on synthetic videos; see README, "Training").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "sam2r_micro"  # bundled in the package: works offline, no download
# DAVIS-style colours for object 1, 2, ... (RGB)
_COLOURS = np.array(
    [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128],
     [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0]],
    dtype=np.uint8,
)  # fmt: skip


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _numbers(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(vals) not in n:
        forms = {2: "X,Y", 3: "X,Y,LABEL", 4: "X0,Y0,X1,Y1"}
        raise CliError(f"{what} {text!r}: expected {' or '.join(forms[k] for k in n)}")
    return vals


def load_model(
    model: str | None, checkpoint: str | None, device: str, config: str | None = None
) -> Any:
    """The model from a checkpoint file or the hub cache; CliError with advice on failure."""
    from sam2r.build import build_model, from_pretrained
    from sam2r.yaml_config import config_from_yaml

    variant: Any = model
    if config is not None:
        if checkpoint is None:
            raise CliError("--config needs --checkpoint (the weights of that model)")
        try:
            variant = config_from_yaml(config)
        except (OSError, ValueError) as e:
            raise CliError(f"--config {config}: {e}") from None
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise CliError(f"--checkpoint {checkpoint}: no such file")
        try:
            return build_model(variant, checkpoint=checkpoint, device=device)
        except ValueError as e:
            raise CliError(str(e)) from None
    name = model or DEFAULT_MODEL
    try:
        return from_pretrained(name, device=device)
    except ImportError as e:
        raise CliError(
            f"{e}\nOr pass a downloaded checkpoint: --checkpoint sam2.1_hiera_tiny.pt"
        ) from None
    except RuntimeError as e:
        raise CliError(str(e)) from None


def overlay(image: np.ndarray, masks: list[np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """Colour each mask over the image: (H, W, 3) uint8."""
    out = image.astype(np.float32)
    for i, m in enumerate(masks):
        colour = _COLOURS[i % len(_COLOURS)].astype(np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * colour
    return out.round().clip(0, 255).astype(np.uint8)


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB; CliError when missing or unreadable."""
    from PIL import Image

    if not path.is_file():
        raise CliError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except OSError as e:
        raise CliError(f"{path}: not a readable image ({e})") from None


def cmd_image(args: argparse.Namespace) -> int:
    from PIL import Image

    from sam2r.predictor.image import ImagePredictor

    path = Path(args.image)
    image = read_image(path)
    points = [_numbers(p, (2, 3), "--point") for p in args.point]
    boxes = [_numbers(b, (4,), "--box") for b in args.box]
    if not points and not boxes:
        raise CliError("give at least one --point X,Y or --box X0,Y0,X1,Y1")

    model = load_model(args.model, args.checkpoint, args.device, args.config)
    predictor = ImagePredictor(model, max_hole_area=args.max_hole_area)
    predictor.set_image(image)

    coords = np.array([p[:2] for p in points], dtype=np.float32) if points else None
    labels = np.array([int(p[2]) if len(p) == 3 else 1 for p in points]) if points else None
    try:
        if boxes:
            # each box is one object; the clicks (if any) refine every box
            pred = predictor.predict(coords, labels, np.array(boxes), multimask_output=False)
            masks = list(pred.masks.reshape(len(boxes), -1, *image.shape[:2])[:, 0])
            scores = pred.scores.reshape(len(boxes), -1)[:, 0].tolist()
        else:
            multi = len(points) == 1 if args.multimask is None else args.multimask
            pred = predictor.predict(coords, labels, multimask_output=multi)
            best = int(np.argmax(pred.scores))
            masks, scores = [pred.masks[best]], [float(pred.scores[best])]
    except ValueError as e:
        raise CliError(str(e)) from None

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (m, s) in enumerate(zip(masks, scores, strict=True), start=1):
        Image.fromarray((m * 255).astype(np.uint8)).save(out / f"{path.stem}_mask{i}.png")
        ys, xs = np.nonzero(m)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None
        records.append(
            {"object": i, "score": round(float(s), 6), "area": int(m.sum()), "bbox_xyxy": bbox}
        )
    Image.fromarray(overlay(image, masks)).save(out / f"{path.stem}_overlay.png")
    summary = {"image": str(path), "model": model.cfg.name, "masks": records}
    (out / f"{path.stem}_masks.json").write_text(json.dumps(summary, indent=1))
    for r in records:
        print(
            f"mask {r['object']}: score {r['score']:.3f}, area {r['area']} px, box {r['bbox_xyxy']}"
        )
    print(f"wrote {len(records)} mask(s), an overlay and a JSON summary to {out}/")
    return 0


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
    try:
        generator = MaskGenerator(model, output_mode="coco_rle", **options)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sam2r", description="SAM 2 / SAM 2.1 segmentation")
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", help=f"model name or hub id (default {DEFAULT_MODEL})")
        sp.add_argument("--checkpoint", help="official .pt checkpoint (variant recognised)")
        sp.add_argument("--config", help="model YAML (official layout) for a custom checkpoint")
        sp.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ...")

    im = sub.add_parser("image", help="segment objects in one image from clicks or boxes")
    im.add_argument("image", help="image file (PNG, JPEG, ...)")
    im.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 foreground (default) or 0 background",
    )
    im.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="X0,Y0,X1,Y1",
        help="a box in pixels; several boxes segment several objects",
    )
    im.add_argument(
        "--multimask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict 3 masks and keep the best (default: for a single click)",
    )
    im.add_argument("--max-hole-area", type=int, default=0, help="fill holes up to this area")
    im.add_argument("--out", default="sam2r_out", help="output directory")
    model_args(im)
    im.set_defaults(func=cmd_image)

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

    from sam2r.cli_video import add_video_parser  # the `video` subcommand

    add_video_parser(sub, model_args)
    from sam2r.cli_data import add_data_parser  # the `synth` subcommand

    add_data_parser(sub, model_args)
    from sam2r.cli_train import add_train_parser  # the `train` subcommand

    add_train_parser(sub, model_args)
    from sam2r.cli_eval import add_eval_parser  # the `eval` subcommand

    add_eval_parser(sub, model_args)
    from sam2r.cli_vos import add_vos_parser  # the `vos-infer` subcommand

    add_vos_parser(sub, model_args)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"sam2r {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m sam2r.cli` (how torchrun starts it) loads this file twice, as __main__ and as
    # sam2r.cli; run the package module's main so that its CliError is the one raised
    from sam2r.cli import main as package_main

    sys.exit(package_main())
